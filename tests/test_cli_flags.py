"""Every flag of serve, predict, demo and bench reaches the code that uses it (issue 11 item 1).

Where a real local component can run (a server, a LocalCluster, a scheduler), the test runs it; for the
long-running comparisons (demo, bench) it records what the command hands to ``compare``/``run`` and stops there.
"""
from __future__ import annotations

import json

import dask
import pytest

from stockdag.cli import main


@pytest.fixture
def csv_dir(tmp_path):
    """A folder holding only HOLDX.csv (AAPL's bundled prices under another name)."""
    from stockdag.domain.data.prices import _bundled_frame

    data = _bundled_frame()
    data[data["ticker"] == "AAPL"].drop(columns="ticker").to_csv(tmp_path / "HOLDX.csv", index=False)
    return tmp_path


class _Stop(Exception):
    """Raised by a spy once it has recorded its arguments."""


# -- serve
@pytest.fixture
def served(monkeypatch):
    """Serve the app on a free loopback port instead of the requested one, and ask it what it was given."""
    import socket

    import httpx

    from stockdag.serve import ServerThread

    with socket.socket() as probe:  # a port free now, so that no other server on this machine is in the way
        probe.bind(("127.0.0.1", 0))
        seen = {"port_args": ["--port", str(probe.getsockname()[1])]}

    def fake_serve(app, *, host, port, **kwargs):
        seen.update(app=app, host=host, port=port)
        if seen.get("enter", True):
            with ServerThread(app) as server:
                seen["health"] = httpx.get(f"{server.url}/health").json()
                seen["symbols"] = httpx.get(f"{server.url}/symbols").json()["symbols"]
                seen["predict"] = httpx.get(f"{server.url}/predict/HOLDX", params={"as_of": "2011-06-01"}, timeout=60)

    monkeypatch.setattr("stockdag.serve.serve", fake_serve)
    return seen


def test_serve_source_csv_answers_from_the_folder(csv_dir, small, served):
    """Issue 11 item 1: `/symbols` listed HOLDX but /predict/HOLDX answered 404 from the bundled data."""
    assert main(["serve", "--source", "csv", "--data-dir", str(csv_dir), *served["port_args"]]) == 0
    assert served["symbols"] == ["HOLDX"]
    assert served["predict"].status_code == 200, served["predict"].text
    body = served["predict"].json()
    assert body["symbol"] == "HOLDX" and body["source"] == "csv" and body["as_of"] == "2011-06-01"


def test_serve_flags_reach_the_server(small, served):
    port = int(served["port_args"][1])
    assert main(["serve", "--host", "127.0.0.2", "--port", str(port), "--max-in-flight", "3", "--deadline", "7.5",
                 "--profile", "pretrained", "--mode", "centralized"]) == 0
    assert (served["host"], served["port"]) == ("127.0.0.2", port)
    h = served["health"]
    assert (h["mode"], h["max_in_flight"], h["deadline"], h["profile"]) == ("centralized", 3, 7.5, "pretrained")


@pytest.mark.parametrize("argv, expected", [
    (["--replicas", "3"], {"mode": "replicated", "replicas": 3}),
    (["--workers", "3", "--strategy", "heft"], {"mode": "distributed", "n_workers": 3, "strategy": "heft"}),
    (["--mode", "distributed"], {"mode": "distributed", "n_workers": 2, "scheduler": None}),
])
def test_serve_cluster_flags_reach_the_backend(argv, expected, served):
    served["enter"] = False  # the backend is checked, not started
    assert main(["serve", *argv, *served["port_args"]]) == 0
    backend = served["app"].state.backend
    assert {k: getattr(backend, k) for k in expected} == expected


def test_serve_scheduler_reaches_the_backend(cluster, served):
    served["enter"] = False
    assert main(["serve", "--scheduler", cluster.scheduler_address, *served["port_args"]]) == 0
    backend = served["app"].state.backend
    assert (backend.mode, backend.scheduler) == ("distributed", cluster.scheduler_address)


# -- an unreachable scheduler: one line, every command that takes --scheduler (issue 11 item 6)
@pytest.mark.parametrize("command", [["predict", "AAPL", "--as-of", "2012-06-01"], ["serve"], ["demo"]])
def test_an_unreachable_scheduler_is_one_line(command, capsys, monkeypatch):
    import socket

    import stockdag.serve

    monkeypatch.setattr(stockdag.serve, "serve", lambda *a, **k: pytest.fail("serve started"))
    if command == ["serve"]:
        with socket.socket() as probe:  # a free port, so that the scheduler is what fails
            probe.bind(("127.0.0.1", 0))
            command = ["serve", "--port", str(probe.getsockname()[1])]
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        assert main([*command, "--scheduler", "tcp://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("stockdag: error: cannot reach the Dask scheduler at tcp://127.0.0.1:9")
    assert err.count("\n") == 1 and "Traceback" not in err


# -- predict
def test_predict_scheduler_runs_distributed_on_that_cluster(small, cluster, capsys):
    """Issue 11 item 6: with --scheduler (and no --mode) the request ran centralized without a word."""
    assert main(["predict", "GOOG", "--as-of", "2012-09-04", "--scheduler", cluster.scheduler_address, "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["mode"] == "distributed"
    workers = cluster.scheduler_info["workers"]
    assert {t["worker"] for t in d["trace"]} <= set(workers) | {w["name"] for w in workers.values()}, d["trace"]


def test_predict_workers_and_strategy_reach_the_executor(small, capsys, monkeypatch):
    import stockdag.run

    seen = {}

    class Spy(stockdag.run.DistributedExecutor):
        def __init__(self, *args, **kwargs):
            seen.update(kwargs)
            super().__init__(*args, **kwargs)
            seen["nthreads"] = self.client.nthreads()

    monkeypatch.setattr(stockdag.run, "DistributedExecutor", Spy)
    assert main(["predict", "IBM", "--as-of", "2012-06-01", "--workers", "1", "--strategy", "round-robin", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert seen["n_workers"] == 1 and len(seen["nthreads"]) == 1 and seen["strategy"] == "round-robin"
    assert d["mode"] == "distributed" and all(t["planned_worker"] for t in d["trace"])


def test_predict_data_flags_reach_the_request(csv_dir, small, capsys):
    assert main(["predict", "holdx", "--data-dir", str(csv_dir), "--as-of", "2011-06-01", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert (d["symbol"], d["source"], d["as_of"], d["mode"], d["profile"]) == ("HOLDX", "csv", "2011-06-01", "centralized", "refit")


def test_predict_profile_reaches_the_request(tmp_path, small, capsys):
    with dask.config.set({"stockdag.models.store": str(tmp_path)}):
        assert main(["predict", "AAPL", "--as-of", "2012-06-01", "--profile", "pretrained"]) == 2
    assert f"no pretrained models for AAPL in {tmp_path}" in capsys.readouterr().err


def test_predict_prints_the_cache_as_words(small, capsys):
    """Issue 16 item 15: `predict` printed a raw dict for the cache."""
    assert main(["predict", "MSFT", "--as-of", "2012-06-01"]) == 0
    out = capsys.readouterr().out
    assert "{" not in out and "cache: prices " in out


# -- demo
@pytest.fixture
def compare_spy(monkeypatch):
    seen = {}

    def spy(*args, **kwargs):
        seen.update(zip(("requests", "workers", "in_flight", "profile"), args), **kwargs)
        if kwargs.get("client") is not None:
            seen["scheduler"] = kwargs["client"].scheduler.address
        raise _Stop

    monkeypatch.setattr("stockdag.lab.demo.compare", spy)
    return seen


def test_demo_flags_reach_compare(compare_spy):
    with pytest.raises(_Stop):
        main(["demo", "--requests", "3", "--workers", "1", "--in-flight", "5", "--profile", "pretrained", "--seed", "7",
              "--strategies", "heft,dask,heft", "--json"])
    assert {k: compare_spy[k] for k in ("requests", "workers", "in_flight", "profile", "seed", "strategies", "show_progress")} == {
        "requests": 3, "workers": 1, "in_flight": 5, "profile": "pretrained", "seed": 7, "strategies": ("heft", "dask"),
        "show_progress": False}


def test_demo_scheduler_reaches_compare(cluster, compare_spy):
    with pytest.raises(_Stop):
        main(["demo", "--scheduler", cluster.scheduler_address, "--strategies", "all"])
    from stockdag.placement import STRATEGIES

    assert compare_spy["scheduler"] == cluster.scheduler_address and compare_spy["show_progress"] is True
    assert set(compare_spy["strategies"]) == {"dask", *STRATEGIES}


def test_demo_compares_the_configured_strategy_by_default(compare_spy):
    # issue 24 item 25: --strategies defaulted to dask, so `make demo` never showed the default (adaptive)
    with dask.config.set({"stockdag.placement.strategy": "heft"}), pytest.raises(_Stop):
        main(["demo"])
    assert compare_spy["strategies"] == ("heft",)


def test_demo_granularity_help_describes_every_choice(capsys):
    from stockdag.pipeline.granularity import GRANULARITY_CHOICES

    assert main(["demo", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert all(f"{g} (" in text for g in GRANULARITY_CHOICES), text


# -- bench
@pytest.fixture
def server(small):
    from stockdag.serve import ServerThread, create_app

    with ServerThread(create_app("centralized")) as s:
        yield s


@pytest.fixture
def run_spy(monkeypatch):
    seen = {}

    def spy(cfg):
        seen["cfg"] = cfg
        raise _Stop

    monkeypatch.setattr("stockdag.lab.bench.run", spy)
    return seen


def test_bench_open_loop_flags_reach_the_load_generator(server, run_spy, tmp_path):
    with pytest.raises(_Stop):
        main(["bench", server.url, "--rate", "2.5", "--arrivals", "poisson", "--duration", "4", "--warmup", "0.5",
              "--timeout", "3", "--connections", "7", "--zipf-s", "1.3", "--symbols", "ibm", "aapl",
              "--start", "2012-01-03", "--end", "2012-03-01", "--seed", "5", "--json", "--out", str(tmp_path / "r.csv")])
    c = run_spy["cfg"]
    assert (c.url, c.rate, c.users, c.arrivals, c.duration, c.requests, c.warmup, c.timeout, c.connections, c.seed, c.progress) == (
        server.url, 2.5, None, "poisson", 4.0, None, 0.5, 3.0, 7, 5, False)
    m = c.mix
    assert (list(m.symbols), m.start, m.end, m.distribution, m.s) == (["IBM", "AAPL"], "2012-01-03", "2012-03-01", "zipf", 1.3)


def test_bench_closed_loop_and_raw_flags_reach_the_load_generator(server, run_spy):
    with pytest.raises(_Stop):
        main(["bench", server.url + "/health", "--users", "3", "--requests", "9", "--raw"])
    c = run_spy["cfg"]
    assert (c.url, c.rate, c.users, c.requests, c.mix) == (server.url + "/health", None, 3, 9, None)


def test_bench_symbols_are_checked_against_the_server_before_the_run(server, run_spy, capsys):
    """Issue 16 item 4: --symbols was not checked against /symbols."""
    assert main(["bench", server.url, "--rate", "1", "--symbols", "AAPL", "NOPE"]) == 2
    err = capsys.readouterr().err
    assert f"{server.url} does not serve NOPE; it lists AAPL" in err and err.count("\n") == 1
    assert "cfg" not in run_spy


def test_bench_mix_options_need_a_stockdag_server(server, run_spy, capsys):
    assert main(["bench", server.url + "/health", "--rate", "1", "--symbols", "AAPL"]) == 2
    assert "--symbols shapes the request mix of a stockdag server" in capsys.readouterr().err
    assert "cfg" not in run_spy


def test_bench_nothing_listening_is_one_line_before_the_run(run_spy, capsys):
    """Issue 16 item 4: connection refused on every request, then exit 0."""
    assert main(["bench", "http://127.0.0.1:9", "--rate", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("stockdag: error: cannot connect to 127.0.0.1:9") and err.count("\n") == 1
    assert "cfg" not in run_spy


def test_bench_out_is_checked_before_anything_is_sent(server, run_spy, capsys):
    """Issue 16 item 2: the whole load ran, then saving failed and the results were lost."""
    assert main(["bench", server.url, "--rate", "1", "--out", "/nonexistent/dir/x.csv"]) == 2
    assert "folder '/nonexistent/dir' does not exist" in capsys.readouterr().err
    assert "cfg" not in run_spy


def test_bench_exits_non_zero_when_no_request_succeeds(server, capsys):
    """Issue 16 item 4: every request failed (here every 404) and bench exited 0."""
    assert main(["bench", server.url + "/nope", "--users", "1", "--requests", "2", "--warmup", "0", "--raw"]) == 1
    captured = capsys.readouterr()
    assert "requests 2, ok 0" in captured.out
    assert captured.err.strip().splitlines()[-1] == "stockdag: error: none of the 2 measured requests succeeded (http_404 2)"


def test_bench_writes_its_records_and_exits_0(server, tmp_path, capsys):
    out = tmp_path / "run.csv"
    assert main(["bench", server.url, "--users", "1", "--requests", "2", "--warmup", "0", "--symbols", "IBM",
                 "--start", "2012-03-01", "--end", "2012-06-01", "--out", str(out)]) == 0
    import pandas as pd

    records = pd.read_csv(out)
    assert len(records) == 2 and (records["status"] == 200).all()


def test_serve_on_a_taken_port_is_one_line(served, capsys):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err == f"stockdag: error: cannot listen on 127.0.0.1:{port}: Address already in use\n"
    assert "app" not in served


def test_bench_mix_flags_reach_the_load_generator(server, run_spy):
    with pytest.raises(_Stop):
        main(["bench", server.url, "--users", "2", "--mix", "uniform", "--duration", "3"])
    c = run_spy["cfg"]
    assert (c.users, c.duration, c.mix.distribution) == (2, 3.0, "uniform")

"""The numbers a report is made of, on inputs whose answers are known."""
import json
import os

import pandas as pd
import pytest

from stockdag.lab.experiments.analysis import aggregate, ci95, critical_path, saturation
from stockdag.lab.experiments.sweep import Configuration, SweepParams


def test_critical_path_follows_the_longest_branch():
    costs = {"C1": 1, "C6": 0, "C2": 2, "C5": 10, "C3": 1, "C4": 5, "C7": 1, "C8": 7, "C9": 3, "C10": 1, "C11": 2, "C12": 1}
    length, path = critical_path(costs)
    assert path == ["C1", "C6", "C5", "C4", "C8", "C12"]
    assert length == 1 + 0 + 10 + 5 + 7 + 1
    # with the price branch heavier, the path moves to it
    length, path = critical_path({**costs, "C2": 30})
    assert path[:4] == ["C1", "C6", "C2", "C3"] and length == 1 + 30 + 1 + 7 + 1


def test_ci95():
    assert ci95([2.0]) == (2.0, 0.0)
    mean, half = ci95([1.0, 2.0, 3.0])
    assert mean == 2.0 and half == pytest.approx(2.4841, abs=1e-3)  # t(0.975, 2) * 1 / sqrt(3)


def test_saturation_knee_and_aggregation_over_repeats():
    rows = []
    for rep, noise in enumerate((0.0, 0.02)):
        for rate, tput in ((0.5, 0.5), (1.0, 0.98), (2.0, 1.2)):
            rows.append({"label": "x", "mode": "distributed", "workers": 2, "strategy": "heft", "loop": "open",
                         "load": rate, "repeat": rep, "offered_rate": rate, "throughput": tput + noise,
                         "p50_ms": 700.0, "p90_ms": 800.0, "p99_ms": 900.0 + rate, "max_ms": 1000.0, "errors": 0})
    agg = aggregate(pd.DataFrame(rows))
    assert list(agg["repeats"]) == [2, 2, 2]
    assert agg.loc[agg["load"] == 2.0, "throughput"].item() == pytest.approx(1.21)
    sat = saturation(agg).iloc[0]
    assert sat["knee_rate"] == 1.0  # 1.21 of 2.0 offered is below 90%: saturated
    assert sat["max_throughput"] == pytest.approx(1.21) and sat["p99_low_load_ms"] == pytest.approx(900.5)


def test_sweep_grid_and_validation():
    p = SweepParams(mode=["centralized", "replicated", "distributed"], workers=[1, 2], strategy=["dask", "heft"],
                    rates=[1.0], repeats=2, run_id="t")
    labels = [c.label for c in p.configurations_list()]
    assert labels == ["centralized", "replicated x1", "replicated x2", "distributed w1 dask", "distributed w1 heft",
                      "distributed w2 dask", "distributed w2 heft"]
    assert len(p.points()) == 7 * 2
    assert len({pt.slug for pt in p.points()}) == 14
    assert SweepParams(workers=4, strategy="heft", rates=0.5, run_id="t").workers == [4]  # papermill -p workers 4
    with pytest.raises(ValueError, match="unknown placement strategy"):
        SweepParams(strategy=["fastest"], run_id="t")
    with pytest.raises(ValueError, match="rates"):
        SweepParams(rates=None, users=None, run_id="t")
    assert Configuration("distributed", 2, "heft", "experiments/clusters/emulated-hetero.yaml").label == "distributed w2 heft @emulated-hetero"


def test_granularity_is_a_swept_and_recorded_dimension():
    p = SweepParams(mode=["centralized", "distributed"], workers=[2], strategy=["heft", "adaptive"],
                    granularity=["stage", "branch"], rates=[1.0], run_id="t")
    assert [c.label for c in p.configurations_list()] == [
        "centralized", "distributed w2 heft stage", "distributed w2 heft branch",
        "distributed w2 adaptive stage", "distributed w2 adaptive branch",
    ]
    assert len({pt.slug for pt in p.points()}) == 5
    assert SweepParams(granularity="request", rates=1.0, run_id="t").granularity == ["request"]  # papermill -p
    assert [c.granularity for c in SweepParams(rates=1.0, run_id="t").configurations_list()] == [None, None]
    explicit = SweepParams(configurations=[{"mode": "distributed", "workers": 2, "strategy": "adaptive", "granularity": "auto"}],
                           rates=[1.0], run_id="t")
    assert explicit.configurations_list()[0].label == "distributed w2 adaptive auto"
    with pytest.raises(ValueError, match="unknown granularity 'task'"):
        SweepParams(granularity=["task"], rates=[1.0], run_id="t")


def test_a_cluster_spec_fixes_the_workers():
    p = SweepParams(mode=["distributed"], workers=[7], strategy=["dask"], cluster="experiments/clusters/local-2.yaml",
                    rates=[1.0], run_id="t")
    assert [(c.workers, c.cluster) for c in p.configurations_list()] == [(2, "experiments/clusters/local-2.yaml")]


def test_params_files_are_valid():
    import glob

    for path in glob.glob("experiments/params/*.yaml"):
        params = SweepParams.from_yaml(path, run_id="t")
        assert params.points(), path


def test_parallel_width_is_the_five_models():
    from stockdag.lab.experiments.analysis import parallel_width

    assert parallel_width() == 5


def test_recorded_configuration_hides_url_passwords():
    from stockdag.lab.experiments.sweep import _redacted

    cfg = {"cache": {"url": "redis://user:s3cret@10.0.0.5:6379/0", "size": 256}, "x": "redis://10.0.0.5:6379/0"}
    assert _redacted(cfg) == {"cache": {"url": "redis://user:***@10.0.0.5:6379/0", "size": 256}, "x": "redis://10.0.0.5:6379/0"}


@pytest.mark.parametrize("url, expected", [
    ("redis://user:s3cret@10.0.0.5:6379/0", "redis://user:***@10.0.0.5:6379/0"),
    ("redis://:s3cret@10.0.0.5:6379/0", "redis://:***@10.0.0.5:6379/0"),
    ("redis://user:pa/ss@10.0.0.5:6379/0", "redis://user:***@10.0.0.5:6379/0"),        # '/' in the password
    ("redis://user:p@ss@10.0.0.5/0", "redis://user:***@10.0.0.5/0"),                  # '@' in the password
    ("rediss://tok3n@cache.example:6380", "rediss://***@cache.example:6380"),          # a bare token as user info
    ("redis://10.0.0.5:6379/0?password=s3cret&socket_timeout=2",
     "redis://10.0.0.5:6379/0?password=***&socket_timeout=2"),
    ("unix:///run/redis.sock?db=0&PASSWORD=s3cret", "unix:///run/redis.sock?db=0&PASSWORD=***"),
    ("https://h/x?api_key=s3cret&token=s3cret&x=1", "https://h/x?api_key=***&token=***&x=1"),
    ("run on tcp://u:s3cret@h:8786 today", "run on tcp://u:***@h:8786 today"),
    ("redis://10.0.0.5:6379/0", "redis://10.0.0.5:6379/0"),
    ("not a url: a:b@c", "not a url: a:b@c"),
])
def test_recorded_configuration_hides_every_credential_in_a_url(url, expected):
    from stockdag.lab.experiments.sweep import _redacted

    assert _redacted({"cache": {"url": url}, "n": 3}) == {"cache": {"url": expected}, "n": 3}
    assert "s3cret" not in json.dumps(_redacted([url, {"u": url}]))


def _points(probes, requests=30):
    return pd.DataFrame([{"point": f"p{i}", "label": f"c{i % 2}", "mode": "distributed", "workers": 2, "strategy": "heft",
                          "loop": "open", "load": 1.0, "repeat": i // 2, "offered_rate": 1.0, "throughput": 1.0,
                          "requests": requests, "ok": requests, "p50_ms": 500.0, "p99_ms": 900.0, "max_ms": 950.0,
                          "errors": 0, "probe_s": p, "capacity": 1.9} for i, p in enumerate(probes)])


def test_drift_flags_points_measured_on_a_machine_more_than_15_percent_slower():
    from stockdag.lab.experiments.analysis import drift

    d = drift(_points([0.020, 0.020, 0.020, 0.024, 0.0229, 0.020]))
    assert d["probes"] == 6 and d["median_s"] == pytest.approx(0.020)
    assert [p["point"] for p in d["slow_points"]] == ["p3"]  # +20%; p4 at +14.5% is within the 15%
    assert d["slow_points"][0]["slower_pct"] == pytest.approx(20.0)
    assert d["spread"] == pytest.approx(0.024 / 0.020)
    assert drift(_points([None] * 4)) == {"probes": 0}  # a run from before the probes


def test_p99_only_where_the_sample_supports_it():
    from stockdag.lab.experiments.analysis import tail_text

    assert tail_text(900.0, 950.0, 37) == "max of 37: 950"
    assert tail_text(900.0, 950.0, 100) == "p99 900"
    agg = aggregate(_points([0.02, 0.02], requests=30))
    assert (agg["tail_ms"] == 950.0).all() and (agg["n"] == 30).all()
    agg = aggregate(_points([0.02, 0.02], requests=120))
    assert (agg["tail_ms"] == 900.0).all()


def test_papermill_style_string_parameters_are_read_as_yaml_lists():
    p = SweepParams(workers="4", rates="[0.5]", mode='["distributed"]', strategy="[dask, heft]", users="None",
                    configurations=None, duration="6", repeats="2", min_requests="40")
    assert (p.workers, p.rates, p.mode, p.strategy, p.users) == ([4], [0.5], ["distributed"], ["dask", "heft"], None)
    assert (p.duration, p.repeats, p.min_requests) == (6.0, 2, 40)
    p = SweepParams(configurations="[{mode: centralized}, {mode: distributed, workers: 2, strategy: heft}]")
    assert [c.label for c in p.configurations_list()] == ["centralized", "distributed w2 heft"]
    with pytest.raises(ValueError, match=r"as a YAML list: write it like '\[0.5, 1.0\]'"):
        SweepParams(rates="[0.5")
    with pytest.raises(ValueError, match="unknown mode"):
        SweepParams(mode="[centralised]")


def test_each_repeat_runs_the_configurations_in_its_own_seeded_order():
    p = SweepParams(mode=["centralized", "replicated", "distributed"], workers=[2], strategy=["dask", "heft"],
                    rates=[1.0, 2.0], repeats=3, seed=5)
    orders = [[c.label for c in o] for o in p.order()]
    assert len({tuple(o) for o in orders}) == 3  # no two repeats in the same order
    assert all(sorted(o) == sorted(c.label for c in p.configurations_list()) for o in orders)
    assert orders == [[c.label for c in o] for o in SweepParams(**{**p.__dict__}).order()]  # seeded: same again
    assert orders != [[c.label for c in o] for o in SweepParams(**{**p.__dict__, "seed": 6}).order()]
    # points run repeat by repeat, each repeat's configurations in its order, every load of one before the next
    pts = p.points()
    assert [(pt.repeat, pt.config.label) for pt in pts[::2]] == [(r, label) for r, o in enumerate(orders) for label in o]


def test_report_warns_when_workers_outnumber_cores_and_explains_a_bound_exceeded():
    from stockdag.lab.experiments.report import bound_exceeded, oversubscribed

    sat = pd.DataFrame([{"label": "distributed w4 dask", "mode": "distributed", "workers": 4, "max_throughput": 1.1}])
    assert "4 worker processes on 2 cores share the cores" in oversubscribed(sat, {"cores": 2})
    assert oversubscribed(sat, {"cores": 4}) is None
    why = bound_exceeded(sat, {"throughput_bound_rps": 0.77, "parallel_capacity": 1.9, "total_work_s": 2.4})
    assert why.startswith("Above the bound: distributed w4 dask 1.100 req/s exceed 0.770 req/s.")
    assert bound_exceeded(sat, {"throughput_bound_rps": 2.0}) is None


@pytest.mark.slow
def test_report_works_on_a_committed_run_from_before_the_probes(tmp_path):
    import shutil

    from stockdag.cli import main

    src = "results/20261129-091417-default"
    if not os.path.isdir(src):
        pytest.skip("committed run not in this checkout")
    folder = shutil.copytree(src, tmp_path / "old")
    assert main(["report", str(folder)]) == 0
    report = open(folder / "REPORT.md").read()
    assert "no CPU-speed probes (recorded before they existed)" in report
    assert "max of 3:" in report  # 6 s at 0.5 req/s: no p99 is claimed


def test_report_conditions_give_the_order_the_probe_spread_and_the_slowed_points():
    from types import SimpleNamespace

    from stockdag.lab.experiments.analysis import drift
    from stockdag.lab.experiments.report import conditions

    run = SimpleNamespace(config={"order": [["c0", "c1"], ["c1", "c0"]], "server": "uvicorn, TCP_NODELAY"})
    lines = conditions(run, drift(_points([0.020, 0.020, 0.020, 0.024])))
    assert lines[0] == "Configurations ran in a seeded random order within each repeat: repeat 0: c0, c1; repeat 1: c1, c0."
    assert lines[1].startswith("Each configuration's server ran in the sweep's own process")  # a sentence: in-process
    assert lines[2] == "CPU-speed probe over 4 points: median 20.0 ms, range 20.0-24.0 ms (slowest/fastest 1.20x)."
    assert lines[-2].endswith("c1 at 1 (repeat 1, +20%).")
    assert lines[-1] == "No point's block measured a parallel capacity more than 15% below the run's median (1.9x)."
    old = conditions(SimpleNamespace(config={}), drift(_points([None] * 2)))
    assert "predates interleaving" in old[0] and "Nagle's algorithm on" in old[1] and "no CPU-speed probes" in old[3]


def test_on_a_testbed_the_centralized_baseline_runs_on_its_machines():
    spec = "experiments/clusters/testbed-2.yaml"
    params = SweepParams(mode=["centralized", "distributed"], workers=[2], cluster=spec, rates=[1.0], symbols=["AAPL"])
    configs = {c.label: c for c in params.configurations_list()}
    assert set(configs) == {"centralized @testbed-2", "distributed w2 dask @testbed-2"}  # labelled by its machines
    assert all(c.cluster == params.cluster for c in configs.values())
    local = SweepParams(mode=["centralized"], cluster="experiments/clusters/local-2.yaml", rates=[1.0], symbols=["AAPL"])
    assert local.configurations_list()[0].cluster is None  # elsewhere the baseline runs in the sweep's process


@pytest.mark.parametrize("name", ["default", "full"])
def test_a_grid_file_is_what_its_header_says(name):
    """default.yaml (`make experiment`) and full.yaml state their grid and sample size; the files must agree."""
    import re

    path = f"experiments/params/{name}.yaml"
    with open(path) as f:
        header = f.read()
    configurations, rates, points, requests = map(int, re.search(
        r"(\d+) configurations x (\d+) rates = (\d+) points of at least (\d+) measured requests", header).groups())
    params = SweepParams.from_yaml(path, run_id="t")
    assert (len(params.configurations_list()), len(params.rates), len(params.points()), params.min_requests) == (
        configurations, rates, points, requests)
    assert params.min_requests >= 30  # the low-load latency the report quotes comes from at least 30 requests


def test_the_full_grid_holds_the_default_one():
    """The full grid is one parameter file away: every point of the default is a point of full.yaml."""
    default = SweepParams.from_yaml("experiments/params/default.yaml", run_id="t")
    full = SweepParams.from_yaml("experiments/params/full.yaml", run_id="t")
    assert {c.label for c in default.configurations_list()} < {c.label for c in full.configurations_list()}
    assert set(default.rates) < set(full.rates) and default.min_requests == full.min_requests
    assert (default.duration, default.warmup, default.repeats) == (full.duration, full.warmup, full.repeats)

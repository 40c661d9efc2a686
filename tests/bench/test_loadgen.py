"""The load generator measures correctly, against real local HTTP servers started here.

The servers are :class:`stockdag.lab.bench.localserver.LocalServer` instances on
127.0.0.1, each in its own thread; their behaviour (delay, one stall,
scripted failures and hangs) is known, so the measurement can be checked.
"""
from __future__ import annotations

import json
import math
import socket

import pandas as pd
import pytest
from hdrh.histogram import HdrHistogram

from stockdag.cli import main
from stockdag.lab.bench import RECORD_COLUMNS, BenchConfig, run
from stockdag.lab.bench.localserver import LocalServer


def test_fixed_delay_is_a_lower_bound_of_every_latency():
    # real sockets: no response can come before the server's 50 ms sleep ends. How close p50 comes to
    # the delay depends on the machine's load, so the exact values are checked on a virtual clock
    # (test_loadgen_clock.py), not here
    with LocalServer(delay=0.05) as server:
        result = run(BenchConfig(server.url, rate=20, duration=2.0, warmup=0.5))
    s = result.summary
    assert s.errors == {} and s.ok == 40
    assert s.latency_ms["p50"] >= 50.0 and (result.records["service_time"] >= 0.05).all()
    assert s.latency_ms["max"] >= s.latency_ms["p99"] >= s.latency_ms["p50"]
    assert s.latency_all_ms == s.latency_ms  # nothing failed: both distributions are the same


def test_a_stall_longer_than_the_timeout_moves_the_all_requests_p99():
    # the stub server freezes for 1.5 s, 0.5 s after its first request; the timeout is 0.5 s. Every request
    # in flight during the stall's first second times out (at 50 req/s, dozens of 100), so more than 1% of
    # all requests took at least the timeout: the all-requests p99 is >= 500 ms by construction, while the
    # successful-only distribution leaves them out
    with LocalServer(delay=0.005, stall_after=0.5, stall_for=1.5) as server:
        s = run(BenchConfig(server.url, rate=50, requests=100, timeout=0.5)).summary
    assert s.errors.get("timeout", 0) >= 2 and s.ok + s.errors["timeout"] == 100
    assert s.latency_all_ms["p99"] >= 500.0
    assert HdrHistogram.decode(s.hdr_all).get_total_count() == 100
    assert HdrHistogram.decode(s.hdr).get_total_count() == s.ok


def test_errors_and_timeouts_are_counted_not_dropped():
    # 40 requests: every 5th hangs 2 s (past the 0.3 s timeout), every other 4th answers 500
    with LocalServer(fail_every=4, hang_every=5, hang_for=2.0) as server:
        result = run(BenchConfig(server.url, rate=40, requests=40, timeout=0.3))
    s = result.summary
    assert len(result.records) == s.requests == 40
    assert s.errors == {"timeout": 8, "http_500": 8}
    assert s.ok == 24
    timeouts = result.records[result.records["error"] == "timeout"]
    assert (timeouts["status"] == 0).all() and (timeouts["service_time"] >= 0.3).all()


def test_connection_refused_is_counted():
    with socket.socket() as sock:  # a port nothing listens on once this socket closes
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    s = run(BenchConfig(f"http://127.0.0.1:{port}/", rate=50, requests=5, timeout=1.0)).summary
    assert s.errors == {"connect": 5} and s.ok == 0 and s.latency_ms == {}


def test_warmup_is_recorded_but_excluded(tmp_path):
    with LocalServer() as server:
        result = run(BenchConfig(server.url, rate=40, duration=1.0, warmup=0.5))
    rec = result.records
    assert list(rec.columns) == list(RECORD_COLUMNS)
    assert rec["warmup"].sum() == math.ceil(0.5 * 40)
    assert result.summary.requests == 40 == len(rec) - rec["warmup"].sum()
    # intended times follow the constant schedule; nobody is sent before its time
    assert rec["intended"].diff().dropna().round(6).eq(round(1 / 40, 6)).all()
    assert (rec["sent"] >= rec["intended"]).all() and (rec["end"] >= rec["sent"]).all()
    for name in ("r.parquet", "r.csv"):
        result.write(str(tmp_path / name))
    back = pd.read_parquet(tmp_path / "r.parquet")
    assert len(back) == len(rec) and list(back.columns) == list(RECORD_COLUMNS)
    assert len(pd.read_csv(tmp_path / "r.csv")) == len(rec)
    with pytest.raises(ValueError, match="parquet or .csv"):
        result.write(str(tmp_path / "r.txt"))


def test_poisson_arrivals_are_seeded():
    with LocalServer() as server:
        a = run(BenchConfig(server.url, rate=200, requests=100, arrivals="poisson", seed=3)).records
        b = run(BenchConfig(server.url, rate=200, requests=100, arrivals="poisson", seed=3)).records
    assert a["intended"].tolist() == b["intended"].tolist()
    gaps = a["intended"].diff().dropna()
    assert gaps.nunique() > 50  # exponential gaps, not the constant 5 ms


def test_closed_loop_by_request_count():
    with LocalServer() as server:
        result = run(BenchConfig(server.url, users=4, requests=50))
    assert result.summary.requests == 50 and result.summary.ok == 50 and result.summary.loop == "closed"


@pytest.mark.parametrize("kwargs", [{}, {"rate": 1, "users": 1}, {"rate": -1}, {"users": 0},
                                    {"rate": 1, "arrivals": "bursty"}, {"rate": 1, "timeout": 0}])
def test_config_is_validated(kwargs):
    with pytest.raises(ValueError):
        BenchConfig("http://127.0.0.1:1/", **kwargs)


def test_cli_bench_json_and_records(tmp_path, capsys):
    out = tmp_path / "records.csv"
    with LocalServer() as server:
        code = main(["bench", server.url, "--rate", "50", "--requests", "25", "--warmup", "0", "--json", "--out", str(out)])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["requests"] == 25 and summary["ok"] == 25 and summary["loop"] == "open"
    assert set(summary["latency_ms"]) == {"p50", "p90", "p99", "p99.9", "max", "mean"}
    assert set(summary["latency_all_ms"]) == set(summary["latency_ms"])  # both distributions
    assert summary["warnings"] == ["25 measured requests: p99 needs at least 100, so the tail is given as the max of 25"]
    assert summary["hdr"]  # the encoded HDR histogram, for merging runs later
    assert len(pd.read_csv(out)) == 25


def test_cli_bench_rejects_bad_output_name(capsys):
    assert main(["bench", "http://127.0.0.1:1/", "--rate", "1", "--out", "x.txt"]) == 2
    assert "parquet or .csv" in capsys.readouterr().err


def test_cli_bench_says_plainly_when_the_server_is_overloaded(capsys):
    # every request hangs past the timeout: the table says how many timed out and suggests a lower rate
    with LocalServer(hang_every=1, hang_for=2.0) as server:
        main(["bench", server.url, "--rate", "20", "--requests", "10", "--warmup", "0", "--timeout", "0.2"])
    out = capsys.readouterr().out
    assert "warning: 10 timed out of 10: the offered rate (20 req/s) exceeds what the server answers" in out
    assert "try --rate 5" in out  # nothing answered: a quarter of the offered rate


def test_default_timeout_waits_for_the_servers_own_deadline():
    from stockdag.lab.bench.loadgen import DEFAULT_TIMEOUT, default_timeout

    assert default_timeout({"service": "stockdag", "deadline": 60}) == 65.0  # the server's 504 comes first
    assert default_timeout(None) == DEFAULT_TIMEOUT == 30.0

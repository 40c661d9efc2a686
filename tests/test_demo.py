"""``stockdag demo``: centralized and distributed interleaved, with the ratios the issue asks for."""
import json

import pytest

from stockdag.cli import main
from stockdag.lab.demo import compare
from stockdag.pipeline import STAGES

pytestmark = pytest.mark.slow


def test_demo_interleaves_and_records_what_it_ran(small):
    cmp = compare(requests=3, workers=1, in_flight=2, profile="refit", warmup=1)
    # every measured request ran both ways, one after the other
    assert len(cmp.centralized_latency) == len(cmp.distributed_latency) == 3
    # load (the default) on one worker thread: one task a request in both phases, as built
    assert cmp.granularity == "load" and cmp.built == {"latency": {"request": 3}, "throughput": {"request": 3}}
    assert cmp.overhead_per_request == pytest.approx(
        sorted(cmp.distributed_latency)[1] - sorted(cmp.centralized_latency)[1])
    assert len(cmp.strategies["dask"]["throughput_ratio_rounds"]) == 2
    assert sorted(t.id for t in cmp.example.trace) == sorted(s.id for s in STAGES)
    # Dask's floor: one no-op round trip after each measured pair, and the least ratio it allows
    assert len(cmp.floor) == 3 and all(f > 0 for f in cmp.floor)
    assert cmp.floor_ratio == pytest.approx(1 + sorted(cmp.floor)[1] / sorted(cmp.centralized_latency)[1])


def test_demo_json_reports_latency_ratio_and_granularity(small, capsys):
    assert main(["demo", "--profile", "refit", "--workers", "1", "--requests", "2", "--in-flight", "2",
                 "--granularity", "branch", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["latency_ratio"] > 0 and out["granularity"] == "branch"
    assert out["built"] == {"latency": {"branch": 2}, "throughput": {"branch": 2}}
    assert set(out["batching"]) == {"scheduler_to_worker", "scheduler_to_client", "worker_to_scheduler", "client_to_scheduler"}
    (dist,) = out["distributed"].values()
    assert len(dist["latency"]) == len(out["centralized_latency"]) == 2
    assert out["floor"] > 0 and out["floor_ratio"] > 1


def test_demo_json_reports_the_granularity_each_phase_built(small, capsys):
    # issue 24 item 25: with load on 2 worker threads, the latency phase (1 in flight) builds branch requests and
    # the throughput phase (4 in flight) one-task requests; --json said "branch" for both
    assert main(["demo", "--profile", "refit", "--workers", "2", "--requests", "8", "--in-flight", "4",
                 "--granularity", "load", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["granularity"] == "load"
    assert out["built"]["latency"] == {"branch": 8}
    assert out["built"]["throughput"].get("request", 0) >= 2  # once the cluster's 2 threads each have one in flight


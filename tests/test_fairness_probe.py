"""The fairness probe measures each placement where it says it does, and takes its ratios against the baseline."""
from __future__ import annotations

import json

import pytest

from stockdag.lab import fairness

pytestmark = pytest.mark.slow


def test_summary_ratios_are_per_request_against_the_reference():
    times = {"in_process": [1.2, 2.4], "own_process": [1.0, 2.0], "worker_profiler_on": [1.1, 2.0],
             "worker_profiler_off": [1.0, 1.8]}
    s = fairness.summarize(times)
    assert s["own_process"]["ratio_to_own_process"]["median"] == pytest.approx(1.0)
    assert s["in_process"]["ratio_to_own_process"]["median"] == pytest.approx(1.2)
    assert s["worker_profiler_on"]["ratio_to_own_process"] == pytest.approx({"median": 1.05, "q1": 1.025, "q3": 1.075})
    assert s["in_process"]["stage_ms"]["median"] == pytest.approx(1800)


def test_probe_runs_each_placement_where_it_claims(tmp_path):
    result = fairness.probe(requests=1, profile="refit", warmup=0)
    where = result["placements"]
    # the old baseline shares its interpreter with a scheduler and a client; the new one has neither
    assert where["in_process"]["dask_scheduler"] and where["in_process"]["dask_client"]
    assert where["own_process"]["isolated"] and not where["own_process"]["dask_client"]
    assert not where["own_process"]["dask_scheduler"] and where["own_process"]["pid"] != where["in_process"]["pid"]
    # each worker reports its own profiler setting, read inside the worker process
    assert [w["profiler"] for w in where["worker_profiler_on"].values()] == [True]
    assert [w["profiler"] for w in where["worker_profiler_off"].values()] == [False]
    assert all(len(v) == 1 and v[0] > 0 for v in result["times_s"].values())
    json.dumps(result, default=str)  # what --out writes
    assert "own_process" in fairness.format_table(result)

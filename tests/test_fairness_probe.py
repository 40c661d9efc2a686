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


def test_probe_runs_each_placement_where_it_claims(tmp_path, small):
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


def test_before_after_summarizes_each_side_over_its_rounds(tmp_path):
    def demo(central, dist, lat, thr):
        return {"centralized_latency": central, "distributed": {"dask": {"latency": dist}}, "latency_ratio": lat,
                "throughput_ratio": thr, "machine": {"baseline": {"isolated": True, "pid": 1, "threads": ["MainThread"]}}}

    for name, run in {"old-1": demo([0.2, 0.4], [0.3], 1.0, 1.1), "old-2": demo([0.6], [0.3], 0.8, 1.3),
                      "new-1": demo([0.1], [0.2], 1.5, 0.9)}.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(run))
    table = fairness.before_after(str(tmp_path))
    old = next(line for line in table.splitlines() if line.startswith("| old"))
    # centralized p50s 300 and 600 ms: median 450, range 300-600; latency ratios 1.0 and 0.8
    assert "| old | 2 | 450 (300-600) | 300 (300-300) | 0.900 (0.800-1.000) | 1.200 (1.100-1.300) |" == old
    assert "| new | 1 | 100 (100-100)" in table and '"isolated": true' in table and "MainThread" not in table
    with pytest.raises(FileNotFoundError):
        fairness.before_after(str(tmp_path / "empty"))


def test_stockdag_fairness_before_after_writes_the_summary_and_an_empty_folder_is_one_line(tmp_path, capsys):
    from stockdag.cli import main

    run = {"centralized_latency": [0.1], "distributed": {"dask": {"latency": [0.2]}}, "latency_ratio": 2.0,
           "throughput_ratio": 0.5, "machine": {}}
    (tmp_path / "new-1.json").write_text(json.dumps(run))
    assert main(["fairness", "--before-after", str(tmp_path)]) == 0
    assert "| new | 1 | 100 (100-100)" in (tmp_path / "SUMMARY.md").read_text()
    capsys.readouterr()
    (tmp_path / "empty").mkdir()
    assert main(["fairness", "--before-after", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("stockdag: error: no old-*.json") and err.count("\n") == 1


def test_stockdag_overhead_refuses_an_unknown_batching_preset_before_starting_anything(capsys):
    from stockdag.cli import main

    assert main(["overhead", "--batching", "turbo"]) == 2
    assert "unknown preset 'turbo' (choose from dask, fast" in capsys.readouterr().err


def test_before_after_prints_milliseconds_whole_and_ratios_to_three_decimals(tmp_path):
    run = {"centralized_latency": [1.2104], "distributed": {"dask": {"latency": [1.2631]}}, "latency_ratio": 1.0435,
           "throughput_ratio": 0.9712, "machine": {}}
    (tmp_path / "old-1.json").write_text(json.dumps(run))
    assert "| old | 1 | 1210 (1210-1210) | 1263 (1263-1263) | 1.044 (1.044-1.044) | 0.971 (0.971-0.971) |" \
        in fairness.before_after(str(tmp_path))

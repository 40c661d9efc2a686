"""Granularity in the simulator (fused tasks: one scheduler pass, hops only between tasks), its calibration,
and the measured speeds of a spec's workers: mechanisms on a virtual clock and on synthetic traces."""
from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from stockdag.lab.bench.loadgen import BenchConfig
from stockdag.lab.simulate import Costs, Overheads, SimConfig, SimWorker, calibrate, simulate
from stockdag.lab.simulate.model import STAGE_IDS
from stockdag.pipeline import STAGES, task_groups
from stockdag.placement import STRATEGIES, Strategy

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXED = np.array([[0.001, 0.001, 0.002, 0.002, 0.01, 0.04, 0.005, 0.25, 0.07, 0.005, 0.24, 0.001]])
OV = Overheads(request=0.01, hop=0.002, task=0.001)


def fixed_costs():
    return Costs(FIXED, {s: 0.0 for s in STAGE_IDS})


def run(workers, granularity, bench=None, strategy="heft"):
    bench = bench or BenchConfig("sim://", rate=0.5, requests=5, warmup=0.0)  # 2 s apart: no queueing
    return simulate(SimConfig("distributed", workers, strategy, granularity=granularity), fixed_costs(), OV, bench).summary


def test_a_request_fused_into_one_task_passes_the_scheduler_once():
    one = [SimWorker("a")]
    fused = run(one, "request")
    assert fused.extra["tasks"] == 5
    # request overhead, one scheduler pass, the stages back to back: no hop at all
    assert fused.latency_ms["p50"] == pytest.approx((0.01 + 0.001 + FIXED.sum()) * 1000, rel=1e-3)
    staged = run(one, "stage")
    assert staged.extra["tasks"] == 60
    # the one thread waits a hop and a pass after C1, after C6 and before C12, when nothing else is ready
    assert staged.latency_ms["p50"] >= fused.latency_ms["p50"] + 3 * (0.002 + 0.001) * 1000 - 1


class Recording(Strategy):
    """Every task on the first worker; remembers the task names it was shown."""

    name = "recording-granularity"
    seen: list = []

    def place(self, tasks, workers, costs):
        Recording.seen.append(tuple(t.stage for t in tasks))
        return {t.key: workers[0].address for t in tasks}


def test_branch_granularity_shows_strategies_the_fused_chains(monkeypatch):
    monkeypatch.setitem(STRATEGIES, Recording.name, Recording)
    Recording.seen.clear()
    s = run([SimWorker("a"), SimWorker("b")], "branch", strategy=Recording.name)
    groups = task_groups("branch", STAGES)
    assert s.extra["tasks"] == 5 * len(groups) == 45
    assert all(sorted(names) == sorted(g.name for g in groups) for names in Recording.seen)
    assert "fetch_prices+make_features" in Recording.seen[0]


def test_auto_is_one_task_on_one_thread_and_the_branches_on_more():
    assert run([SimWorker("a")], "auto").extra["tasks"] == 5
    assert run([SimWorker("a"), SimWorker("b")], "auto").extra["tasks"] == 45
    assert run([SimWorker("a", threads=2)], "auto").extra["tasks"] == 45


def test_load_builds_one_task_per_request_while_every_thread_is_busy():
    two = [SimWorker("a"), SimWorker("b")]
    alone = BenchConfig("sim://", users=1, requests=20, warmup=0.0, timeout=600.0)
    assert run(two, "load", alone).extra["tasks"] == 20 * 9
    # four users on two threads: the first two requests find fewer than two in flight (branch), every later one
    # finds three (one task each)
    crowd = BenchConfig("sim://", users=4, requests=20, warmup=0.0, timeout=600.0)
    assert run(two, "load", crowd).extra["tasks"] == 2 * 9 + 18 * 1


def test_an_unknown_granularity_is_refused():
    with pytest.raises(ValueError, match="unknown granularity 'coarse'"):
        SimConfig("distributed", [SimWorker("a")], "dask", granularity="coarse")


def _trace(ids, gap=0.001, worker="w", scale=None):
    out, t = [], 0.0
    for i in ids:
        d = 0.01 * (scale or {}).get(i, 1.0)
        out.append({"id": i, "start": t, "end": t + d, "worker": worker})
        t += d + gap
    return out


def test_gaps_inside_one_fused_task_are_not_scheduler_overheads():
    order = [i for g in task_groups("branch", STAGES) for i in g.ids]  # each chain's stages back to back, as fused
    entries = {e["id"]: e for e in _trace(order)}
    task, hop = calibrate._gaps([(entries, 0.2)], "stage")
    assert len(task) + len(hop) == 11
    assert calibrate._gaps([(entries, 0.2)], "request") == ([], [])
    task, hop = calibrate._gaps([(entries, 0.2)], "branch")
    assert len(task) + len(hop) == len(task_groups("branch", STAGES)) - 1


def test_a_point_runs_at_its_configuration_granularity_else_the_runs():
    cfg = {"stockdag_config": {"pipeline": {"granularity": "auto"}}}
    assert calibrate.point_granularity({"config": {"granularity": "load"}}, cfg) == "load"
    assert calibrate.point_granularity({"config": {"granularity": None}}, cfg) == "auto"
    assert calibrate.point_granularity({"config": {}}, {"stockdag_config": {"pipeline": None}}) == "stage"
    one = {"config": {"mode": "distributed", "workers": 1, "granularity": None}}
    assert calibrate.resolved_granularity(one, cfg) == "request"
    assert calibrate.resolved_granularity({"config": {**one["config"], "workers": 2}}, cfg) == "branch"


HETERO_SPEC = os.path.join(REPO, "experiments", "clusters", "emulated-hetero.yaml")


def test_measured_speeds_pair_the_traced_workers_with_the_spec_by_rank():
    """fast-0 (nominal 1.0) runs stages 1.25x slower than the calibration, slow-0 (nominal 0.5) 2.5x slower."""
    cal = {"stages": list(STAGE_IDS), "samples": [[0.01] * len(STAGE_IDS)]}
    slow_ids, fast_ids = ["C1", "C6", "C5", "C4", "C9", "C11"], ["C2", "C3", "C7", "C8", "C10", "C12"]

    def records(first_slow):
        traces = []
        for _k in range(3):
            entries = _trace(slow_ids, worker="tcp://x:1" if first_slow else "tcp://x:2", scale=dict.fromkeys(STAGE_IDS, 2.5)) + \
                _trace(fast_ids, worker="tcp://x:2" if first_slow else "tcp://x:1", scale=dict.fromkeys(STAGE_IDS, 1.25))
            traces.append(json.dumps(entries))
        return pd.DataFrame({"status": [200] * 3, "trace": traces, "service_time": [0.3] * 3})

    def meta(label):
        return {"point": label, "config": {"mode": "distributed", "workers": 2, "strategy": "heft",
                                           "cluster": HETERO_SPEC, "label": label}}

    pts = [(meta("a"), records(True)), (meta("b"), records(False)),
           ({"point": "c", "config": {"mode": "centralized", "label": "centralized"}}, records(True))]
    speeds = calibrate.measured_speeds(REPO, cal, pts)
    assert list(speeds) == [HETERO_SPEC]
    got = speeds[HETERO_SPEC]
    assert got["fast-0"]["measured"] == pytest.approx(0.8) and got["fast-0"]["nominal"] == 1.0
    assert got["slow-0"]["measured"] == pytest.approx(0.4) and got["slow-0"]["nominal"] == 0.5
    assert got["fast-0"]["stages"] == got["slow-0"]["stages"] == 2 * 3 * 6


def test_only_points_of_the_default_pipeline_are_modelled():
    from stockdag.lab.simulate.calibrate import modelled

    cfg = {"pipelines": {"width/w05": {"name": "w05", "models": ["ridge", "random_forest", "lightgbm", "knn", "mlp"], "steps": []},
                         "width/w05-deep": {"name": "w05-deep", "models": ["ridge", "random_forest", "lightgbm", "knn", "mlp"],
                                            "steps": ["market", "ensemble", "interval"]},
                         "width/w10": {"name": "w10", "models": ["ridge", "knn"], "steps": []}}}
    point = lambda pipe: {"config": {"pipeline": pipe}}  # noqa: E731
    assert modelled(point(None), cfg) and modelled(point("width/w05"), cfg)
    assert not modelled(point("width/w05-deep"), cfg) and not modelled(point("width/w10"), cfg)
    assert not modelled(point("width/unrecorded"), cfg)


def test_a_run_of_other_pipelines_only_is_one_clear_error(tmp_path):
    import json

    from stockdag.lab.simulate.calibrate import CalibrationError, points

    (tmp_path / "points").mkdir()
    (tmp_path / "config.json").write_text(json.dumps({"pipelines": {"width/w10": {"models": ["ridge"], "steps": []}}}))
    (tmp_path / "points" / "p.json").write_text(json.dumps({"point": "p", "config": {"pipeline": "width/w10"}}))
    with pytest.raises(CalibrationError, match="no point runs the pipeline the simulator models.*width/w10"):
        points(str(tmp_path))

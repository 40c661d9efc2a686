"""Every conclusion of a REPORT is computed from its run: synthetic runs whose answer is known get that answer.

The folders are written the way the sweep writes them, with several repeats, so the paired intervals of
:mod:`stockdag.lab.experiments.stats` have something to judge. No service runs.
"""
from __future__ import annotations

import dataclasses
import glob
import json
import os

import pytest
from scipy import stats as sps
from test_report import _records, _trace

from stockdag.lab.experiments import analysis, report, stats
from stockdag.lab.experiments.sweep import SweepParams, check_resume
from stockdag.pipeline.spec import load_pipeline

CENTRAL = {"mode": "centralized"}


def dist(strategy, workers=2, **kw):
    return {"mode": "distributed", "workers": workers, "strategy": strategy, **kw}


def write_repeats(folder, configs, *, users=1, n=30, capacity=None, git=None, dirty=False, finished=None) -> str:
    """A run folder: ``configs`` is ``[(configuration, [latency s of repeat 0, 1, ...])]``, one point per repeat.

    ``capacity``: ``{(label, repeat): parallel capacity of that block}`` (others 1.9); ``git``: a per-point commit
    record ``{label: {"commit": ..., "dirty": ...}}`` (None: points from before the per-point record).
    """
    os.makedirs(folder / "points")
    trace = _trace(load_pipeline(None))
    configurations, repeats = [], 0
    for i, (c, latencies) in enumerate(configs):
        label = c.get("label") or ("centralized" if c["mode"] == "centralized" else
                                   f"distributed w{c['workers']} {c['strategy']}" + (f" {c['granularity']}" if c.get("granularity") else ""))
        config = {"mode": c["mode"], "workers": c.get("workers", 1), "strategy": c.get("strategy"), "cluster": c.get("cluster"),
                  "granularity": c.get("granularity"), "pipeline": None, "label": label}
        configurations.append(config)
        repeats = max(repeats, len(latencies))
        for rep, latency in enumerate(latencies):
            slug = f"{label.replace(' ', '-')}--users{users}--r{rep}"
            _records(n, latency, trace).to_parquet(folder / "points" / f"{slug}.parquet", index=False)
            meta = {"point": slug, "config": config, "loop": "closed", "load": float(users), "repeat": rep,
                    "summary": {"url": "http://127.0.0.1:1", "loop": "closed", "rate": None, "users": users,
                                "arrivals": None, "duration": 10.0, "warmup": 0.0, "timeout": 30.0},
                    "cluster": {},
                    "probe": {"before_s": 0.02, "after_s": 0.02, "speed_s": 0.02, "block": i,
                              "capacity": (capacity or {}).get((label, rep), 1.9)},
                    "finished": (finished or {}).get((label, rep), f"2026-11-30T00:{10 + i:02d}:{10 + rep:02d}")}
            if git is not None:
                meta["git"] = git.get(label, {"commit": "abc", "dirty": dirty})
            (folder / "points" / f"{slug}.json").write_text(json.dumps(meta))
    config = {
        "run_id": folder.name, "started": "2026-11-30T00:00:00",
        "params": {"profile": "refit", "cache": "lru", "mix": "uniform", "symbols": ["AAPL"], "start": "2012-01-01",
                   "end": "2012-12-31", "duration": 10.0, "warmup": 0.0, "repeats": repeats, "rates": None,
                   "users": [users], "cluster": None},
        "versions": {"dask": "x", "python": "3"}, "git": {"commit": "abc", "dirty": dirty},
        "machine": {"cores": 2, "parallel_capacity": 2.0, "cpu_model": "test", "memory_gib": 1, "load_average": 0},
        "configurations": configurations, "pipelines": {}, "server": "uvicorn, TCP_NODELAY",
        "stockdag_config": {"pipeline": {"granularity": "branch"}},
    }
    (folder / "config.json").write_text(json.dumps(config))
    return str(folder)


def text_of(folder) -> str:
    return report.markdown(report.compute(folder), [])


def line_with(text: str, start: str) -> str:
    (line,) = [x for x in text.splitlines() if x.startswith(start)]
    return line


# -- the statistics -----------------------------------------------------------------------------------------------

def test_paired_ratio_is_the_geometric_mean_with_scipys_t_interval_on_log_ratios():
    import numpy as np

    a, b = [1.10, 1.30, 1.20, 1.25], [1.0, 1.0, 1.0, 1.0]
    r = stats.paired_ratio(a, b)
    logs = np.log(np.array(a) / np.array(b))
    ci = sps.t.interval(0.95, len(logs) - 1, loc=logs.mean(), scale=sps.sem(logs))
    assert (r.value, r.low, r.high, r.n) == pytest.approx((np.exp(logs.mean()), np.exp(ci[0]), np.exp(ci[1]), 4))
    assert r.tied is False
    assert stats.paired_ratio([1.1, 0.9, 1.0], [1.0, 1.0, 1.0]).tied is True
    two = stats.paired_ratio([2.0, 2.0], [1.0, 1.0])  # below MIN_REPEATS: a ratio, no interval, no judgement
    assert (two.value, two.judged, two.tied) == (pytest.approx(2.0), False, None)


def test_rank_names_the_best_and_only_the_strategies_whose_interval_contains_one():
    values = {"heft": {0: 400, 1: 410, 2: 405}, "dask": {0: 402, 1: 420, 2: 396}, "round-robin": {0: 600, 1: 610, 2: 590}}
    r = stats.rank(values, "p50", lower_is_better=True)
    assert r.best == "heft" and r.judged and r.tied == ["dask"]
    assert r.versus_best["round-robin"].low > 1
    assert stats.rank({"heft": {0: 1.0}, "dask": {0: 2.0}}, "throughput", lower_is_better=False).best == "dask"
    assert stats.rank({"heft": {0: 1.0}}, "p50", True) is None


# -- the sentences, from synthetic runs ---------------------------------------------------------------------------

def test_heft_slower_than_centralized_is_reported_as_losing(tmp_path):
    folder = write_repeats(tmp_path / "hetero", [
        (CENTRAL, [0.65, 0.66, 0.64]), (dist("heft"), [0.77, 0.78, 0.76]), (dist("fastest-node"), [0.72, 0.74, 0.73]),
        (dist("dask"), [1.6, 1.5, 1.7])])
    text = text_of(folder)
    line = line_with(text, "- Against centralized, p50 at the lowest load")
    loses = line.split("loses to centralized: ")[1]
    assert "distributed w2 heft 1.18x [" in loses and "distributed w2 fastest-node 1.12x [" in loses
    assert "beats centralized" not in line and "tied with centralized" not in line
    assert "avoids that" not in text  # the fixed sentence that contradicted this very run is gone


def test_heft_faster_than_centralized_is_reported_as_winning(tmp_path):
    folder = write_repeats(tmp_path / "homo", [(CENTRAL, [0.65, 0.66, 0.64]), (dist("heft"), [0.45, 0.44, 0.46])])
    line = line_with(text_of(folder), "- Against centralized, p50 at the lowest load")
    assert "beats centralized: distributed w2 heft 0.69x [" in line and "loses to centralized" not in line


def test_the_best_strategy_its_ties_and_the_ratio_to_random(tmp_path):
    folder = write_repeats(tmp_path / "rank", [
        (CENTRAL, [0.65, 0.66, 0.64]), (dist("heft"), [0.40, 0.41, 0.405]), (dist("dask"), [0.402, 0.42, 0.396]),
        (dist("round-robin"), [0.60, 0.61, 0.59]), (dist("random"), [0.55, 0.56, 0.54])])
    text = text_of(folder)
    assert "## Which strategy, with confidence" in text and stats.METHOD in text
    best = line_with(text, "- cluster `embedded LocalCluster`, 2 workers, profile `refit`, closed loop 1 user, p50:")
    assert "best distributed w2 heft 40" in best
    assert "statistically tied with it: distributed w2 dask (" in best
    assert "round-robin" not in best.split("tied with it:")[1].split("(")[0]
    rnd = line_with(text, "- cluster `embedded LocalCluster`, 2 workers, closed loop 1 user, p50 against `random`:")
    heft = stats.paired_ratio([0.40, 0.41, 0.405], [0.55, 0.56, 0.54])
    assert f"distributed w2 heft {heft.value:.2f}x [{heft.low:.2f}-{heft.high:.2f}]" in rnd
    assert rnd.endswith("better than random: distributed w2 heft, distributed w2 dask; "
                        "not shown better than random: distributed w2 round-robin.")


def test_a_clear_winner_is_named_alone_and_a_strategy_no_better_than_random_says_so(tmp_path):
    folder = write_repeats(tmp_path / "clear", [
        (CENTRAL, [0.65, 0.66, 0.64]), (dist("heft"), [0.30, 0.31, 0.305]), (dist("dask"), [0.55, 0.57, 0.54]),
        (dist("random"), [0.56, 0.55, 0.56])])
    text = text_of(folder)
    best = line_with(text, "- cluster `embedded LocalCluster`, 2 workers, profile `refit`, closed loop 1 user, p50:")
    assert "best distributed w2 heft 30" in best and "; no other strategy is tied with it (" in best
    assert "statistically tied" not in best
    rnd = line_with(text, "- cluster `embedded LocalCluster`, 2 workers, closed loop 1 user, p50 against `random`:")
    dask = stats.paired_ratio([0.55, 0.57, 0.54], [0.56, 0.55, 0.56])
    assert dask.tied  # the numbers themselves: dask's interval holds random's
    assert f"distributed w2 dask {dask.value:.2f}x [{dask.low:.2f}-{dask.high:.2f}]" in rnd
    assert rnd.endswith("better than random: distributed w2 heft; not shown better than random: distributed w2 dask.")
    only = write_repeats(tmp_path / "chance", [
        (CENTRAL, [0.65, 0.66, 0.64]), (dist("dask"), [0.55, 0.57, 0.54]), (dist("random"), [0.56, 0.55, 0.56])])
    rnd = line_with(text_of(only), "- cluster `embedded LocalCluster`, 2 workers, closed loop 1 user, p50 against `random`:")
    assert rnd.endswith("; none is shown better than random.")


def test_a_tie_is_reported_as_a_tie_and_one_repeat_judges_none(tmp_path):
    tie = write_repeats(tmp_path / "tie", [(CENTRAL, [0.65, 0.66, 0.64]), (dist("heft"), [0.50, 0.52, 0.48]),
                                           (dist("dask"), [0.51, 0.49, 0.52])])
    text = text_of(tie)
    best = line_with(text, "- cluster `embedded LocalCluster`, 2 workers, profile `refit`, closed loop 1 user, p50:")
    assert "best distributed w2 heft 50" in best and "statistically tied with it: distributed w2 dask (" in best
    assert "beats centralized: distributed w2 heft 0.77x [" in line_with(text, "- Against centralized, p50")
    one = write_repeats(tmp_path / "one", [(CENTRAL, [0.65]), (dist("heft"), [0.50]), (dist("dask"), [0.60])])
    text = text_of(one)
    assert "1 repeat(s): no tie can be judged (it takes 3)." in text
    assert "no `random` control ran, so no strategy here is shown to beat chance placement." in text
    assert ("faster than centralized (1 repeat: not judged): distributed w2 heft 0.77x, distributed w2 dask 0.92x."
            in line_with(text, "- Against centralized, p50"))


# -- item 9: tasks per request and the saturation comparison ------------------------------------------------------

@pytest.mark.parametrize("granularity, expected", [(None, "the 9 scheduler tasks"), ("request", "the 1 scheduler task "),
                                                   ("stage", "the 12 scheduler tasks"), ("load", "the 1-9 scheduler tasks")])
def test_tasks_per_request_come_from_the_recorded_granularity(tmp_path, granularity, expected):
    folder = write_repeats(tmp_path / "g", [(CENTRAL, [0.6]), (dist("dask", granularity=granularity), [0.5])])
    assert expected in text_of(folder)  # the run's configured granularity is branch (9 tasks)


def test_at_saturation_throughput_is_compared_with_its_bound_not_p50_with_the_critical_path(tmp_path):
    folder = write_repeats(tmp_path / "sat", [(CENTRAL, [2.6, 2.6, 2.6]), (dist("dask"), [2.0, 2.0, 2.0])], users=4)
    data = report.compute(folder)
    text = report.markdown(data, [])
    assert "Latency: the best distributed p50 at low load" not in text
    line = line_with(text, "- Latency is not compared with the critical path here")
    low = data.agg[data.agg["mode"] == "centralized"].iloc[0]
    queued = low["throughput"] * low["p50_ms"] / 1000  # Little's law (these records overlap: ~6)
    assert queued > report.QUEUED and f"the centralized server held {queued:.1f} requests at once" in line
    bound = data.lim["throughput_bound_rps"]
    central = data.sat.set_index("label").loc["centralized", "max_throughput"]
    assert f"bound of {bound:.2f} req/s" in line and f"centralized {central / bound:.2f} of it." in line
    low = write_repeats(tmp_path / "low", [(CENTRAL, [0.65]), (dist("dask"), [0.5])], n=10)  # 1 req/s x 0.65 s
    assert "Latency: the best distributed p50 at low load" in text_of(low)


# -- item 7: a block with half the machine is flagged ---------------------------------------------------------------

def test_a_block_with_low_parallel_capacity_is_flagged_though_the_probe_was_fast(tmp_path):
    folder = write_repeats(tmp_path / "cap", [(CENTRAL, [0.65, 0.65]), (dist("adaptive"), [0.5, 0.5])],
                           capacity={("distributed w2 adaptive", 0): 0.96})
    d = analysis.drift(analysis.load_run(folder).summary)
    assert d["slow_points"] == []  # the single-thread probe saw nothing
    assert [p["point"] for p in d["low_capacity_points"]] == ["distributed-w2-adaptive--users1--r0"]
    data = report.compute(folder)
    text = report.markdown(data, [])
    assert ("in a block whose parallel capacity was more than 15% below the run's median (1.9x), i.e. with fewer "
            "cores free than the others had (compare these with care): distributed w2 adaptive (repeat 0, capacity "
            "0.96x, at 1).") in text
    table = report.configurations_table(data).set_index("label")
    assert table.loc["distributed w2 adaptive", "slowed_points"] == 1 and table.loc["centralized", "slowed_points"] == 0


# -- item 8: provenance of the points, and no resume with other parameters ------------------------------------------

def test_provenance_says_dirty_other_commits_and_pauses(tmp_path):
    dirty = write_repeats(tmp_path / "d", [(CENTRAL, [0.6]), (dist("dask"), [0.5])], dirty=True, git={})
    text = text_of(dirty)
    assert "Started from a working tree with uncommitted changes on `abc`" in text
    assert "Every point recorded the run's commit `abc` (dirty)." in text
    resumed = write_repeats(tmp_path / "r", [(CENTRAL, [0.6]), (dist("dask"), [0.5])],
                            git={"distributed w2 dask": {"commit": "def0123456789", "dirty": False}})
    assert "Resumed with other code: 1 point(s) measured at `def0123456`, not at the run's `abc`." in text_of(resumed)
    paused = write_repeats(tmp_path / "p", [(CENTRAL, [0.6]), (dist("dask"), [0.5])],
                           finished={("distributed w2 dask", 0): "2026-11-30T03:00:00"})
    assert "so the sweep was probably stopped and resumed" in text_of(paused)
    assert "nothing suggests a resume" in text_of(write_repeats(tmp_path / "c", [(CENTRAL, [0.6]), (dist("dask"), [0.5])]))



def _with_order(folder: str, order: list[list[str]]) -> str:
    path = os.path.join(folder, "config.json")
    with open(path) as f:
        cfg = json.load(f)
    with open(path, "w") as f:
        json.dump(cfg | {"order": order}, f)
    return folder


def test_a_point_measured_after_points_planned_later_is_named_as_resumed(tmp_path):
    """The width run's case: its first block re-measured at the end (no per-point commit, no long pause)."""
    order = [["centralized", "distributed w2 dask"]]
    late = _with_order(write_repeats(tmp_path / "late", [(CENTRAL, [0.6]), (dist("dask"), [0.5])],
                                     finished={("centralized", 0): "2026-11-30T00:12:00"}), order)
    (tmp_path / "late" / "superseded").mkdir()
    (tmp_path / "late" / "superseded" / "centralized--users1--r0.json").write_text("{}")
    text = text_of(late)
    assert ("Resumed: 1 point(s) finished after points the sweep runs later in its recorded order, so they were "
            "measured again on a resume (centralized, repeat 0, at 1; finished 2026-11-30T00:12:00).") in text
    assert "`superseded/` keeps 1 earlier measurement(s) of points measured again" in text
    assert "nothing suggests a resume" not in text
    in_order = _with_order(write_repeats(tmp_path / "ok", [(CENTRAL, [0.6]), (dist("dask"), [0.5])]), order)
    text = text_of(in_order)
    assert "nothing suggests a resume" in text and "Resumed" not in text and "superseded" not in text


def test_a_run_is_not_resumed_with_other_parameters(tmp_path):
    params = SweepParams(mode=["centralized"], users=[1], symbols=["AAPL"], out=str(tmp_path), run_id="r")
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"params": json.loads(json.dumps(dataclasses.asdict(params), default=str))}))
    check_resume(str(cfg), params)  # the same parameters: resumes
    check_resume(str(cfg), dataclasses.replace(params, out="elsewhere"))  # found at another path: still the same run
    with pytest.raises(ValueError, match=r"was started with other parameters \(duration; duration: 8.0 recorded, "
                                         r"12.0 now\): resume it with the same ones, or start a new run_id"):
        check_resume(str(cfg), dataclasses.replace(params, duration=12.0))


def test_stockdag_sweep_refuses_a_resume_with_other_parameters_in_one_line_and_keeps_the_run(tmp_path, capsys):
    from stockdag.cli import main

    (tmp_path / "p.yaml").write_text("mode: [centralized]\nusers: [1]\nsymbols: [AAPL]\nduration: 12\n")
    run = tmp_path / "out" / "r"
    (run / "points").mkdir(parents=True)
    first = SweepParams(mode=["centralized"], users=[1], symbols=["AAPL"], out=str(tmp_path / "out"), run_id="r")
    recorded = json.dumps({"params": json.loads(json.dumps(dataclasses.asdict(first), default=str))})
    (run / "config.json").write_text(recorded)
    assert main(["sweep", str(tmp_path / "p.yaml"), "--run-id", "r", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"stockdag: error: {run} was started with other parameters (duration;")
    assert (run / "config.json").read_text() == recorded and os.listdir(run / "points") == []  # nothing lost or added


def test_each_point_records_the_commit_that_measured_it(tmp_path, monkeypatch):
    import contextlib
    from types import SimpleNamespace

    from stockdag.lab import bench
    from stockdag.lab.experiments import facts, sweep

    monkeypatch.setattr(facts, "git_commit", lambda path=None: {"commit": "feedbeef", "dirty": True})
    monkeypatch.setattr(facts, "machine", lambda: {"cores": 2})
    monkeypatch.setattr(facts, "parallel_capacity", lambda **kw: 1.9)
    monkeypatch.setattr(sweep, "serving", lambda cfg, params, log=None: contextlib.nullcontext(
        ("http://127.0.0.1:1", {"server": {"how": "thread"}}, None)))
    monkeypatch.setattr(sweep, "_warm", lambda *a: None)
    records = _records(5, 0.1, "[]")
    monkeypatch.setattr(bench, "run", lambda cfg: SimpleNamespace(records=records, summary=SimpleNamespace(to_dict=dict)))
    monkeypatch.setattr(sweep, "summarize_run", lambda folder: None)
    folder = sweep.run_sweep(SweepParams(mode=["centralized"], users=[1], symbols=["AAPL"], out=str(tmp_path),
                                         run_id="r"), progress=False)
    meta = json.load(open(os.path.join(folder, "points", "centralized--users1--r0.json")))
    assert meta["git"] == {"commit": "feedbeef", "dirty": True}


def test_a_baseline_measured_outside_the_testbed_is_named_beside_the_scaled_machines(tmp_path):
    folder = write_repeats(tmp_path / "tb", [(CENTRAL, [0.65, 0.66, 0.64]), (dist("heft"), [0.77, 0.78, 0.76])])
    assert "Testbed (scaled machines" not in text_of(folder)  # nothing ran on a testbed: no such caveat
    for path in (tmp_path / "tb" / "points").glob("distributed-w2-heft--*.json"):
        meta = json.loads(path.read_text())
        meta["cluster"] = {"cluster": {"kind": "testbed", "name": "testbed-2"}}
        path.write_text(json.dumps(meta))
    text = text_of(folder)
    assert "- Testbed (scaled machines: network namespaces with CPU quotas and capped links): distributed w2 heft;" in text
    assert "- Not on the testbed's machines: centralized ran in this host's own processes, outside every quota" in text


def test_with_a_fast_and_a_slow_centralized_machine_each_baseline_gets_its_verdict(tmp_path):
    fast = {"mode": "centralized", "label": "centralized @testbed-hetero on big-0"}
    slow = {"mode": "centralized", "label": "centralized @testbed-hetero on std-0"}
    folder = write_repeats(tmp_path / "two", [(slow, [0.80, 0.82, 0.81]), (fast, [0.40, 0.41, 0.40]),
                                              (dist("heft", 3), [0.60, 0.61, 0.59])])
    text = text_of(folder)
    against_slow = line_with(text, "- Against centralized @testbed-hetero on std-0, p50 at the lowest load")
    against_fast = line_with(text, "- Against centralized @testbed-hetero on big-0, p50 at the lowest load")
    assert "distributed w3 heft 0.74x [" in against_slow.split("beats centralized: ")[1]
    assert "distributed w3 heft 1.49x [" in against_fast.split("loses to centralized: ")[1].split(";")[0]  # the best single machine wins here
    assert "- Centralized baseline (centralized @testbed-hetero on big-0, the best of 2 single machines by throughput, then p50;" in text


def test_the_test_case_table_gives_the_best_strategy_s_speed_ups_and_bounds_per_machines(tmp_path):
    tb5 = "experiments/clusters/testbed-5.yaml"
    folder = write_repeats(tmp_path / "tc", [
        ({"mode": "centralized", "label": "centralized @testbed-1", "cluster": "experiments/clusters/testbed-1.yaml"},
         [0.80, 0.82, 0.81]),
        (dist("dask", 5, cluster=tb5), [0.50, 0.52, 0.51]), (dist("heft", 5, cluster=tb5), [0.40, 0.41, 0.40]),
        (dist("random", 5, cluster=tb5), [0.60, 0.60, 0.61]),
        (dist("dask", 5, cluster=tb5, granularity="request"), [0.79, 0.80, 0.80])])
    for path in (tmp_path / "tc" / "points").glob("*.json"):
        meta = json.loads(path.read_text())
        workers = {f"m-{i}": {"role": "worker", "cpu_share": 0.25} for i in range(meta["config"]["workers"])}
        meta["cluster"] = {"cluster": {"kind": "testbed", "machines": {"server": {"role": "server", "cpu_share": 0.25},
                                                                       **workers}}}
        path.write_text(json.dumps(meta))
    data = report.compute(folder)
    (row,) = analysis.test_cases(data.run, data.lim).to_dict("records")
    assert (row["machines"], row["case"], row["cluster"]) == (5, "4: 5 machines for 5 models", "testbed-5")
    assert row["best_p50"] == "distributed w5 heft"  # alone: dask and random are slower in every repeat
    s = data.run.summary.sort_values("repeat")

    def p50(label):  # per repeat, as the run measured it (the histogram's p50 of the records)
        return list(s[s["label"] == label]["p50_ms"])

    want = stats.paired_ratio(p50("centralized @testbed-1"), p50("distributed w5 heft"))
    assert (row["p50_speedup_vs_centralized"].value, row["p50_speedup_vs_centralized"].low) == pytest.approx(
        (want.value, want.low))
    assert row["p50_speedup_vs_whole_requests"].value == pytest.approx(
        stats.paired_ratio(p50("distributed w5 dask request"), p50("distributed w5 heft")).value)
    assert row["throughput_bound"] == pytest.approx(5.0)  # 5 machines of 0.25 over the centralized machine's 0.25
    work, cp = data.lim["total_work_s"], data.lim["critical_path_s"]
    assert row["latency_bound"] == pytest.approx(work / max(cp, work / 5))
    text = report.markdown(data, [])
    assert "## Test cases (MEASURED)" in text and "Against `centralized @testbed-1` (test case 1)" in text
    line = line_with(text, "| 4: 5 machines for 5 models | testbed-5 | 5 | ")
    assert f"| {want.value:.2f}x [{want.low:.2f}-{want.high:.2f}] |" in line and "| distributed w5 heft |" in line


# -- issue 21: a testbed point where a machine did not get its quota is flagged like a slowed one -------------------

def _with_cpu(folder: str, starved: dict) -> str:
    """Give every point of ``folder`` a testbed CPU record: ``{(label, repeat)}`` had machine m-0 starved."""
    from stockdag.deploy.testbed import cpu_usage

    def snap(t, idle, cpu, throttled):
        return {"time": t, "host": {"idle_s": idle, "total_s": 2 * t, "cores": 2},
                "machines": {"m-0": {"usage_ns": int(cpu * 1e9), "nr_periods": int(t / 0.004), "nr_throttled": throttled,
                                     "throttled_time": throttled * 3_000_000, "share": 0.25, "period_us": 4000}}}

    for fn in glob.glob(os.path.join(folder, "points", "*.json")):
        meta = json.load(open(fn))
        hungry = (meta["config"]["label"], meta["repeat"]) in starved
        meta["cpu"] = cpu_usage(snap(0.0, 0.0, 0.0, 0), snap(10.0, 0.0, 1.0 if hungry else 2.45, 0 if hungry else 2400))
        json.dump(meta, open(fn, "w"))
    return folder


def test_a_point_with_a_starved_testbed_machine_is_flagged_and_a_fed_one_is_not(tmp_path):
    folder = _with_cpu(write_repeats(tmp_path / "cpu", [(CENTRAL, [0.65, 0.65]), (dist("adaptive"), [0.5, 0.5])]),
                       starved={("distributed w2 adaptive", 1)})
    d = analysis.drift(analysis.load_run(folder).summary)
    assert d["cpu_points"] == 4 and [p["point"] for p in d["starved_points"]] == ["distributed-w2-adaptive--users1--r1"]
    assert d["starved_points"][0]["machines"] == ["m-0"]
    assert analysis.flagged_labels(analysis.load_run(folder).summary) == {"distributed w2 adaptive"}
    data = report.compute(folder)
    text = report.markdown(data, [])
    assert ("Measured with a starved testbed machine (busy in at least 50% of the point, it used less than 75% of its "
            "quota while it had work, and the host had less than 0.1 CPU idle; compare these with care): "
            "distributed w2 adaptive at 1 (repeat 1, m-0).") in text
    table = report.configurations_table(data).set_index("label")
    assert table.loc["distributed w2 adaptive", "slowed_points"] == 1 and table.loc["centralized", "slowed_points"] == 0
    fed = _with_cpu(write_repeats(tmp_path / "fed", [(CENTRAL, [0.65]), (dist("adaptive"), [0.5])]), starved=set())
    assert "No testbed machine was starved at any of the 2 points with CPU records" in text_of(fed)
    assert analysis.drift(analysis.load_run(fed).summary)["starved_points"] == []


def test_testbed_configurations_are_bounded_by_their_machines_not_by_this_host_s_cores(tmp_path):
    """5 quarter-core machines of a testbed may serve more than 2 host cores' bound computed from the baseline's
    quarter-core stage times: the REPORT must not call that oversubscribed or above the bound, and its prediction
    counts machines like the baseline's, not CPU-seconds."""
    tb5 = "experiments/clusters/testbed-5.yaml"
    folder = write_repeats(tmp_path / "tb", [
        ({"mode": "centralized", "label": "centralized @testbed-1", "cluster": "experiments/clusters/testbed-1.yaml"},
         [2.0, 2.1, 2.0]),
        (dist("dask", 5, cluster=tb5), [0.50, 0.52, 0.51])], users=1)
    untouched = text_of(folder)  # the same points without a testbed record: held to the host's cores
    assert "5 worker processes on 2 cores share the cores" in untouched
    for path in (tmp_path / "tb" / "points").glob("*.json"):
        meta = json.loads(path.read_text())
        workers = {f"m-{i}": {"role": "worker", "cpu_share": 0.25} for i in range(meta["config"]["workers"])}
        meta["cluster"] = {"cluster": {"kind": "testbed", "machines": {"server": {"role": "server", "cpu_share": 0.25},
                                                                       **workers}}}
        meta["server"] = {"how": "testbed", "machine": "server"}
        path.write_text(json.dumps(meta))
    text = text_of(folder)
    assert "share the cores" not in text and "Above the bound" not in text
    assert "against its machines' bound in the test-case table below" in text
    assert "of stage work on a machine like the baseline's (0.25 CPU), so a cluster of C such machines serves" in text

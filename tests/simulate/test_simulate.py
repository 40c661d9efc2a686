"""The simulator: mechanisms on a virtual clock, the registry's own strategies, validation on a committed run, the planner."""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from stockdag.cli import main
from stockdag.deploy import load_spec
from stockdag.lab.bench.loadgen import BenchConfig
from stockdag.lab.simulate import Costs, Overheads, SimConfig, SimWorker, calibrate, critical_path, simulate, validate
from stockdag.lab.simulate.clusters import workers_for
from stockdag.lab.simulate.model import STAGE_IDS
from stockdag.placement import STRATEGIES, Strategy

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUN = os.path.join(REPO, "results", "20261129-091417-default")
SIZES = {s: 1000.0 for s in STAGE_IDS}

# fixed stage costs: C1..C12 in table order; the models (C7-C11) run in parallel after C3 and C4
FIXED = np.array([[0.001, 0.001, 0.002, 0.002, 0.01, 0.04, 0.005, 0.25, 0.07, 0.005, 0.24, 0.001]])
NO_OVERHEAD = Overheads(central_request=0.0, request=0.0, hop=0.0, task=0.0)


def fixed_costs():
    return Costs(FIXED, {s: 0.0 for s in STAGE_IDS})


def light(n=5):
    return BenchConfig("sim://", rate=0.5, requests=n, warmup=0.0)


def test_centralized_light_load_latency_is_the_sum_of_stages_plus_overhead():
    ov = Overheads(central_request=0.003)
    s = simulate(SimConfig("centralized"), fixed_costs(), ov, light()).summary
    assert s.ok == 5 and s.extra["simulated"] is True
    assert s.latency_ms["p50"] == pytest.approx((FIXED.sum() + 0.003) * 1000, rel=1e-3)  # HDR: 3 significant digits


def test_centralized_saturates_at_one_over_the_request_time():
    bench = BenchConfig("sim://", rate=10.0, duration=60.0, warmup=0.0, timeout=1000.0)
    s = simulate(SimConfig("centralized"), fixed_costs(), NO_OVERHEAD, bench).summary
    assert s.throughput == pytest.approx(1 / FIXED.sum(), rel=0.02)


def test_replicated_k_serves_k_times_centralized_until_the_cores_run_out():
    bench = BenchConfig("sim://", rate=20.0, duration=60.0, warmup=0.0, timeout=1000.0)
    four = simulate(SimConfig("replicated", replicas=4), fixed_costs(), NO_OVERHEAD, bench).summary
    on_two = simulate(SimConfig("replicated", replicas=4, cores={"local": 2}), fixed_costs(), NO_OVERHEAD, bench).summary
    assert four.throughput == pytest.approx(4 / FIXED.sum(), rel=0.02)
    assert on_two.throughput == pytest.approx(2 / FIXED.sum(), rel=0.02)


def test_distributed_light_load_latency_follows_the_critical_path_and_the_overheads():
    ov = Overheads(request=0.01, hop=0.002, task=0.001)
    workers = [SimWorker(f"w{i}", 1) for i in range(5)]
    s = simulate(SimConfig("distributed", workers, "heft"), fixed_costs(), ov, light()).summary
    # C1 -> C6 -> C2 -> C3 -> models -> C12 is 5 dependency hops, 6 scheduler passes on the path
    cp = critical_path(FIXED[0]).seconds
    assert s.latency_ms["p99"] / 1000 >= cp + 0.01 + 5 * 0.002 + 6 * 0.001 - 1e-3
    one = simulate(SimConfig("distributed", workers[:1], "heft"), fixed_costs(), ov, light()).summary
    assert one.latency_ms["p50"] > s.latency_ms["p50"] + 0.2 * 1000  # five models in parallel vs one after another


def test_a_slow_worker_with_a_link_delay_is_slower():
    ov = Overheads(request=0.0, hop=0.001, task=0.0)
    fast = simulate(SimConfig("distributed", [SimWorker("a")], "round-robin"), fixed_costs(), ov, light()).summary
    slow = simulate(SimConfig("distributed", [SimWorker("a", speed=0.5, link_latency=0.02)], "round-robin"),
                    fixed_costs(), ov, light()).summary
    # twice the compute, plus at least the 4 dependency levels' messages through the slow link, at most 11
    hop = (0.001 + 0.02) * 1000
    assert 2 * FIXED.sum() * 1000 + 4 * hop <= slow.latency_ms["p50"] <= 2 * FIXED.sum() * 1000 + 11 * hop
    assert fast.latency_ms["p50"] < slow.latency_ms["p50"] / 1.8


def test_admission_control_sheds_past_max_in_flight():
    bench = BenchConfig("sim://", rate=20.0, duration=10.0, warmup=0.0, timeout=1000.0)
    s = simulate(SimConfig("centralized", max_in_flight=4), fixed_costs(), NO_OVERHEAD, bench).summary
    assert s.errors.get("http_503", 0) > 100 and s.ok + s.errors["http_503"] == s.requests


def test_past_the_deadline_a_request_answers_504_and_past_the_timeout_it_is_a_timeout():
    bench = BenchConfig("sim://", rate=5.0, duration=10.0, warmup=0.0, timeout=3.0)
    s = simulate(SimConfig("centralized", deadline=2.0), fixed_costs(), NO_OVERHEAD, bench).summary
    assert s.errors.get("http_504", 0) > 10 and "timeout" not in s.errors
    t = simulate(SimConfig("centralized"), fixed_costs(), NO_OVERHEAD, bench).summary
    assert t.errors.get("timeout", 0) > 10 and "http_504" not in t.errors
    assert s.latency_ms["max"] <= 2000 + 1


def test_closed_loop_users_each_wait_for_their_answer():
    bench = BenchConfig("sim://", users=3, duration=30.0, warmup=0.0, timeout=1000.0)
    s = simulate(SimConfig("replicated", replicas=3), fixed_costs(), NO_OVERHEAD, bench).summary
    assert s.loop == "closed" and s.latency_ms["p99"] == pytest.approx(FIXED.sum() * 1000, rel=1e-2)
    assert s.throughput == pytest.approx(3 / FIXED.sum(), rel=0.03)


class Recording(Strategy):
    """Every task on the last worker; remembers what it was shown."""

    name = "recording"
    calls: list = []

    def place(self, tasks, workers, costs):
        Recording.calls.append((tuple(t.stage for t in tasks), tuple(w.name for w in workers), costs))
        return {t.key: workers[-1].address for t in tasks}


def test_placement_comes_from_the_registry_strategy_objects(monkeypatch):
    monkeypatch.setitem(STRATEGIES, "recording", Recording)
    Recording.calls.clear()
    workers = [SimWorker("a"), SimWorker("b", speed=0.25)]
    bench = BenchConfig("sim://", rate=0.2, requests=4, warmup=0.0)  # 5 s apart: no queueing
    s = simulate(SimConfig("distributed", workers, "recording"), fixed_costs(), NO_OVERHEAD, bench).summary
    assert len(Recording.calls) == 4
    stages, names, costs = Recording.calls[-1]
    assert len(stages) == 12 and names == ("a", "b")
    # the cost model learned from the simulated runs: everything ran on b at a quarter speed
    assert costs.learned("random_forest", "b") == pytest.approx(FIXED[0][7] / 0.25)
    assert costs.count("random_forest", "a") == 0
    assert s.latency_ms["p50"] == pytest.approx(FIXED.sum() / 0.25 * 1000, rel=1e-2)


@pytest.fixture(scope="module")
def run_copy(tmp_path_factory):
    """The committed default run, copied so the calibration is written outside the repository."""
    dst = tmp_path_factory.mktemp("results") / os.path.basename(RUN)
    shutil.copytree(RUN, dst, ignore=shutil.ignore_patterns("simulate", "*.png", "*.ipynb"))
    calibrate.calibrate(str(dst), sizes=SIZES)
    return str(dst)


def test_calibration_uses_centralized_and_one_worker_points_only(run_copy):
    cal = calibrate.load(run_copy)
    assert cal["fitted_on"] and all(p.startswith(("centralized--", "distributed-w1-")) for p in cal["fitted_on"])
    o = cal["overheads"]
    assert 0 < o["task"] < o["hop"] + o["task"] < o["request"] < 0.1


@pytest.mark.slow
def test_validation_on_the_committed_default_run_meets_the_targets(run_copy, capsys):
    assert main(["simulate", "validate", run_copy, "--json", "--repeats", "2"]) == 0
    result = json.loads(capsys.readouterr().out, parse_constant=lambda c: pytest.fail(f"not strict JSON: {c}"))
    assert result["simulated"] is True and len(result["points"]) == 24
    m = result["median_abs_error"]["predicted_below_saturation"]
    assert m["points"] >= 10
    assert m["p50"] <= 0.10 and m["throughput"] <= 0.10 and m["p99"] <= 0.25


def test_plan_writes_a_spec_that_cluster_plan_accepts(run_copy, tmp_path, capsys):
    out = tmp_path / "planned.yaml"
    assert main(["plan", "--rate", "40", "--p99", "2.0", "--run", run_copy, "--instance-types", "c5.2xlarge",
                 "--requests", "200", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "p99" in text and "$" in text
    spec = load_spec(str(out))
    assert spec.kind == "ec2" and spec.strategy in STRATEGIES and spec.n_workers * 8 >= 40 * 0.5
    assert main(["cluster", "plan", str(out)]) == 0


def test_an_impossible_objective_is_one_clear_line(run_copy, capsys):
    assert main(["plan", "--rate", "40", "--p99", "0.05", "--run", run_copy]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    named, error = captured.err.splitlines()  # the run it calibrated on, then the one line that says why not
    assert named.startswith(f"stockdag plan: calibrating on {run_copy}") and "critical path alone takes" in error


def test_a_budget_no_cluster_fits_is_one_clear_line(run_copy, capsys):
    assert main(["plan", "--rate", "40", "--p99", "2.0", "--run", run_copy, "--max-hourly-usd", "0.1"]) == 1
    named, error = capsys.readouterr().err.splitlines()
    assert named.startswith(f"stockdag plan: calibrating on {run_copy}") and "$0.1/h" in error and "budget" in error


def test_plan_without_a_run_of_the_profile_says_so(tmp_path, capsys):
    assert main(["plan", "--rate", "1", "--p99", "2", "--profile", "pretrained", "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("stockdag: error: no measured run with profile 'pretrained'") and err.count("\n") == 1


def test_workers_of_the_emulated_spec_carry_cpu_share_and_link_delay():
    ws = workers_for({"mode": "distributed", "workers": 2,
                     "cluster": os.path.join(REPO, "experiments", "clusters", "emulated-hetero.yaml")})
    assert [(w.name, w.speed, w.link_latency) for w in ws] == [("fast-0", 1.0, 0.0), ("slow-0", 0.5, 0.02)]


HETERO = os.path.join(REPO, "results", "20261129-093503-emulated-hetero")


def _copy_run(run: str, parent) -> str:
    """A copy of a committed run's measurements (no simulated section, charts or notebooks) under ``parent``."""
    dest = parent / os.path.basename(run)
    shutil.copytree(run, dest, ignore=shutil.ignore_patterns("simulate", "charts", "*.ipynb"))
    return dest


def test_a_run_without_one_worker_points_takes_the_overheads_from_a_sibling_run(tmp_path, capsys):
    alone = _copy_run(HETERO, tmp_path / "alone")
    # no sibling with 1-worker points: one clear line, exit 2
    assert main(["simulate", "calibrate", str(alone)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no 1-worker distributed points" in err
    _copy_run(RUN, tmp_path / "alone")  # a sibling run beside it
    cal = calibrate.fit(str(alone), sizes=SIZES)
    assert cal["distributed_overheads_from"] == os.path.basename(RUN)
    assert any(p.startswith(os.path.basename(RUN) + "/distributed-w1-") for p in cal["fitted_on"])
    assert all(p.startswith("centralized--") for p in cal["fitted_on"] if "/" not in p)


def test_simulate_run_on_a_spec_prints_the_bench_summary_marked_simulated(run_copy, capsys):
    spec = os.path.join(REPO, "experiments", "clusters", "ec2-small.yaml")
    assert main(["simulate", "run", run_copy, "--spec", spec, "--rate", "2", "--duration", "20", "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["url"].startswith("SIMULATED distributed 3 workers, heft") and s["extra"]["simulated"] is True
    assert s["ok"] == s["requests"] == 40 and set(s["latency_ms"]) >= {"p50", "p90", "p99"}
    assert main(["simulate", "run", run_copy, "--strategy", "nope", "--rate", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("stockdag: error: argument --strategy: unknown placement strategy 'nope'") and err.count("\n") == 1


def test_round_robin_deals_the_tasks_in_dask_order_as_the_measured_run_shows():
    """The committed run's round-robin traces split the stages over the two workers; the simulation must split them alike."""
    meta, records = next((m, r) for m, r in calibrate.points(RUN) if m["config"]["strategy"] == "round-robin")
    entries, _ = calibrate.traces(records)[0]
    measured = {frozenset(s for s, e in entries.items() if e["worker"] == w) for w in {e["worker"] for e in entries.values()}}
    result = simulate(SimConfig("distributed", [SimWorker("0"), SimWorker("1")], "round-robin"), fixed_costs(),
                      NO_OVERHEAD, light(1), trace=True)
    spans = json.loads(result.records["trace"].iloc[0])
    simulated = {frozenset(e["id"] for e in spans if e["worker"] == w) for w in {e["worker"] for e in spans}}
    assert simulated == measured and len(measured) == 2


def test_machine_assumptions_come_from_the_configuration():
    import dask

    from stockdag.lab.simulate.planner import ec2_workers, hourly

    with dask.config.set({"stockdag.simulate.speeds": {"c5": 2.0}, "stockdag.simulate.link_latency": 0.003,
                          "stockdag.simulate.scheduler_instance_type": "t3.micro"}):
        w = ec2_workers("c5.xlarge", 2)
        assert [(x.name, x.threads, x.speed, x.link_latency, x.host) for x in w] == [
            ("c5_xlarge-0", 4, 2.0, 0.003, "c5_xlarge-0"), ("c5_xlarge-1", 4, 2.0, 0.003, "c5_xlarge-1")]
        assert hourly({"c5.xlarge": 2}) == pytest.approx(2 * 0.17 + 0.0104)


def test_calibration_takes_only_traces_of_the_pipeline_it_models():
    """The simulator models the default C1-C12 table: a request of a longer spec (deep.yaml adds C13-C16)
    has their time in its service time, so its trace must not calibrate C1-C12 (nor reach _gaps' table)."""
    import pandas as pd

    from stockdag.pipeline import stage_table
    from stockdag.pipeline.spec import load_pipeline

    def trace(ids):
        return json.dumps([{"id": s, "start": 0.01 * i, "end": 0.01 * (i + 1), "worker": "w"} for i, s in enumerate(ids)])

    deep = [s.id for s in stage_table(load_pipeline("deep"))]
    assert set(STAGE_IDS) < set(deep)
    records = pd.DataFrame({"status": [200, 200], "trace": [trace(STAGE_IDS), trace(deep)], "service_time": [0.12, 0.3]})
    used = calibrate.traces(records)
    assert [sorted(e) for e, _ in used] == [sorted(STAGE_IDS)]
    calibrate._gaps(used)  # every stage of a used trace is in the default table


AUTO_RUN = os.path.join(REPO, "results", "20261129-225208-default")


def test_a_run_whose_one_worker_points_ran_one_task_each_takes_task_and_hop_from_a_sibling(tmp_path, capsys):
    """At granularity auto a 1-worker point runs each request as one fused task: no gap between tasks shows the
    per-task or per-hop overhead (they fitted to ~0 when read between stages), only the per-request one."""
    alone = _copy_run(AUTO_RUN, tmp_path / "alone")
    assert main(["simulate", "calibrate", str(alone)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "ran each request as one task (request)" in err
    _copy_run(RUN, tmp_path / "alone")  # a sibling run beside it
    cal = calibrate.fit(str(alone), sizes=SIZES)
    sibling = calibrate.fit(str(tmp_path / "alone" / os.path.basename(RUN)), sizes=SIZES)
    assert cal["distributed_overheads_from"] == os.path.basename(AUTO_RUN) and cal["granularity"] == "auto"
    assert cal["task_hop_from"] == os.path.basename(RUN)
    o, s = cal["overheads"], sibling["overheads"]
    assert (o["task"], o["hop"]) == (s["task"], s["hop"]) and o["task"] > 1e-4
    assert 0 < o["request"] < 0.1


def test_a_calibration_stored_by_the_older_model_is_fitted_again_keeping_its_sizes(tmp_path):
    dst = tmp_path / os.path.basename(RUN)
    shutil.copytree(RUN, dst, ignore=shutil.ignore_patterns("simulate", "*.png", "*.ipynb"))
    old = calibrate.fit(str(dst), sizes={s: 7.0 for s in STAGE_IDS})
    for key in ("version", "task_hop_from", "granularity"):
        del old[key]  # as version 1 stored it
    os.makedirs(dst / "simulate")
    with open(dst / calibrate.FILE, "w") as f:
        json.dump(old | {"nbytes_source": "pickled once"}, f)
    cal = calibrate.load(str(dst))
    assert cal["version"] == calibrate.VERSION and cal["granularity"] == "stage"
    assert cal["nbytes"] == {s: 7.0 for s in STAGE_IDS} and cal["nbytes_source"] == "pickled once"
    with open(dst / calibrate.FILE) as f:
        assert json.load(f)["version"] == calibrate.VERSION


@pytest.mark.slow
def test_emulated_cluster_validates_at_the_speeds_its_traces_measured(tmp_path):
    """cgroup quotas did not deliver the spec's cpu_share: the measured speeds predict the run's p50 better."""
    root = tmp_path / "repo"
    for run in (HETERO, os.path.join(REPO, "results", "20261129-092227-default-repeats3")):
        shutil.copytree(run, root / "results" / os.path.basename(run), ignore=shutil.ignore_patterns("simulate", "charts", "*.ipynb"))
    os.symlink(os.path.join(REPO, "experiments"), root / "experiments")  # the run names its spec relative to the repository
    folder = str(root / "results" / os.path.basename(HETERO))
    calibrate.calibrate(folder, sizes=SIZES)
    measured = validate.validate(folder, repeats=2)
    nominal = validate.validate(folder, repeats=2, speeds="nominal")
    speeds = measured["speeds"]["workers"]["experiments/clusters/emulated-hetero.yaml"]
    assert speeds["fast-0"]["measured"] < 1.0 and speeds["slow-0"]["measured"] < 0.5  # slower than nominal
    m, n = (r["median_abs_error"]["predicted_below_saturation"] for r in (measured, nominal))
    assert m["p50"] < n["p50"] and m["p50"] <= 0.10

"""``adaptive`` as a pure function: HEFT's spread while workers are idle, the one idle worker, else left to Dask."""
from __future__ import annotations

import dataclasses

import dask
import pytest
from test_placement_strategies import stockdag_tasks, workers

from stockdag.placement import CostModel, WorkerInfo, make_strategy
from stockdag.placement.heft import plan_request

MODELS = ("linear_regression", "ridge", "random_forest", "svr", "lstm")


def learned(ws, seconds=0.1):
    """Every stage observed at ``seconds`` on every worker (models at 2x: worth spreading)."""
    costs = CostModel(latency=0.001)
    for t in stockdag_tasks():
        for w in ws:
            costs.observe(t.stage, w.name, 2 * seconds if t.code in {"C7", "C8", "C9", "C10", "C11"} else seconds, 1000)
    return costs


def loaded(ws, seconds):
    return [dataclasses.replace(w, occupancy=s) for w, s in zip(ws, seconds)]


def test_idle_workers_get_heft_spread():
    ws = workers(2)
    costs = learned(ws)
    tasks = stockdag_tasks()
    mode, plan, _ = make_strategy("adaptive").decide(tasks, ws, costs)
    assert mode == "spread"
    assert plan == plan_request(tasks, ws, costs)[0]
    assert len(set(plan.values())) == 2  # the five models run side by side


def test_two_requests_competing_for_one_worker():
    ws = workers(2)
    costs = learned(ws)
    adaptive = make_strategy("adaptive")
    first = stockdag_tasks()
    _, plan_a, _ = adaptive.decide(first, ws, costs)
    # what the plugin then counts as queued: each worker's share of the first request
    queued = {w.address: sum(costs.estimate(t.stage, w.name) for t in first if plan_a[t.key] == w.address) for w in ws}
    busy = loaded(ws, [queued[w.address] for w in ws])
    second = stockdag_tasks()
    mode, plan_b, _ = adaptive.decide(second, busy, costs)
    assert mode == "dask"
    assert set(plan_b.values()) == {None}  # not spread behind both queues, nor bound to one of them on arrival
    assert len(set(plan_request(second, busy, costs)[0].values())) == 2  # heft alone would have spread it


def test_the_one_idle_worker_gets_the_whole_request():
    ws = workers(2)
    costs = learned(ws)
    busy = loaded(ws, [5.0, 0.0])
    mode, plan, finish = make_strategy("adaptive").decide(stockdag_tasks(), busy, costs)
    assert mode == "local" and set(plan.values()) == {ws[1].address}
    assert finish == plan_request(stockdag_tasks(), busy, costs, only=[1])[1].makespan


def biased(ws, slow=1.6):
    """Costs as learned on two identical workers in a probe (issue 23 item 5): worker 0 believed ``slow`` x slower."""
    costs = CostModel(latency=0.001)
    for t in stockdag_tasks():
        base = 0.2 if t.code in {"C7", "C8", "C9", "C10", "C11"} else 0.1
        costs.observe(t.stage, ws[0].name, slow * base, 1000)
        costs.observe(t.stage, ws[1].name, base, 1000)
    return costs


def test_an_idle_worker_is_used_even_where_learned_costs_call_it_slow():
    """The probe's mechanism: worker 0 idle, worker 1 just past idle; 'where it finishes first' chose worker 1.

    On identical workers the 1.6x came from noise (a cold first run, contention), so the request waited
    in worker 1's queue while worker 0 sat idle; the idle worker starts it at once.
    """
    ws = workers(2)
    costs = biased(ws)
    tasks = stockdag_tasks()
    critical_path = max(plan_request(tasks, ws, costs)[1].ranks.values())
    busy = loaded(ws, [0.0, 0.6 * critical_path])
    # the old rule's choice, from the same model: the whole request on worker 1, behind its queue
    finish = [plan_request(tasks, busy, costs, only=[i])[1].makespan for i in range(2)]
    assert finish[1] < finish[0]
    mode, plan, _ = make_strategy("adaptive").decide(tasks, busy, costs)
    assert mode == "local" and set(plan.values()) == {ws[0].address}


@pytest.mark.parametrize("slow", [1.0, 1.6, 1 / 1.6])
def test_under_load_the_plan_does_not_depend_on_learned_per_worker_costs(slow):
    """Every worker busy: nothing is bound on arrival, so a cost model's per-worker error cannot pile work on one."""
    ws = workers(2)
    tasks = stockdag_tasks()
    costs = biased(ws, slow)
    critical_path = max(plan_request(tasks, ws, costs)[1].ranks.values())
    busy = loaded(ws, [critical_path, 1.2 * critical_path])
    mode, plan, _ = make_strategy("adaptive").decide(tasks, busy, costs)
    assert mode == "dask" and plan == {t.key: None for t in tasks}


def test_the_idle_threshold_is_a_fraction_of_the_critical_path():
    ws = workers(2)
    costs = learned(ws)
    tasks = stockdag_tasks()
    critical_path = max(plan_request(tasks, ws, costs)[1].ranks.values())  # C1 C6 C2 C3 model C12 ~ 0.7 s
    a_little = loaded(ws, [0.4 * critical_path, 0.4 * critical_path])
    assert make_strategy("adaptive").decide(tasks, a_little, costs)[0] == "spread"
    assert make_strategy("adaptive", idle=0.3).decide(tasks, a_little, costs)[0] == "dask"
    with dask.config.set({"stockdag.placement.idle": 0.3}):
        assert make_strategy("adaptive").idle == 0.3


def test_more_idle_workers_than_two_spread_over_the_idle_ones_only():
    ws = workers(3)
    costs = learned(ws)
    busy = loaded(ws, [0.0, 0.0, 30.0])
    mode, plan, _ = make_strategy("adaptive").decide(stockdag_tasks(), busy, costs)
    assert mode == "spread" and set(plan.values()) == {ws[0].address, ws[1].address}


@pytest.mark.parametrize("nthreads", [1, 4])
def test_one_worker_takes_everything(nthreads):
    tasks = stockdag_tasks()
    idle = [WorkerInfo("tcp://10.0.0.9:1", "only", nthreads=nthreads, occupancy=0.0)]
    assert set(make_strategy("adaptive").place(tasks, idle, CostModel()).values()) == {idle[0].address}
    busy = [dataclasses.replace(idle[0], occupancy=30.0 * nthreads)]
    assert set(make_strategy("adaptive").place(tasks, busy, CostModel()).values()) == {None}  # Dask has one choice

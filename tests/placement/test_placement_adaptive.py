"""``adaptive`` as a pure function: HEFT's spread while workers are idle, one worker per request under load."""
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
    mode, plan_b, finish = adaptive.decide(second, busy, costs)
    heft_b, heft_sched = plan_request(second, busy, costs)
    assert mode == "local"
    assert len(set(plan_b.values())) == 1  # not spread behind both queues
    # it went where the whole request finishes first, its queue included
    (chosen,) = set(plan_b.values())
    other = next(i for i, w in enumerate(busy) if w.address != chosen)
    assert finish <= plan_request(second, busy, costs, only=[other])[1].makespan
    assert len(set(heft_b.values())) == 2  # heft alone would have spread it over both queues


def test_a_busy_worker_is_avoided_while_another_is_idle():
    ws = workers(2)
    costs = learned(ws)
    busy = loaded(ws, [5.0, 0.0])
    mode, plan, _ = make_strategy("adaptive").decide(stockdag_tasks(), busy, costs)
    assert mode == "local" and set(plan.values()) == {ws[1].address}


def test_the_idle_threshold_is_a_fraction_of_the_critical_path():
    ws = workers(2)
    costs = learned(ws)
    tasks = stockdag_tasks()
    critical_path = max(plan_request(tasks, ws, costs)[1].ranks.values())  # C1 C6 C2 C3 model C12 ~ 0.7 s
    a_little = loaded(ws, [0.4 * critical_path, 0.4 * critical_path])
    assert make_strategy("adaptive").decide(tasks, a_little, costs)[0] == "spread"
    assert make_strategy("adaptive", idle=0.3).decide(tasks, a_little, costs)[0] == "local"
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
    ws = [WorkerInfo("tcp://10.0.0.9:1", "only", nthreads=nthreads, occupancy=3.0)]
    plan = make_strategy("adaptive").place(stockdag_tasks(), ws, CostModel())
    assert set(plan.values()) == {ws[0].address}

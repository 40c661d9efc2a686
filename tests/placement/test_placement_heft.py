"""HEFT (Topcuoglu, Hariri, Wu 2002) as a pure function, and as a strategy over learned costs."""
from __future__ import annotations

import pytest

from stockdag.placement import CostModel, TaskInfo, WorkerInfo
from stockdag.placement.heft import Heft, schedule, upward_ranks

# The paper's sample graph (Fig. 2): computation cost of each task on P1, P2, P3 ...
PAPER_COMPUTE = {
    1: (14, 16, 9),
    2: (13, 19, 18),
    3: (11, 13, 19),
    4: (13, 8, 17),
    5: (12, 13, 10),
    6: (13, 16, 9),
    7: (7, 15, 11),
    8: (5, 11, 14),
    9: (18, 12, 20),
    10: (21, 7, 16),
}
# ... and the (mean) communication cost of each edge.
PAPER_EDGES = {
    (1, 2): 18, (1, 3): 12, (1, 4): 9, (1, 5): 11, (1, 6): 14,
    (2, 8): 19, (2, 9): 16, (3, 7): 23, (4, 8): 27, (4, 9): 23,
    (5, 9): 13, (6, 8): 15, (7, 10): 17, (8, 10): 11, (9, 10): 13,
}
P1, P2, P3 = 0, 1, 2


def paper_schedule():
    preds: dict[int, list[int]] = {}
    for a, b in PAPER_EDGES:
        preds.setdefault(b, []).append(a)
    return schedule(
        list(PAPER_COMPUTE), preds, lambda t, p: PAPER_COMPUTE[t][p], PAPER_EDGES, [P1, P2, P3]
    )


def test_paper_example_makespan_is_80():
    assert paper_schedule().makespan == 80


def test_paper_example_upward_ranks():
    ranks = paper_schedule().ranks
    published = {1: 108.0, 2: 77.0, 3: 80.0, 4: 80.0, 5: 69.0, 6: 63.33, 7: 42.67, 8: 35.67, 9: 44.33, 10: 14.67}
    assert {t: round(r, 2) for t, r in ranks.items()} == published


def test_paper_example_schedule():
    s = paper_schedule()
    assert s.order == [1, 3, 4, 2, 5, 6, 9, 7, 8, 10]
    assert s.assignment == {1: P3, 2: P1, 3: P3, 4: P2, 5: P3, 6: P2, 7: P3, 8: P1, 9: P2, 10: P2}
    # n6 is inserted on P2 before n9 although n9 ranks higher: insertion-based
    assert s.times[6] == (26, 42)
    assert s.times[9] == (56, 68)
    assert s.times[10] == (73, 80)


def test_insertion_uses_the_gap_before_a_late_task():
    # x must start late on P0 (its input arrives from P1 after a transfer); y ranks
    # lower, so it is scheduled after x, yet fits into the idle gap before it
    preds = {"x": ["r"]}
    compute = {("r", 0): 100, ("r", 1): 1, ("x", 0): 1, ("x", 1): 100, ("y", 0): 3, ("y", 1): 50}
    comm = {("r", "x"): 10}
    s = schedule(["r", "x", "y"], preds, compute, comm, [0, 1])
    assert s.order == ["r", "x", "y"]
    assert s.assignment == {"r": 1, "x": 0, "y": 0}
    assert s.times["x"] == (11, 12)
    assert s.times["y"] == (0, 3)  # appended after x it would finish at 15


def test_slots_run_tasks_side_by_side():
    compute = {(t, 0): 5 for t in "abcd"}
    s = schedule(list("abcd"), {}, compute, {}, [0], slots={0: 2})
    assert s.makespan == 10


def test_ready_time_delays_a_busy_processor():
    compute = {("a", 0): 1, ("a", 1): 2}
    s = schedule(["a"], {}, compute, {}, [0, 1], ready={0: 5, 1: 0})
    assert s.assignment == {"a": 1}


def test_cycle_is_rejected():
    with pytest.raises(ValueError, match="cycle"):
        schedule(["a", "b"], {"a": ["b"], "b": ["a"]}, lambda t, p: 1, lambda a, b: 0, [0])


def test_upward_ranks_of_a_chain():
    ranks = upward_ranks(["a", "b"], {"a": ["b"]}, {"a": 2.0, "b": 3.0}, lambda a, b: 1.0)
    assert ranks == {"b": 3.0, "a": 6.0}


def _fork_join_tasks(rid="r"):
    return [
        TaskInfo(f"src-{rid}", "src", rid),
        *(TaskInfo(f"m{i}-{rid}", f"m{i}", rid, dependencies=(f"src-{rid}",)) for i in range(4)),
        TaskInfo(f"join-{rid}", "join", rid, dependencies=tuple(f"m{i}-{rid}" for i in range(4))),
    ]


WORKERS = [WorkerInfo("tcp://a:1", "a"), WorkerInfo("tcp://b:1", "b")]


def test_strategy_spreads_a_fork_before_anything_is_learned():
    plan = Heft().place(_fork_join_tasks(), WORKERS, CostModel(latency=0.001))
    assert set(plan.values()) == {"tcp://a:1", "tcp://b:1"}


def test_strategy_keeps_everything_on_one_worker_when_transfers_dominate():
    costs = CostModel(latency=10.0)
    plan = Heft().place(_fork_join_tasks(), WORKERS, costs)
    assert set(plan.values()) == {"tcp://a:1"}


def test_strategy_uses_learned_costs():
    costs = CostModel(latency=0.0)
    for stage in ["src", "m0", "m1", "m2", "m3", "join"]:
        costs.observe(stage, "a", 1.0)
        costs.observe(stage, "b", 0.1)  # b is ten times faster at everything
    plan = Heft().place(_fork_join_tasks(), WORKERS, costs)
    assert set(plan.values()) == {"tcp://b:1"}


def test_strategy_sees_queued_work_as_a_later_start():
    busy = [WorkerInfo("tcp://a:1", "a", occupancy=100.0), WorkerInfo("tcp://b:1", "b")]
    plan = Heft().place(_fork_join_tasks(), busy, CostModel(latency=0.001))
    assert set(plan.values()) == {"tcp://b:1"}


# ---------------------------------------------------------------- the fast loop decides as the textbook loop
def _reference_schedule(tasks, preds, compute, comm, processors, ready=None, slots=None):
    """The textbook loop (every processor, every slot), as heft.schedule was before it was vectorised."""
    from stockdag.placement.heft import Schedule, _as_callable, _insert, _topological

    compute, comm = _as_callable(compute), _as_callable(comm)
    order = _topological(tasks, preds)
    succ = {t: [] for t in order}
    pred = {t: [p for p in preds.get(t, ()) if p in succ] for t in order}
    for t in order:
        for p in pred[t]:
            succ[p].append(t)
    cost = {(t, p): float(compute(t, p)) for t in order for p in processors}
    n = len(processors)
    mean = {t: sum(cost[t, p] for p in processors) / n for t in order}
    edge = {(p, t): float(comm(p, t)) for t in order for p in pred[t]}
    ranks = upward_ranks(order, succ, mean, lambda a, b: edge[a, b])
    position = {t: i for i, t in enumerate(order)}
    prio = sorted(order, key=lambda t: (-round(ranks[t], 9), position[t]))
    ready, slots = ready or {}, slots or {}
    timelines = {p: [[] for _ in range(max(int(slots.get(p, 1)), 1))] for p in processors}
    free = {p: float(ready.get(p, 0.0)) for p in processors}
    where, times = {}, {}
    for t in prio:
        best = None
        for p in processors:
            arrive = free[p]
            for q in pred[t]:
                finish = times[q][1]
                if where[q] != p:
                    finish += edge[q, t]
                if finish > arrive:
                    arrive = finish
            duration = cost[t, p]
            for k, intervals in enumerate(timelines[p]):
                start = _insert(intervals, arrive, duration)
                eft = start + duration
                if best is None or eft < best[0]:
                    best = (eft, start, p, k)
        eft, start, p, k = best
        timelines[p][k].append((start, eft))
        timelines[p][k].sort()
        where[t] = p
        times[t] = (start, eft)
    return Schedule(assignment=where, times=times, ranks=ranks, order=prio)


def _random_problem(rng, integer):
    n_tasks, n_procs = int(rng.integers(1, 16)), int(rng.integers(1, 12))
    tasks = [f"t{i}" for i in range(n_tasks)]
    preds = {t: [tasks[j] for j in range(i) if rng.random() < 0.3] for i, t in enumerate(tasks)}
    draw = (lambda: float(rng.integers(0, 4))) if integer else (lambda: float(rng.lognormal(0, 1)))
    compute = {(t, p): draw() for t in tasks for p in range(n_procs)}
    comm = {(q, t): draw() for t in tasks for q in preds[t]}
    ready = {p: draw() * float(rng.integers(0, 2)) for p in range(n_procs)}
    slots = {p: int(rng.integers(1, 4)) for p in range(n_procs)}
    order = [str(t) for t in rng.permutation(tasks)]  # ties in rank keep the given order
    return order, preds, compute, comm, list(range(n_procs)), ready, slots


@pytest.mark.parametrize("integer", [True, False], ids=["small-integer-costs-many-ties", "lognormal-costs"])
def test_schedule_decides_exactly_as_the_textbook_loop(integer):
    import numpy as np

    rng = np.random.default_rng(13)
    for _ in range(400):
        problem = _random_problem(rng, integer)
        fast, ref = schedule(*problem), _reference_schedule(*problem)
        assert fast.order == ref.order
        assert fast.assignment == ref.assignment
        assert fast.times == ref.times


def test_heft_places_a_request_as_the_textbook_loop_with_learned_costs():
    import numpy as np

    from stockdag.placement.heft import plan_request

    rng = np.random.default_rng(5)
    stages = ["src", "m0", "m1", "m2", "m3", "join"]
    for _ in range(50):
        workers = [WorkerInfo(f"tcp://w{i}:1", f"w{i}", int(rng.integers(1, 3)), float(rng.integers(0, 3)))
                   for i in range(int(rng.integers(1, 9)))]
        costs = CostModel(latency=float(rng.choice([0.0, 0.001, 0.5])))
        for _ in range(int(rng.integers(0, 30))):  # some pairs learned, others from the fallbacks
            costs.observe(str(rng.choice(stages)), f"w{int(rng.integers(len(workers)))}",
                          float(rng.integers(1, 4)) / 10, 1000.0)
        tasks = _fork_join_tasks()
        plan, fast = plan_request(tasks, workers, costs)
        info = {t.key: t for t in tasks}
        ref = _reference_schedule(
            list(info), {t.key: t.dependencies for t in tasks},
            lambda k, i: costs.estimate(info[k].stage, workers[i].name), lambda a, b: costs.transfer(info[a].stage),  # noqa: B023 (called here)
            range(len(workers)), {i: w.occupancy / w.nthreads for i, w in enumerate(workers)},
            {i: w.nthreads for i, w in enumerate(workers)})
        assert (fast.order, fast.assignment, fast.times) == (ref.order, ref.assignment, ref.times)
        assert plan == {k: workers[ref.assignment[k]].address for k in info}

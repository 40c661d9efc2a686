"""``heft``: Heterogeneous Earliest Finish Time list scheduling.

H. Topcuoglu, S. Hariri and M.-Y. Wu, "Performance-effective and
low-complexity task scheduling for heterogeneous computing", IEEE TPDS 13(3),
2002, pp. 260-274. Two phases:

1. *Task prioritising*: the upward rank of a task is its mean compute cost
   over the processors plus the largest (mean transfer cost + upward rank) over
   its successors; tasks are scheduled in decreasing upward rank (a
   topological order).
2. *Processor selection*: each task goes to the processor giving it the
   earliest finish time, where its start may be inserted into an idle gap
   between tasks already scheduled there (the insertion-based policy), and an
   input from another processor arrives after its transfer cost.

:func:`schedule` is the algorithm on any DAG and cost table (it reproduces the
paper's sample: makespan 80). :class:`Heft` adapts it to a request: compute
costs are the learned per-stage, per-worker means (averages before anything
is learned, see :class:`~stockdag.placement.costs.CostModel`), transfer costs
are the stage's mean result size over the measured bandwidth plus a latency,
a worker with ``k`` threads is ``k`` processors, and each worker is first free
after the work the scheduler already has queued on it (its occupancy per
thread), which is how concurrent requests see each other.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .base import Plan, Strategy, TaskInfo, WorkerInfo

if TYPE_CHECKING:
    from .costs import CostModel


@dataclass
class Schedule:
    """The result of :func:`schedule`."""

    #: task -> processor
    assignment: dict[Hashable, Any]
    #: task -> (start, finish)
    times: dict[Hashable, tuple[float, float]]
    #: task -> upward rank
    ranks: dict[Hashable, float]
    #: tasks in the order they were scheduled (decreasing upward rank)
    order: list[Hashable]

    @property
    def makespan(self) -> float:
        return max((f for _, f in self.times.values()), default=0.0)


def _as_callable(costs: Callable[..., float] | Mapping[Any, float]) -> Callable[..., float]:
    if isinstance(costs, Mapping):
        return lambda *args: costs[args]
    return costs


def _topological(tasks: Sequence[Hashable], preds: Mapping[Hashable, Sequence[Hashable]]) -> list[Hashable]:
    """Kahn's algorithm, keeping the given order among ready tasks."""
    index = {t: i for i, t in enumerate(tasks)}
    succ: dict[Hashable, list[Hashable]] = {t: [] for t in tasks}
    missing = {t: 0 for t in tasks}
    for t in tasks:
        for p in preds.get(t, ()):
            if p in index:
                succ[p].append(t)
                missing[t] += 1
    ready = [t for t in tasks if not missing[t]]
    out: list[Hashable] = []
    while ready:
        ready.sort(key=index.__getitem__, reverse=True)
        t = ready.pop()
        out.append(t)
        for s in succ[t]:
            missing[s] -= 1
            if not missing[s]:
                ready.append(s)
    if len(out) != len(tasks):
        raise ValueError("the task graph has a cycle")
    return out


def upward_ranks(
    order: Sequence[Hashable],
    succ: Mapping[Hashable, Sequence[Hashable]],
    mean_compute: Mapping[Hashable, float],
    comm: Callable[[Hashable, Hashable], float],
) -> dict[Hashable, float]:
    """``rank_u(i) = mean_w(i) + max_{j in succ(i)} (c(i, j) + rank_u(j))`` over a topological ``order``."""
    rank: dict[Hashable, float] = {}
    for t in reversed(order):
        tail = max((comm(t, s) + rank[s] for s in succ.get(t, ())), default=0.0)
        rank[t] = mean_compute[t] + tail
    return rank


def _insert(intervals: list[tuple[float, float]], ready: float, duration: float) -> float:
    """Earliest start >= ``ready`` at which ``duration`` fits between the busy ``intervals``."""
    start = ready
    for s, e in intervals:
        if start + duration <= s:
            return start
        if e > start:
            start = e
    return start


def schedule(
    tasks: Sequence[Hashable],
    preds: Mapping[Hashable, Sequence[Hashable]],
    compute: Callable[[Hashable, Any], float] | Mapping[tuple[Hashable, Any], float],
    comm: Callable[[Hashable, Hashable], float] | Mapping[tuple[Hashable, Hashable], float],
    processors: Sequence[Any],
    ready: Mapping[Any, float] | None = None,
    slots: Mapping[Any, int] | None = None,
) -> Schedule:
    """HEFT (Topcuoglu et al. 2002) with insertion-based processor selection.

    Parameters
    ----------
    tasks:
        The tasks; ties in upward rank keep this order (after a topological sort).
    preds:
        task -> its predecessors (tasks not in ``tasks`` are ignored).
    compute:
        ``compute(task, processor)`` (or a ``{(task, processor): cost}`` table).
    comm:
        ``comm(src, dst)``: the cost of the edge when the two tasks run on
        different processors (0 on the same one). Also its mean, for the ranks.
    processors:
        The processors; ties in finish time go to the first.
    ready:
        processor -> time it is first free (default 0).
    slots:
        processor -> how many tasks it runs at once (default 1).
    """
    compute_fn = _as_callable(compute)
    procs = list(processors)
    return _schedule(tasks, preds, lambda t: [float(compute_fn(t, p)) for p in procs], comm, procs, ready, slots)


def _schedule(tasks: Sequence[Hashable], preds: Mapping[Hashable, Sequence[Hashable]], row: Callable[[Hashable], list[float]],
              comm: Callable[[Hashable, Hashable], float] | Mapping[tuple[Hashable, Hashable], float], procs: list[Any],
              ready: Mapping[Any, float] | None, slots: Mapping[Any, int] | None) -> Schedule:
    """:func:`schedule` with the compute costs given as ``row(task)``: the task's cost on each of ``procs``.

    Same decisions as the textbook loop (every processor, every slot, the
    insertion policy), computed faster: a processor holding none of this
    schedule's tasks yet has empty timelines and receives every input over a
    link, so its finish time is ``max(ready, latest input arrival) + cost``:
    those are evaluated at once with numpy (exact: a max and one addition, as in
    the loop) and the first minimum taken; only the few processors already used
    are scanned slot by slot. Ties keep the loop's order (processor, then slot).
    """
    comm_fn = _as_callable(comm)
    order = _topological(tasks, preds)
    succ: dict[Hashable, list[Hashable]] = {t: [] for t in order}
    pred = {t: [p for p in preds.get(t, ()) if p in succ] for t in order}
    for t in order:
        for p in pred[t]:
            succ[p].append(t)
    n = len(procs)
    cost = {t: row(t) for t in order}
    mean = {t: sum(cost[t]) / n for t in order}
    edge = {(p, t): float(comm_fn(p, t)) for t in order for p in pred[t]}
    ranks = upward_ranks(order, succ, mean, lambda a, b: edge[a, b])
    position = {t: i for i, t in enumerate(order)}
    # rounding makes equal ranks computed along different paths tie, so ties keep the given order
    prio = sorted(order, key=lambda t: (-round(ranks[t], 9), position[t]))

    ready = ready or {}
    slots = slots or {}
    free = [float(ready.get(p, 0.0)) for p in procs]
    free_arr = np.array(free, dtype=float)
    nslots = [max(int(slots.get(p, 1)), 1) for p in procs]
    timelines: dict[int, list[list[tuple[float, float]]]] = {}  # processor index -> its slots, once used
    unused = np.arange(n)  # indices of processors with empty timelines
    where: dict[Hashable, int] = {}
    times: dict[Hashable, tuple[float, float]] = {}
    for t in prio:
        inputs = [(times[q][1], edge[q, t], where[q]) for q in pred[t]]
        costs_t = cost[t]
        best: tuple[float, float, int, int] | None = None  # (eft, start, processor index, slot)
        if len(unused):
            # every input comes over a link: arrival = max(free, the latest input + its transfer)
            latest = -math.inf
            for finish, e, _ in inputs:
                if finish + e > latest:
                    latest = finish + e
            c = np.asarray(costs_t, dtype=float)[unused]
            eft = np.maximum(free_arr[unused], latest) + c
            j = int(np.argmin(eft))
            i = int(unused[j])
            start = max(free[i], latest)
            best = (start + costs_t[i], start, i, 0)
        for i in sorted(timelines):
            arrive = free[i]
            for finish, e, q_on in inputs:
                if q_on != i:
                    finish += e
                if finish > arrive:
                    arrive = finish
            duration = costs_t[i]
            for k, intervals in enumerate(timelines[i]):
                start = _insert(intervals, arrive, duration)
                f = start + duration
                if best is None or f < best[0] or (f == best[0] and (i, k) < (best[2], best[3])):
                    best = (f, start, i, k)
        assert best is not None  # every task has a processor: procs is not empty
        f, start, i, k = best
        if i not in timelines:
            timelines[i] = [[] for _ in range(nslots[i])]
            unused = unused[unused != i]
        intervals = timelines[i][k]
        intervals.append((start, f))
        intervals.sort()
        where[t] = i
        times[t] = (start, f)
    return Schedule(assignment={t: procs[i] for t, i in where.items()}, times=times, ranks=ranks, order=prio)


def plan_request(tasks: Sequence[TaskInfo], workers: Sequence[WorkerInfo], costs: CostModel,
                 only: Sequence[int] | None = None) -> tuple[Plan, Schedule]:
    """HEFT over one request's ``tasks`` with learned ``costs``; workers first free after their occupancy.

    ``only`` restricts the processors to those worker indices (one index: the
    whole request on that worker, timed with the same model). Returns the plan
    and the :class:`Schedule` (its makespan is the estimated finish).
    """
    info: dict[Hashable, TaskInfo] = {t.key: t for t in tasks}
    preds: dict[Hashable, Sequence[Hashable]] = {t.key: t.dependencies for t in tasks}
    procs = list(range(len(workers))) if only is None else list(only)
    names = [workers[i].name for i in procs]
    rows: dict[str, list[float]] = {}

    def row(key: Hashable) -> list[float]:
        # one request's tasks may share a stage: its costs on every worker are looked up once
        stage = info[key].stage
        r = rows.get(stage)
        if r is None:
            r = rows[stage] = [float(v) for v in costs.estimates(stage, names)]
        return r

    def comm(src: Hashable, dst: Hashable) -> float:
        return costs.transfer(info[src].stage)

    ready = {i: workers[i].occupancy / max(workers[i].nthreads, 1) for i in procs}
    slots = {i: workers[i].nthreads for i in procs}
    result = _schedule(list(info), preds, row, comm, procs, ready, slots)
    return {t.key: workers[result.assignment[t.key]].address for t in tasks}, result


class Heft(Strategy):
    """HEFT over the learned costs: see the module docstring."""

    name = "heft"

    def place(self, tasks: Sequence[TaskInfo], workers: Sequence[WorkerInfo], costs: CostModel) -> Plan:
        return plan_request(tasks, workers, costs)[0]

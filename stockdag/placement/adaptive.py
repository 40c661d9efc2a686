"""``adaptive``: HEFT while workers are idle, the whole request on one worker under load.

A request's own parallelism (the five models side by side) is worth having
only while there are idle workers to run it; once every worker has work
queued, spreading a request adds transfers and scheduler round trips and wins
nothing, and a static spread plan makes the request wait for its busiest
worker. So, for each request, from the queued work of every worker (its
occupancy: tasks the scheduler assigned plus tasks earlier plans put there
that have not started, so requests in flight see each other):

* if at least two workers are *idle* (queued work under ``idle`` times this
  request's critical path), plan it with HEFT (Topcuoglu et al. 2002, see
  :mod:`~stockdag.placement.heft`), which starts each worker after its queued
  work and so spreads over the idle ones;
* otherwise localize it: every task on the worker where the whole request is
  expected to finish first, its queued work included (join-the-shortest-queue
  in expected work; Winston 1977, Harchol-Balter, *Performance Modeling and
  Design of Computer Systems*, 2013, ch. 24 for JSQ and its relatives), which is
  how the replicated baseline keeps its throughput at saturation.

The decision is a pure function of (tasks, workers with their load, costs).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .. import config
from .base import Plan, Strategy, TaskInfo, WorkerInfo
from .heft import plan_request

if TYPE_CHECKING:
    from .costs import CostModel


class Adaptive(Strategy):
    """HEFT while two workers are idle, else the request on the worker where it finishes first.

    Parameters
    ----------
    idle:
        A worker is idle when its queued work is under ``idle`` times the
        request's critical path (mean costs). Default ``stockdag.placement.idle``.
    loose:
        See :class:`~stockdag.placement.base.Strategy`.
    """

    name = "adaptive"

    def __init__(self, *, idle: float | None = None, loose: bool | None = None):
        super().__init__(loose=loose)
        self.idle = float(config.get("placement.idle", override_with=idle))

    def decide(self, tasks: Sequence[TaskInfo], workers: Sequence[WorkerInfo], costs: CostModel) -> tuple[str, Plan, float]:
        """``(mode, plan, expected finish)``: mode is ``spread`` (HEFT) or ``local``."""
        spread, sched = plan_request(tasks, workers, costs)
        critical_path = max(sched.ranks.values(), default=0.0)
        backlog = [w.occupancy / max(w.nthreads, 1) for w in workers]
        idle = sum(b <= self.idle * critical_path for b in backlog)
        if idle >= 2:
            return "spread", spread, sched.makespan
        best: tuple[Plan, float] = ({}, float("inf"))
        for i in range(len(workers)):
            plan, local = plan_request(tasks, workers, costs, only=[i])
            if i == 0 or local.makespan < best[1]:
                best = (plan, local.makespan)
        return "local", best[0], best[1]

    def place(self, tasks: Sequence[TaskInfo], workers: Sequence[WorkerInfo], costs: CostModel) -> Plan:
        return self.decide(tasks, workers, costs)[1]

    def __repr__(self) -> str:
        return f"Adaptive(idle={self.idle}, loose={self.loose})"

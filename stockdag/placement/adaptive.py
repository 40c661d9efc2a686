"""``adaptive``: HEFT while workers are idle; once every worker is busy, Dask's own placement.

A request's own parallelism (the five models side by side) is worth having
only while there are idle workers to run it; once every worker has work
queued, spreading a request adds transfers and scheduler round trips and wins
nothing. So, for each request, from the queued work of every worker (its
occupancy: tasks the scheduler assigned plus tasks earlier plans put there
that have not started, so requests in flight see each other):

* if at least two workers are *idle* (queued work under ``idle`` times this
  request's critical path), plan it with HEFT (Topcuoglu et al. 2002, see
  :mod:`~stockdag.placement.heft`), which starts each worker after its queued
  work and so spreads over the idle ones;
* if exactly one is idle, run the whole request there: it starts at once;
* otherwise (every worker busy) leave the request to Dask (no restriction):
  the scheduler binds each task when it becomes ready, to the worker with the
  least work in hand among those holding its inputs (so a request's chain
  stays on one worker), and work stealing moves it if that worker falls
  behind. Binding late keeps every worker busy whatever the cost estimates
  say; binding whole requests on arrival from learned per-worker costs left
  one worker idle while the other held queued requests
  (:doc:`/guides/placement`, "Where adaptive lost throughput").

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
    """HEFT while two workers are idle, the whole request on the one idle worker, else Dask's placement.

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
        """``(mode, plan, expected finish)``.

        mode ``spread`` (the HEFT plan), ``local`` (every task on the one idle
        worker) or ``dask`` (every task None; the finish is HEFT's estimate).
        """
        spread, sched = plan_request(tasks, workers, costs)
        critical_path = max(sched.ranks.values(), default=0.0)
        idle = [i for i, w in enumerate(workers) if w.occupancy / max(w.nthreads, 1) <= self.idle * critical_path]
        if len(idle) >= 2:
            return "spread", spread, sched.makespan
        if idle:
            plan, local = plan_request(tasks, workers, costs, only=idle)
            return "local", plan, local.makespan
        return "dask", {t.key: None for t in tasks}, sched.makespan

    def place(self, tasks: Sequence[TaskInfo], workers: Sequence[WorkerInfo], costs: CostModel) -> Plan:
        return self.decide(tasks, workers, costs)[1]

    def __repr__(self) -> str:
        return f"Adaptive(idle={self.idle}, loose={self.loose})"

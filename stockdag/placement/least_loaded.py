"""``least-loaded``: each task to the worker with the least work queued per thread.

Load is the worker's occupancy divided by its threads: the scheduler's
estimate of its assigned work (from Dask's per-prefix duration averages) plus
the work earlier plans restricted to it that has not started yet (the plugin
counts it, so concurrent requests see each other), plus what this plan has
already put there (the learned cost of each placed task), so the tasks of one
request spread out instead of piling onto the idlest worker.
Data location is ignored on purpose: that is what separates it from ``dask``.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .base import Plan, Strategy, TaskInfo, WorkerInfo

if TYPE_CHECKING:
    from .costs import CostModel


class LeastLoaded(Strategy):
    """Greedy: in priority order, each task goes to the worker whose load per thread is least.

    Ties go to the first worker by name.
    """

    name = "least-loaded"

    def place(self, tasks: Sequence[TaskInfo], workers: Sequence[WorkerInfo], costs: CostModel) -> Plan:
        load = [w.occupancy / max(w.nthreads, 1) for w in workers]
        plan: Plan = {}
        for t in tasks:
            i = min(range(len(workers)), key=load.__getitem__)
            w = workers[i]
            plan[t.key] = w.address
            load[i] += costs.estimate(t.stage, w.name) / max(w.nthreads, 1)
        return plan

"""``fastest-node``: every task of a request on the single fastest worker.

The baseline heterogeneous-scheduling studies compare against (e.g. Topcuoglu
et al. 2002, and the "best single machine" of workflow-scheduling surveys): it
pays no transfer cost and wastes every other machine. "Fastest" is the least
expected total compute time of the request's stages from the learned costs
(or the speed hints before anything is learned); ties go to more threads, then
to the first name.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .base import Plan, Strategy, TaskInfo, WorkerInfo

if TYPE_CHECKING:
    from .costs import CostModel


class FastestNode(Strategy):
    """All tasks to the worker minimising the request's summed expected compute time."""

    name = "fastest-node"

    def place(self, tasks: Sequence[TaskInfo], workers: Sequence[WorkerInfo], costs: CostModel) -> Plan:
        stages = [t.stage for t in tasks]

        def expected(w: WorkerInfo) -> tuple[float, int]:
            return (sum(costs.estimate(s, w.name) for s in stages), -w.nthreads)

        best = min(workers, key=expected)
        return {t.key: best.address for t in tasks}

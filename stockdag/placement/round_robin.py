"""``round-robin``: tasks dealt to workers in turn, the starting worker rotating per request.

Dealing in task order alone aliases with the graph shape: with a fixed stage
order every request would put each stage on the same worker. Starting each
request one worker further on spreads every stage over every worker.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .base import Plan, Strategy, TaskInfo, WorkerInfo

if TYPE_CHECKING:
    from .costs import CostModel


class RoundRobin(Strategy):
    """Task ``i`` (in Dask's priority order) of request ``n`` goes to worker ``(n + i) mod W``.

    Workers are taken in name order. ``start`` is the offset of the first
    request; the counter advances once per planned request.
    """

    name = "round-robin"

    def __init__(self, *, start: int = 0, loose: bool | None = None):
        super().__init__(loose=loose)
        self.counter = int(start)

    def place(self, tasks: Sequence[TaskInfo], workers: Sequence[WorkerInfo], costs: CostModel) -> Plan:
        n = len(workers)
        offset = self.counter
        self.counter += 1
        return {t.key: workers[(offset + i) % n].address for i, t in enumerate(tasks)}

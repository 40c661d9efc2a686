"""``dask``: no restrictions, Dask's own placement (the baseline).

Dask's scheduler places each ready task on the worker where it is expected to
start soonest given where its inputs are (``distributed.scheduler.decide_worker``),
queues root tasks and steals work from busy workers. Every other strategy is
compared against this.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .base import Plan, Strategy, TaskInfo, WorkerInfo

if TYPE_CHECKING:
    from .costs import CostModel


class DaskDefault(Strategy):
    """Plan nothing: every task is left to Dask (``planned_worker`` is None)."""

    name = "dask"

    @property
    def plans(self) -> bool:
        return False

    def place(self, tasks: Sequence[TaskInfo], workers: Sequence[WorkerInfo], costs: CostModel) -> Plan:
        return {t.key: None for t in tasks}

"""``dask``: no restrictions, Dask's own placement (the baseline).

Dask's scheduler places each ready task on the worker where it is expected to
start soonest given where its inputs are (``distributed.scheduler.decide_worker``),
queues root tasks and steals work from busy workers. Every other strategy is
compared against this.
"""
from __future__ import annotations

from .base import Plan, Strategy


class DaskDefault(Strategy):
    """Plan nothing: every task is left to Dask (``planned_worker`` is None)."""

    name = "dask"

    @property
    def plans(self) -> bool:
        return False

    def place(self, tasks, workers, costs) -> Plan:
        return {t.key: None for t in tasks}

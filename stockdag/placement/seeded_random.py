"""``random``: every task on a uniformly drawn worker, from a seeded generator.

Random placement is the null model of scheduling studies: any strategy worth
its cost must beat it. The generator is seeded, so the same sequence of
requests on the same workers is placed the same way again.
"""
from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .. import config
from .base import Plan, Strategy, TaskInfo, WorkerInfo

if TYPE_CHECKING:
    from .costs import CostModel


class SeededRandom(Strategy):
    """Draw each task's worker independently and uniformly from the running workers.

    Parameters
    ----------
    seed:
        Seeds the generator. Default ``stockdag.placement.seed``.
    """

    name = "random"

    def __init__(self, *, seed: int | None = None, loose: bool | None = None):
        super().__init__(loose=loose)
        self.seed = int(config.get("placement.seed", override_with=seed))
        self.rng = random.Random(self.seed)

    def place(self, tasks: Sequence[TaskInfo], workers: Sequence[WorkerInfo], costs: CostModel) -> Plan:
        n = len(workers)
        rand = self.rng.random
        return {t.key: workers[int(rand() * n)].address for t in tasks}

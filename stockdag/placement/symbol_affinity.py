"""``symbol-affinity``: all tasks of a symbol's requests on one worker, by consistent hashing.

Requests for the same symbol reuse the same prices, news and cache entries
(C6), so sending them to the same worker keeps its per-process cache warm.
Consistent hashing (Karger et al. 1997, as in Dynamo and memcached clients)
makes the symbol -> worker map stable: when a worker joins or leaves only
about ``1/n`` of the symbols move. A graph without a symbol hashes its
request id instead (one worker per request).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .. import config
from .base import Plan, Strategy, TaskInfo, WorkerInfo
from .hashring import RingCache

if TYPE_CHECKING:
    from .costs import CostModel


class SymbolAffinity(Strategy):
    """Every task of a request goes to the worker owning its symbol on the hash ring.

    Parameters
    ----------
    vnodes:
        Points per worker on the ring. Default ``stockdag.placement.vnodes``.
    """

    name = "symbol-affinity"

    def __init__(self, *, vnodes: int | None = None, loose: bool | None = None):
        super().__init__(loose=loose)
        self.vnodes = int(config.get("placement.vnodes", override_with=vnodes))
        self._rings = RingCache(self.vnodes)

    def owner(self, item: str, workers: Sequence[WorkerInfo]) -> str:
        """The address of the worker that owns ``item`` (a symbol) among ``workers``."""
        by_name = {w.name: w.address for w in workers}
        owner: str = by_name[self._rings.get(by_name).lookup(item)]
        return owner

    def place(self, tasks: Sequence[TaskInfo], workers: Sequence[WorkerInfo], costs: CostModel) -> Plan:
        if not tasks:
            return {}
        first = tasks[0]
        item = next((t.symbol for t in tasks if t.symbol), None)
        if item is None:
            item = first.request if first.request is not None else str(first.key)
        address = self.owner(item, workers)
        return {t.key: address for t in tasks}

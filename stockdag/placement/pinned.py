"""``pinned``: a fixed stage -> worker-name map (the "one machine per task" layout).

This is how multi-stage services are often deployed by hand: each stage has
its machine. The map comes from ``stockdag.placement.pinned`` or the ``pinned``
option and names workers, not addresses, so it survives restarts; the plugin
resolves names to addresses when a request is submitted. A stage missing from
the map, or mapped to a worker that is not running, is pinned by consistent
hashing of its stage name over the running workers, so the layout stays fixed
across requests and a lost worker only moves its own stages.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from .. import config
from .base import Plan, Strategy, TaskInfo, WorkerInfo
from .hashring import RingCache

if TYPE_CHECKING:
    from .costs import CostModel


class Pinned(Strategy):
    """Each task goes to the worker its stage is pinned to.

    Parameters
    ----------
    pinned:
        Stage name (``make_features``) or code (``C3``) -> worker name. A task
        that runs several stages (``stockdag.pipeline.granularity``) goes where
        its first pinned stage is pinned.
        Default ``stockdag.placement.pinned``.
    vnodes:
        Points per worker on the ring used for unmapped stages.
        Default ``stockdag.placement.vnodes``.
    """

    name = "pinned"

    def __init__(self, *, pinned: Mapping[str, object] | None = None, vnodes: int | None = None, loose: bool | None = None):
        super().__init__(loose=loose)
        mapping = config.get("placement.pinned", override_with=pinned) or {}
        self.pinned = {str(k): str(v) for k, v in dict(mapping).items()}
        self.vnodes = int(config.get("placement.vnodes", override_with=vnodes))
        self._rings = RingCache(self.vnodes)
        #: stages whose pinned worker was not running when last planned (the plugin reports these)
        self.unavailable: set[str] = set()

    def place(self, tasks: Sequence[TaskInfo], workers: Sequence[WorkerInfo], costs: CostModel) -> Plan:
        by_name = {w.name: w.address for w in workers}
        plan: Plan = {}
        ring = None
        for t in tasks:
            # a fused task ("fetch_prices+make_features", code "C2+C3") follows its first pinned stage
            parts = [t.stage, *t.stage.split("+"), *([t.code, *t.code.split("+")] if t.code else [])]
            name = next((self.pinned[p] for p in parts if p in self.pinned), None)
            address = by_name.get(name) if name is not None else None
            if address is None:
                if name is not None:
                    self.unavailable.add(t.stage)
                if ring is None:
                    ring = self._rings.get(by_name)
                address = by_name[ring.lookup(t.stage)]
            plan[t.key] = address
        return plan

    def drain_warnings(self) -> list[str]:
        if not self.unavailable:
            return []
        note = f"pinned worker not running for stage(s) {', '.join(sorted(self.unavailable))}; placed by stage hash instead"
        self.unavailable.clear()
        return [note]

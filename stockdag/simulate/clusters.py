"""Simulated workers from a cluster spec (:mod:`stockdag.deploy.spec`): one place that maps spec fields to the model.

``local`` and ``emulated`` workers share this host (its cores, loopback links);
an ``emulated`` group's ``cpu_share`` is the worker's speed and its
``link_delay`` the latency added to what it sends. An ``ec2`` worker is its own
machine with ``threads`` threads, the assumed link of :mod:`.planner` and the
family speed of :data:`.planner.SPEED`.
"""
from __future__ import annotations

from .model import SimWorker

#: link bandwidth between two worker processes on one host (loopback): an assumption, not fitted
LOOPBACK_BANDWIDTH = 1e9


def workers_from_spec(spec) -> list[SimWorker]:
    """The simulated workers of a :class:`~stockdag.deploy.ClusterSpec` (named as the spec names them)."""
    from .planner import BANDWIDTH, LINK_LATENCY, SPEED

    out = []
    for g in spec.worker_groups:
        for name in g.worker_names():
            if spec.kind == "ec2":
                out.append(SimWorker(name, g.threads, SPEED.get(g.instance_type.split(".")[0], 1.0), LINK_LATENCY,
                                     BANDWIDTH, name))
            else:
                out.append(SimWorker(name, g.threads, float(g.cpu_share or 1.0), float(g.link_delay),
                                     LOOPBACK_BANDWIDTH, "local"))
    return out


def local_workers(n: int) -> list[SimWorker]:
    """The embedded LocalCluster's ``n`` one-thread workers (named 0, 1, ... as LocalCluster names them)."""
    return [SimWorker(str(i), 1, 1.0, 0.0, LOOPBACK_BANDWIDTH, "local") for i in range(n)]

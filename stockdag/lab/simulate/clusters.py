"""Simulated workers from a cluster spec (:mod:`stockdag.deploy.spec`): one place that maps spec fields to the model.

``local`` and ``emulated`` workers share this host (its cores, loopback links);
an ``emulated`` group's ``cpu_share`` is the worker's CPUs and its
``link_delay`` the latency added to what it sends. A ``testbed`` worker is a machine of its own (its namespace,
its CPU quota as its CPUs, its ``bandwidth`` cap as its link). A worker's speed is its CPUs over those of the
machine the stage costs were measured on (``reference``, :func:`server_speed`): a quarter-core worker runs
costs measured on a quarter-core machine as measured. An ``ec2`` worker is its own
machine with ``threads`` threads, the assumed link and family speed
of ``stockdag.lab.simulate`` in the configuration (already relative to the measuring machine).
"""
from __future__ import annotations

import os

from ... import config
from .model import SimWorker


def loopback_bandwidth() -> float:
    """Bytes/s between two worker processes on one host (``stockdag.simulate.loopback_bandwidth``, assumed)."""
    return float(config.get("simulate.loopback_bandwidth"))


def workers_from_spec(spec, reference: float = 1.0) -> list[SimWorker]:
    """The simulated workers of a :class:`~stockdag.deploy.ClusterSpec` (named as the spec names them).

    ``reference``: the CPUs of the machine the stage costs were measured on (1.0: one core of this host).
    """
    from ...deploy.netns import rate_bits
    from .planner import speed

    out = []
    latency, bandwidth = float(config.get("simulate.link_latency")), float(config.get("simulate.bandwidth"))
    for g in spec.worker_groups:
        for name in g.worker_names():
            if spec.kind == "ec2":
                out.append(SimWorker(name, g.threads, speed(g.instance_type), latency, bandwidth, name))
            elif spec.kind == "testbed":  # a machine of its own: its quota is its speed, its tbf cap its link
                out.append(SimWorker(name, g.threads, float(g.cpu_share) / reference, float(g.link_delay),
                                     rate_bits(g.bandwidth) / 8 if g.bandwidth else loopback_bandwidth(), name))
            else:
                out.append(SimWorker(name, g.threads, float(g.cpu_share or 1.0) / reference, float(g.link_delay),
                                     loopback_bandwidth(), "local"))
    return out


def local_workers(n: int, reference: float = 1.0) -> list[SimWorker]:
    """The embedded LocalCluster's ``n`` one-thread workers (named 0, 1, ... as LocalCluster names them)."""
    return [SimWorker(str(i), 1, 1.0 / reference, 0.0, loopback_bandwidth(), "local") for i in range(n)]


def _spec(config: dict, run_dir: str | None):
    from ...deploy import load_spec

    path = config["cluster"]
    if not os.path.exists(path) and run_dir is not None:  # a spec path relative to the repository the run came from
        repo = os.path.dirname(os.path.dirname(os.path.abspath(run_dir)))
        if os.path.exists(os.path.join(repo, path)):
            path = os.path.join(repo, path)
    return load_spec(path)


def workers_for(config: dict, run_dir: str | None = None, reference: float = 1.0) -> list[SimWorker]:
    """The simulated workers of a measured distributed configuration (the embedded LocalCluster or a spec)."""
    if not config.get("cluster"):
        # LocalCluster names its workers 0, 1, ...; hash-ring strategies see those names
        return local_workers(int(config["workers"]), reference)
    return workers_from_spec(_spec(config, run_dir), reference)


def server_speed(config: dict, run_dir: str | None = None) -> float:
    """The CPUs of the machine a centralized configuration served from (1.0: this host, one core a request).

    On a testbed the sweep runs the baseline on a machine of the spec: its ``machine`` (a worker machine) if the
    configuration names one, else the spec's server machine; everywhere else in this host.
    """
    if not config.get("cluster"):
        return 1.0
    from ...deploy.testbed import machines

    spec = _spec(config, run_dir)
    if spec.kind != "testbed":
        return 1.0
    on = config.get("machine") or "server"
    return float(next(m.cpu_share for m in machines(spec) if m.name == on))

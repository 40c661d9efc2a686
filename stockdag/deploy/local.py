"""``kind: local``: every worker group as worker processes of one in-process cluster on loopback.

A :class:`~distributed.LocalCluster` has one worker template; the groups need
one each (name ``<group>-<i>``, their threads, memory limit and resource), so
this builds the same :class:`~distributed.SpecCluster` LocalCluster builds,
with one entry a worker.
"""
from __future__ import annotations

import logging

from .base import Deployment, Machine


def worker_specs(spec) -> dict:
    """SpecCluster worker entries for every worker of every group."""
    from distributed import Nanny  # here, not at import: reading a spec or planning needs no distributed

    from ..run.worker_settings import worker_config

    workers = {}
    for g in spec.worker_groups:
        for name in g.worker_names():
            workers[name] = {"cls": Nanny, "options": {
                "name": name, "nthreads": g.threads, "memory_limit": g.memory_limit, "resources": g.resources,
                "host": "127.0.0.1", "silence_logs": logging.WARNING, "dashboard": False,
                "config": worker_config(),  # stockdag.worker_profiler
            }}
    return workers


class LocalDeployment(Deployment):
    """A SpecCluster of the spec's worker groups (processes on this host, no CPU or link limits)."""

    kind = "local"

    @staticmethod
    def plan_machines(spec):
        return plan_machines(spec)

    def __init__(self, spec, cluster_id=None, dashboard_address: str = "127.0.0.1:0"):
        super().__init__(spec, cluster_id)
        self.cluster = None  # the distributed.SpecCluster, once started
        self._dashboard_address = dashboard_address

    def _start(self) -> None:
        from distributed import Scheduler, SpecCluster

        from ..run.main_guard import check_main_guard

        check_main_guard(f"the worker processes of cluster spec {self.spec.name!r}")  # one line, before any starts
        scheduler = {"cls": Scheduler, "options": {"host": "127.0.0.1", "port": 0,
                                                   "dashboard_address": self._dashboard_address}}
        self.cluster = SpecCluster(workers=worker_specs(self.spec), scheduler=scheduler, name=self.cluster_id,
                                   silence_logs=logging.WARNING)
        self.scheduler_address = self.cluster.scheduler_address
        self.dashboard_link = self.cluster.dashboard_link

    def _close(self) -> None:
        if self.cluster is not None:
            self.cluster.close()


def plan_machines(spec):
    """The local cluster as the equivalent commands (it actually runs in-process through SpecCluster)."""
    machines = [Machine("scheduler", "scheduler", "this host (in this Python process)",
                        ["dask scheduler --host 127.0.0.1 --port 0 --dashboard-address 127.0.0.1:0"])]
    for g in spec.worker_groups:
        for name in g.worker_names():
            machines.append(Machine("worker", name, "this host (a Nanny process)", [
                f"dask worker <scheduler> --name {name} --nthreads {g.threads} --memory-limit {g.memory_limit} "
                f"--resources {g.name}={g.threads} --host 127.0.0.1"]))
    return machines, ["worker groups differ only in threads, memory and names: kind local does not limit CPU or links (use emulated)"]

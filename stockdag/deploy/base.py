"""The handle every backend returns from :func:`stockdag.deploy.start`.

To add a backend: subclass :class:`Deployment`, implement ``_start`` (may leave
things half-started when it raises) and ``_close`` (must undo whatever was
started, and tolerate being called after a failed or partial start), set
``kind``, and register the class in ``stockdag.deploy.BACKENDS``.
"""
from __future__ import annotations

import logging
import os
import uuid

from .spec import ClusterSpec

logger = logging.getLogger(__name__)


class Deployment:
    """A started cluster: its addresses, the workers it advertises, and how to stop it."""

    kind = "base"

    def __init__(self, spec: ClusterSpec, cluster_id: str | None = None):
        self.spec = spec
        self.cluster_id = cluster_id or f"{spec.name}-{uuid.uuid4().hex[:8]}"
        self.scheduler_address: str | None = None
        self.dashboard_link: str | None = None
        self.security = None  # distributed.Security for TLS clusters
        self._closed = False
        self._clients: list = []  # every client handed out: closed before the cluster

    # -- lifecycle
    def start(self) -> "Deployment":
        self._start()
        return self

    def close(self) -> None:
        """Stop everything this deployment started; safe to call twice and after a failed start."""
        if self._closed:
            return
        self._closed = True
        try:
            for client in self._clients:
                # before the scheduler goes: a client left open would try to reconnect for 30 s at exit
                client.close()
            self._clients.clear()
        finally:
            self._close()

    def _start(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _close(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- use
    @property
    def worker_names(self) -> list[str]:
        return self.spec.worker_names()

    def client(self, **kwargs):
        """A new :class:`distributed.Client` connected to this cluster.

        Use it as a context manager (``with cluster.client() as client:``) or not:
        the cluster closes every client it handed out when it closes.
        """
        from distributed import Client

        if self.security is not None:
            kwargs.setdefault("security", self.security)
        client = Client(self.scheduler_address, **kwargs)
        self._clients = [c for c in self._clients if c.status != "closed"] + [client]
        return client

    def executor(self, strategy: str | None = None, client=None):
        """A :class:`stockdag.run.DistributedExecutor` on this cluster (strategy: the spec's, else config)."""
        from ..run import DistributedExecutor

        return DistributedExecutor(client=client or self.client(), strategy=strategy or self.spec.strategy)

    def info(self) -> dict:
        """What ``stockdag cluster status`` shows and the state file records."""
        return {
            "cluster_id": self.cluster_id, "name": self.spec.name, "kind": self.kind, "spec": self.spec.source,
            "scheduler": self.scheduler_address, "dashboard": self.dashboard_link, "workers": self.worker_names,
            "pid": os.getpid(),
        }

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"<{type(self).__name__} {self.cluster_id} scheduler={self.scheduler_address} workers={len(self.worker_names)}>"

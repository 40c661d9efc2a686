"""A cluster kind: the class :func:`stockdag.deploy.start` instantiates, which also says how its specs read
and what :func:`stockdag.deploy.plan` shows.

To add a kind (e.g. another cloud): one module with a subclass of :class:`Deployment` that

* sets ``kind`` (the spec's ``kind:``) and, if it has settings, ``Options``: a frozen
  dataclass read from the spec's ``<kind>:`` section (override :meth:`~Deployment.parse_options`
  to check values beyond their names);
* names in ``group_keys`` the :class:`~stockdag.deploy.schema.WorkerGroup` fields only it
  accepts and checks them in :meth:`~Deployment.check_group`;
* implements ``plan_machines(spec)`` (the dry run: :class:`Machine` rows and notes) and,
  for a priced kind, ``prices_date`` and :meth:`~Deployment.cost_line`;
* implements ``_start`` (may leave things half-started when it raises) and ``_close`` (must
  undo whatever was started, and tolerate being called after a failed or partial start);

then add the class to :data:`stockdag.deploy.spec.KINDS`.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import uuid

from .schema import ClusterSpec, NoOptions, SpecError, unknown_keys

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class Machine:
    """One machine (or process group on this host) the cluster would start."""

    role: str                    # scheduler | worker
    name: str                    # e.g. "big-0"
    where: str                   # "this host" or an instance type
    commands: list[str]
    hourly_usd: float | None = 0.0


class Deployment:
    """A started cluster: its addresses, the workers it advertises, and how to stop it."""

    kind = "base"
    #: the kind's settings, read from the spec's ``<kind>:`` section (no fields: no section)
    Options: type = NoOptions
    #: WorkerGroup fields that only this kind accepts (checked by :meth:`check_group`)
    group_keys: tuple[str, ...] = ()
    #: date of the price table a priced kind's plan quotes; None: the cluster runs on this host, for free
    prices_date: str | None = None

    # -- the spec (class methods: nothing is started)
    @classmethod
    def parse_options(cls, raw) -> object:
        """The kind's ``Options`` from its spec section (``raw``: the mapping, or None when absent)."""
        if raw is None:
            return cls.Options()
        if not isinstance(raw, dict):
            raise SpecError(f"{cls.kind}: expected a mapping of {cls.kind} settings, got {raw!r}")
        unknown_keys(cls.kind, raw, [f.name for f in dataclasses.fields(cls.Options)])
        return cls.Options(**raw)

    @classmethod
    def check_group(cls, where: str, raw: dict) -> dict:
        """Checked values of this kind's ``group_keys`` in one worker group's mapping (``where`` names it)."""
        return {}

    @staticmethod
    def plan_machines(spec) -> tuple[list[Machine], list[str]]:  # pragma: no cover - abstract
        """What :func:`stockdag.deploy.plan` shows: the machines and the commands each runs, and notes."""
        raise NotImplementedError

    @classmethod
    def cost_line(cls, plan) -> str:
        """The plan's last line about money."""
        return "estimated cost: $0 (runs on this host)"

    def __init__(self, spec: ClusterSpec, cluster_id: str | None = None):
        self.spec = spec
        self.cluster_id = cluster_id or f"{spec.name}-{uuid.uuid4().hex[:8]}"
        self.scheduler_address: str | None = None
        self.dashboard_link: str | None = None
        self.security = None  # distributed.Security for TLS clusters
        self._closed = False
        self._clients: list = []  # every client handed out: closed before the cluster

    # -- lifecycle
    def start(self) -> Deployment:
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
        """A :class:`~stockdag.run.distributed.DistributedExecutor` on this cluster (strategy: the spec's, else config)."""
        from ..run import DistributedExecutor

        # the deployment's cluster is stockdag's: always configured (stockdag.configure_cluster is for other clusters)
        return DistributedExecutor(client=client or self.client(), strategy=strategy or self.spec.strategy, configure_cluster=True)

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

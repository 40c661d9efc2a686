"""The distributed executor: the same stage graph computed on a ``dask.distributed`` cluster.

Give it an existing :class:`~distributed.Client`, a scheduler address, or
nothing (it then starts a :class:`~distributed.LocalCluster` of
``n_workers`` single-threaded worker processes and closes it on exit). One
executor serves many concurrent requests: :meth:`submit` returns a future at
once, :meth:`arun` awaits one from async code.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging

from distributed import Client, LocalCluster

from .. import config
from ..pipeline import build_graph
from ..request import Request
from ..result import PredictionResult

logger = logging.getLogger(__name__)

PLUGIN_NAME = "stockdag-placement"


def _plan_on_scheduler(dask_scheduler, request_id: str):
    plugin = dask_scheduler.plugins.get(PLUGIN_NAME)
    if plugin is None or not hasattr(plugin, "plan_for"):
        return None
    return plugin.plan_for(request_id)


class DistributedExecutor:
    """Computes request graphs on a Dask cluster.

    Parameters
    ----------
    client : distributed.Client, optional
        Use this client (not closed by :meth:`close`).
    address : str, optional
        Connect to this scheduler instead.
    n_workers, threads_per_worker : int
        Size of the LocalCluster started when neither is given.
    strategy : str, optional
        Placement strategy to register on the scheduler (``stockdag.placement``);
        None reads ``stockdag.placement.strategy``; ``"dask"`` registers nothing.
    dashboard_address : str, optional
        Dashboard of a started LocalCluster; None reads ``stockdag.dashboard_address``
        (loopback, free port).
    """

    mode = "distributed"

    def __init__(self, client: Client | None = None, address: str | None = None, *,
                 n_workers: int = 2, threads_per_worker: int = 1, strategy: str | None = None,
                 dashboard_address: str | None = None, **cluster_kwargs):
        self._own_cluster = None
        self._own_client = False
        if client is None:
            if address is None:
                self._own_cluster = LocalCluster(
                    n_workers=n_workers, threads_per_worker=threads_per_worker, processes=True,
                    host="127.0.0.1", dashboard_address=config.get("dashboard_address", dashboard_address),
                    **{"silence_logs": logging.WARNING, **cluster_kwargs},
                )
                address = self._own_cluster
            from ..deploy.service import security_for

            security = security_for(address)  # a TLS cluster of `stockdag cluster up`: its certificates
            client = Client(address, **({"security": security} if security is not None else {}))
            self._own_client = True
        self.client = client
        self.strategy = config.get("placement.strategy", strategy)
        # an asynchronous client cannot register from __init__: start() (or the first arun) does
        self._pending_registration = self._wants_plan() and bool(client.asynchronous)
        if self._wants_plan() and not client.asynchronous:
            from ..placement import register

            register(self.client, self.strategy)

    async def start(self) -> "DistributedExecutor":
        """Register the placement strategy on an asynchronous client's scheduler (idempotent)."""
        if self._pending_registration:
            from ..placement import register

            self._pending_registration = False
            await register(self.client, self.strategy)
        return self

    # -- submitting
    def submit(self, request: Request):
        """Start computing one request; returns a distributed Future of a Traced Prediction."""
        return self.client.compute(build_graph(request), optimize_graph=False)

    def _finish(self, traced, request: Request, planned: dict | None) -> PredictionResult:
        result = PredictionResult.from_traced(traced, self.mode, request.request_id)
        if planned:
            from ..pipeline import STAGES_BY_ID, task_key

            trace = tuple(
                dataclasses.replace(t, planned_worker=planned.get(task_key(STAGES_BY_ID[t.id], request.request_id)))
                for t in result.trace
            )
            result = dataclasses.replace(result, trace=trace)
        return result

    def _wants_plan(self) -> bool:
        return bool(self.strategy) and self.strategy != "dask"

    def run(self, request: Request) -> PredictionResult:
        """Compute one request and wait for it."""
        future = self.submit(request)
        try:
            traced = future.result()
        finally:
            future.release()
        planned = self.client.run_on_scheduler(_plan_on_scheduler, request_id=request.request_id) if self._wants_plan() else None
        return self._finish(traced, request, planned)

    async def arun(self, request: Request) -> PredictionResult:
        """Compute one request from async code (an asynchronous client, or a sync one via a thread)."""
        await self.start()
        future = self.submit(request)
        try:
            if self.client.asynchronous:
                traced = await future
            else:
                traced = await asyncio.get_running_loop().run_in_executor(None, future.result)
        finally:
            future.release()
        planned = None
        if self._wants_plan():
            if self.client.asynchronous:
                planned = await self.client.run_on_scheduler(_plan_on_scheduler, request_id=request.request_id)
            else:
                planned = await asyncio.get_running_loop().run_in_executor(
                    None, lambda: self.client.run_on_scheduler(_plan_on_scheduler, request_id=request.request_id)
                )
        return self._finish(traced, request, planned)

    # -- lifecycle
    @property
    def dashboard_link(self) -> str | None:
        return getattr(self.client, "dashboard_link", None)

    def close(self) -> None:
        if self._own_client:
            self.client.close()
        if self._own_cluster is not None:
            self._own_cluster.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

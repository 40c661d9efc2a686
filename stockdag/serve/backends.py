"""How the server runs a request: centralized, replicated or distributed.

A backend has ``mode``, async ``start``/``close``, async ``predict(request, ticket)``
returning the response dict, and async ``info()`` for ``/health``. Extend by
subclassing :class:`Backend` and listing the class in :data:`BACKENDS`.

``ticket`` (:class:`~stockdag.serve.admission.Ticket`, may be None) is the
request's place in the admission count. A backend whose work can outlive a
cancelled ``predict`` (a running thread or process cannot be stopped) hands
it over and releases it when the work ends; otherwise the caller releases it.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import psutil

from .. import config
from ..errors import StockdagError
from ..pipeline.modes import CENTRALIZED, DISTRIBUTED, REPLICATED
from ..pipeline.request import Request
from ..run.isolated import leave_ctrl_c_to_the_parent as _leave_ctrl_c_to_the_server
from ..run.isolated import process_pool
from ..run.isolated import warm as _warm
from ..run.worker_settings import worker_config
from .admission import Ticket

logger = logging.getLogger(__name__)


async def _warm_every_process(pool: ProcessPoolExecutor, processes: int) -> set[int]:
    """Return the pids, once each of the pool's ``processes`` processes has run :func:`~stockdag.run.isolated.warm`.

    One process may run several warm-ups while another is still importing, and a process still importing
    has not yet ignored Ctrl-C (its initializer runs after the import): so rounds of warm-ups go on until
    every process has answered with its pid. A server is ready (answers ``/health``) only after this.
    """
    loop = asyncio.get_running_loop()
    started: set[int] = set()
    while len(started) < processes:
        started.update(await asyncio.gather(*(loop.run_in_executor(pool, _warm) for _ in range(processes))))
        if len(started) < processes:
            await asyncio.sleep(0.05)
    return started


class BackendUnavailable(StockdagError):
    """The backend cannot take requests (a replica died, the cluster is gone)."""

    http_status = 503


class Backend:
    """Base class: runs whole requests and reports what it is for ``/health``."""

    mode = "base"
    #: times the backend replaced its workers after one died (``/metrics``: ``stockdag_backend_replaced``)
    replaced = 0

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def predict(self, request: Request, ticket: Ticket | None = None) -> dict:
        raise NotImplementedError

    async def info(self) -> dict:
        return {"mode": self.mode, "workers": 1, "strategy": None, "dashboard": None}


def _run_whole(request: Request) -> dict:
    # module level so that a replica process can unpickle it
    from ..run.centralized import run_whole

    return run_whole(request).to_dict()


async def _holding(future, ticket: Ticket | None):
    """Await a pool future; its ticket is released when the work ends (or is cancelled before it starts)."""
    if ticket is not None:
        ticket.hand_over()
        future.add_done_callback(ticket.release)
    return await asyncio.wrap_future(future)


class CentralizedBackend(Backend):
    """The baseline: one request's pipeline at a time, in the server process.

    The pipeline runs in one worker thread, so the event loop keeps answering
    ``/health`` and ``/metrics`` (and refusing excess requests) while it works;
    waiting requests queue in that thread's queue, in arrival order.
    """

    mode = CENTRALIZED

    def __init__(self):
        self._pool: ThreadPoolExecutor | None = None

    async def start(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stockdag-centralized")
        await asyncio.get_running_loop().run_in_executor(self._pool, _warm)

    async def predict(self, request: Request, ticket: Ticket | None = None) -> dict:
        # a cancelled (timed-out) request still waiting in the queue is dropped, not run; a running one
        # finishes in its thread and keeps its ticket until then
        return await _holding(self._pool.submit(_run_whole, request), ticket)

    async def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)


class ReplicatedBackend(Backend):
    """K centralized processes, each running whole requests (what Ray Serve or Triton replicas do).

    A pool that lost a process (killed, out of memory) runs nothing more
    (:class:`~concurrent.futures.process.BrokenProcessPool`): it is replaced by a new one, counted in
    :attr:`replaced`. Until the new one is ready, ``/health`` reports no workers.

    Parameters
    ----------
    replicas : int
        Number of worker processes (spawned, not forked: the server process
        has an event loop and threads that a fork would copy half-way).
    """

    mode = REPLICATED

    def __init__(self, replicas: int = 2):
        if replicas < 1:
            raise ValueError("replicas must be >= 1")
        self.replicas = replicas
        self.pids: set[int] = set()  # the replica processes of the pool in use
        self._pool: ProcessPoolExecutor | None = None
        self._replacing: asyncio.Task | None = None

    async def start(self) -> None:
        self._pool = process_pool(self.replicas)  # spawned, Ctrl-C left to the server (stockdag.run.isolated)
        self.pids = await _warm_every_process(self._pool, self.replicas)

    async def predict(self, request: Request, ticket: Ticket | None = None) -> dict:
        pool = self._pool
        try:
            future = pool.submit(_run_whole, request)
        except BrokenProcessPool:  # a replica died before this request reached one: it runs on the new pool
            future = await self._on_new_pool(pool, request)
        try:
            return await _holding(future, ticket)
        except BrokenProcessPool:
            self._replace(pool)  # the next requests run on a new pool; this one's work is lost with its replica
            raise BackendUnavailable("a replica process died while running this request; "
                                     "the replicas are being restarted") from None

    async def _on_new_pool(self, broken: ProcessPoolExecutor, request: Request):
        try:
            await asyncio.shield(self._replace(broken))  # shielded: a request's deadline does not stop it
            return self._pool.submit(_run_whole, request)
        except BrokenProcessPool:
            raise BackendUnavailable("the replica processes died and could not be restarted") from None

    def _replace(self, broken: ProcessPoolExecutor) -> asyncio.Future:
        """Start replacing ``broken`` by a new pool, once however many requests found it broken."""
        if self._replacing is None and self._pool is broken:
            self._replacing = asyncio.ensure_future(self._restart(broken))
            self._replacing.add_done_callback(self._restarted)
        elif self._replacing is None:  # already replaced
            done = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done
        return self._replacing

    async def _restart(self, broken: ProcessPoolExecutor) -> None:
        broken.shutdown(wait=False, cancel_futures=True)
        pool = process_pool(self.replicas)
        try:
            pids = await _warm_every_process(pool, self.replicas)
        except BaseException:  # the new pool broke too, or the server is closing: it goes, the old one stays
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        self._pool, self.pids = pool, pids
        self.replaced += 1
        logger.warning("a replica process died: replaced the pool of %d replicas (%d time(s) since start)",
                       self.replicas, self.replaced)

    def _restarted(self, task: asyncio.Task) -> None:
        self._replacing = None
        if not task.cancelled() and task.exception() is not None:  # retrieved here: the next request tries again
            logger.warning("could not replace the replica processes: %s", task.exception())

    def _ready(self) -> bool:
        """Every replica process of the pool in use is running (one lost breaks the whole pool)."""
        if self._pool is None or self._replacing is not None:
            return False
        for pid in self.pids:
            try:
                if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                    return False
            except psutil.NoSuchProcess:
                return False
        return True

    async def close(self) -> None:
        if self._replacing is not None:
            self._replacing.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._replacing
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    async def info(self) -> dict:
        ready = self._ready()
        if not ready and self._pool is not None and self._replacing is None:
            self._replace(self._pool)  # a replica died while idle: replaced before a request finds it
        return {"mode": self.mode, "workers": self.replicas if ready else 0, "strategy": None, "dashboard": None}


class DistributedBackend(Backend):
    """Many requests in flight on one asynchronous Dask client.

    Parameters
    ----------
    workers : int
        Worker processes of the LocalCluster started when ``scheduler`` is None.
    scheduler : str, optional
        Address of a running scheduler.
    strategy : str, optional
        Placement strategy name (``stockdag.placement.STRATEGIES``); ``"dask"`` installs none. None: the
        configured one (``stockdag.placement.strategy``), unless the cluster already places with its own.
    security : distributed.Security, optional
        Credentials for a TLS scheduler.
    """

    mode = DISTRIBUTED

    def __init__(self, workers: int = 2, scheduler: str | None = None, strategy: str | None = None, security=None):
        self.n_workers = workers
        self.scheduler = scheduler
        self.security = security  # distributed.Security of a TLS cluster (e.g. stockdag.deploy's ec2)
        self._strategy = strategy
        self.strategy = strategy or config.get("placement.strategy")  # the one in effect, once started
        self.client = None
        self.cluster = None
        self.executor = None

    async def start(self) -> None:
        from distributed import Client, LocalCluster

        from ..run.distributed import DistributedExecutor

        if self.scheduler:
            from ..deploy.service import security_for

            security = self.security or security_for(self.scheduler)  # a TLS cluster of `stockdag cluster up`
            kwargs = {"security": security} if security is not None else {}
            self.client = await Client(self.scheduler, asynchronous=True, **kwargs)
        else:
            from ..run.main_guard import check_main_guard

            check_main_guard("the server's LocalCluster worker processes")
            self.cluster = await LocalCluster(n_workers=self.n_workers, threads_per_worker=1, processes=True,
                                              host="127.0.0.1", dashboard_address=config.get("dashboard_address"), asynchronous=True,
                                              silence_logs=logging.WARNING, config=worker_config())
            self.client = await Client(self.cluster, asynchronous=True)
            # ready only with every worker registered: a strategy placing a first request on a cluster that has
            # not seen all its workers yet spreads it over fewer than it was asked for
            await self.client.wait_for_workers(self.n_workers, timeout=float(config.get("deploy.start_timeout")))
            # the worker processes are this server's children: like the replicas, they leave Ctrl-C to the
            # server, which closes the cluster (else each prints a KeyboardInterrupt traceback)
            await self.client.run(_leave_ctrl_c_to_the_server)
        # a LocalCluster started here is ours to configure (stockdag.configure_cluster is for other people's)
        self.executor = await DistributedExecutor(client=self.client, strategy=self._strategy,
                                                  configure_cluster=True if self.cluster is not None else None).start()
        self.strategy = self.executor.strategy

    async def predict(self, request: Request, ticket: Ticket | None = None) -> dict:
        # handed over: a request past its deadline leaves its tasks to run to their end (a task running on
        # a worker cannot be stopped), and they keep its place in the admission count until then
        result = await self.executor.arun(request, hold=ticket)
        return result.to_dict()

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()
        if self.cluster is not None:
            await self.cluster.close()

    async def info(self) -> dict:
        workers = None
        if self.client is not None:
            workers = len(await self.client.nthreads())  # asked now: workers may have joined or left
        return {"mode": self.mode, "workers": workers, "strategy": self.strategy,
                "dashboard": getattr(self.client, "dashboard_link", None), "scheduler": self.scheduler}


BACKENDS = {cls.mode: cls for cls in (CentralizedBackend, ReplicatedBackend, DistributedBackend)}

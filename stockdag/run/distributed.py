"""The distributed executor: the same stage graph computed on a ``dask.distributed`` cluster.

Give it an existing :class:`~distributed.Client`, a scheduler address, or
nothing (it then starts a :class:`~distributed.LocalCluster` of
``n_workers`` single-threaded worker processes and closes it on exit). One
executor serves many concurrent requests: :meth:`submit` returns a future at
once, :meth:`arun` awaits one from async code.
"""
from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
import uuid

import dask
from distributed import Client, LocalCluster

from .. import config
from ..pipeline.graph import build_graph, request_task
from ..pipeline.request import Request
from ..pipeline.result import PredictionResult
from .worker_settings import worker_config

logger = logging.getLogger(__name__)



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
        Placement strategy to register on the scheduler (``stockdag.placement``),
        replacing any earlier one; None reads ``stockdag.placement.strategy``.
        ``"dask"`` registers nothing and leaves a plugin already on the scheduler
        in place (one loaded with ``--preload stockdag.placement.preload``, or
        registered with :func:`stockdag.placement.register`, which switches
        strategies, ``dask`` included). Either way each stage's trace carries the
        plan the scheduler used.
    granularity : str, optional
        Stages per task (:data:`stockdag.pipeline.GRANULARITY_CHOICES`); None reads
        ``stockdag.pipeline.granularity``. ``auto`` and ``load`` are resolved for
        each request from the worker threads the client last heard of and (``load``)
        the requests this executor has in flight
        (:func:`stockdag.pipeline.resolve_granularity`); :meth:`granularity_now` says
        which, :attr:`granularities` counts what was built.
    dashboard_address : str, optional
        Dashboard of a started LocalCluster; None reads ``stockdag.dashboard_address``
        (loopback, free port).
    configure_cluster : bool, optional
        With a ``client`` or ``address`` (a cluster this executor did not start): whether to
        install stockdag's scheduler and worker plugins there; None reads
        ``stockdag.configure_cluster`` (true). They act for *every* client of that cluster:
        the placement plugin restricts stockdag's tasks (it leaves tasks without a
        ``stockdag`` annotation alone), the ``stockdag.batching`` stream intervals
        (1 ms) apply to all streams, and the worker log filter quiets the "Compute
        Failed" records of stockdag stages that raised a request error. False installs
        nothing (a placement plugin already there still plans; naming a strategy is
        then refused with :class:`~stockdag.InvalidRequest`).
    """

    mode = "distributed"
    #: a one-task request (``request`` granularity) goes through ``Client.submit``; False: through its delayed
    #: graph like every other granularity (the two are compared by ``stockdag overhead``)
    submit_one_task = True

    def __init__(self, client: Client | None = None, address: str | None = None, *,
                 n_workers: int = 2, threads_per_worker: int = 1, strategy: str | None = None,
                 granularity: str | None = None, dashboard_address: str | None = None,
                 configure_cluster: bool | None = None, **cluster_kwargs):
        from ..pipeline.granularity import resolve_granularity

        self.granularity = config.get("pipeline.granularity", granularity)
        resolve_granularity(self.granularity, None)  # an unknown granularity fails here, before a cluster starts
        #: granularity -> requests built with it (``auto``/``load`` resolve per request)
        self.granularities: collections.Counter = collections.Counter()
        self._in_flight = 0
        self._lock = threading.Lock()
        self._outliving: set = set()  # futures of cancelled arun(hold=...) calls, kept until their work ends
        self._own_cluster = None
        self._own_client = False
        if client is None:
            if address is None:
                from .isolated import ctrl_c_left_to_this_process
                from .main_guard import check_main_guard

                check_main_guard("a LocalCluster's worker processes")  # one line, before any process starts
                try:
                    with ctrl_c_left_to_this_process():  # its worker processes: Ctrl-C stops this process, which closes them
                        self._own_cluster = LocalCluster(
                            n_workers=n_workers, threads_per_worker=threads_per_worker, processes=True,
                            host="127.0.0.1", dashboard_address=config.get("dashboard_address", dashboard_address),
                            **{"silence_logs": logging.WARNING, "config": worker_config(), **cluster_kwargs},
                        )
                except BaseException:  # Ctrl-C while it started (delivered as the block ends): no caller can close it
                    if self._own_cluster is not None:
                        self._own_cluster.close()
                    raise
                address = self._own_cluster
            from ..deploy.state import security_for

            security = security_for(address)  # a TLS cluster of `stockdag cluster up`: its certificates
            client = Client(address, **({"security": security} if security is not None else {}))
            self._own_client = True
        self.client = client
        #: the strategy placing this executor's tasks: the one given, else the cluster's own when its scheduler
        #: already has one (see stockdag.placement.ensure), else stockdag.placement.strategy
        self.strategy = config.get("placement.strategy", strategy)
        self._explicit = strategy is not None
        self._register = self.strategy != "dask"
        #: whether stockdag's plugins are installed on the cluster (always on one this executor started)
        self.configure_cluster = self._own_cluster is not None or bool(config.get("configure_cluster", configure_cluster))
        if not self.configure_cluster and self._explicit:
            from ..errors import InvalidRequest

            self.close()
            raise InvalidRequest(f"strategy {strategy!r} needs stockdag's placement plugin on the scheduler, and "
                                 "configure_cluster is false (nothing is installed on a cluster stockdag did not start)")
        # an asynchronous client cannot register from __init__: start() (or the first arun) does
        self._pending_registration = bool(client.asynchronous)
        if not client.asynchronous:
            self._install()

    def _install(self):
        """Register the placement strategy, the stream intervals (``stockdag.batching``) and the workers' log filter."""
        from ..placement import ensure, in_effect, register, unregister
        from . import batching, worker_logs

        if not self.configure_cluster:  # leave the cluster as it is; record who places there
            return [s for s in [self._adopt(in_effect(self.client))] if s is not None]
        steps = []
        if self._register and self._explicit:
            steps.append(register(self.client, self.strategy))
        elif self._register:  # the configured default: a cluster that places with its own strategy keeps it
            steps.append(self._adopt(ensure(self.client, self.strategy)))
        elif self._explicit:  # dask, named: Dask's own placement, whatever the cluster placed with before
            removed = unregister(self.client)
            steps.append(removed if self.client.asynchronous else None)
        steps.append(batching.apply(self.client))
        steps.append(worker_logs.install(self.client))
        return [s for s in steps if s is not None]

    def _adopt(self, in_effect):
        """Record the strategy :func:`stockdag.placement.ensure` left in effect (awaited for an asynchronous client)."""
        if not self.client.asynchronous:
            self.strategy = in_effect
            return None

        async def adopt():
            self.strategy = await in_effect
        return adopt()

    async def start(self) -> DistributedExecutor:
        """Register the placement strategy on an asynchronous client's scheduler (idempotent)."""
        if self._pending_registration:
            self._pending_registration = False
            for step in self._install():
                await step
        return self

    # -- submitting
    def submit(self, request: Request):
        """Start computing one request; returns a distributed Future of a Traced Prediction."""
        granularity = self.granularity_now()
        if granularity == "request" and self.submit_one_task:
            # one task: submit it as it is, without building and converting a task graph (its cost is
            # part of the overhead that `stockdag overhead --submit task graph` compares)
            key, func, annotations = request_task(request)
            with dask.annotate(stockdag=annotations):
                future = self.client.submit(func, request, key=key, pure=False)
        else:
            future = self.client.compute(build_graph(request, granularity), optimize_graph=False)
        with self._lock:
            self.granularities[granularity] += 1
            self._in_flight += 1
        future.add_done_callback(self._done)
        return future

    def _done(self, future) -> None:
        with self._lock:
            self._in_flight -= 1

    def granularity_now(self) -> str:
        """The granularity the next request is built with (``auto`` resolved)."""
        from ..pipeline.granularity import resolve_granularity

        if self.granularity not in ("auto", "load"):
            return self.granularity
        from .internals import require

        # the client's copy of the scheduler's identity, refreshed in the background: no round trip
        threads = (require(self.client, "_scheduler_identity", "Client._scheduler_identity") or {}).get("total_threads")
        return resolve_granularity(self.granularity, int(threads) if threads else None, self._in_flight)

    def _finish(self, traced, request: Request) -> PredictionResult:
        # the planned worker of each stage travelled with its task (see stockdag.pipeline.trace.current_place)
        return PredictionResult.from_traced(traced, self.mode, request.request_id, request.pipeline)

    def run(self, request: Request) -> PredictionResult:
        """Compute one request and wait for it."""
        future = self.submit(request)
        try:
            traced = future.result()
        finally:
            future.release()
        return self._finish(traced, request)

    async def arun(self, request: Request, hold=None) -> PredictionResult:
        """Compute one request from async code (an asynchronous client, or a sync one via a thread).

        ``hold`` (a :class:`~stockdag.serve.admission.Ticket`, or anything with ``hand_over()`` and
        ``release()``) is handed over once the work is submitted and released when that work ends. With
        it, a cancelled call (a request past its deadline) leaves its tasks to run to their end, so that
        they keep their place in the caller's count; without it, they are dropped.
        """
        await self.start()
        future = self.submit(request)
        if hold is not None:
            hold.hand_over()
            future.add_done_callback(hold.release)
        kept = False
        try:
            if self.client.asynchronous:
                traced = await future
            else:
                traced = await asyncio.get_running_loop().run_in_executor(None, future.result)
        except asyncio.CancelledError:
            if hold is not None and not future.done():
                # a Future nobody references is released, and the scheduler forgets its tasks
                kept = True
                self._outliving.add(future)
                future.add_done_callback(self._let_go)
            raise
        finally:
            if not kept:
                future.release()
        return self._finish(traced, request)

    def _let_go(self, future) -> None:
        self._outliving.discard(future)
        future.release()

    # -- lifecycle
    @property
    def dashboard_link(self) -> str | None:
        return getattr(self.client, "dashboard_link", None)

    def close(self) -> None:
        """Close the client if this executor created it (a client passed in stays open)."""
        if self._own_client:
            self.client.close()
        if self._own_cluster is not None:
            self._own_cluster.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _noop(x):
    """The task of :func:`round_trip`: returns its argument."""
    return x


def round_trip(client: Client, settle: float = 0.02) -> float:
    """Seconds one task that does nothing takes on an idle cluster: submit, schedule, run, report and gather.

    Dask's floor: a one-task request pays at least this over the same stages run
    in process (``stockdag overhead`` and ``stockdag demo`` measure it
    between their requests). It first waits ``settle`` seconds, longer than any
    stream's batching interval, so that no interval opened by an earlier message
    delays it: back to back, a task shorter than an interval would measure the
    interval instead (10 ms with Dask's own on the client's stream).
    """
    time.sleep(settle)
    t0 = time.perf_counter()
    f = client.submit(_noop, 0, key=f"stockdag-floor-{uuid.uuid4().hex}", pure=False)
    f.result()
    took = time.perf_counter() - t0
    f.release()
    return took

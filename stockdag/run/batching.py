"""Dask's batched-send intervals, set from ``stockdag.batching`` instead of fixed in its code.

Every Dask stream (scheduler -> worker, scheduler -> client, worker ->
scheduler, client -> scheduler) is a :class:`distributed.batched.BatchedSend`
that sends at most one batch per interval; distributed 2026.8 fixes the
intervals in code (5, 2, 2 and 10 ms) with no configuration key. A request of
12 small tasks crosses these streams once per dependency level, so on a light
pipeline the waits add up. :class:`SchedulerBatching` and
:class:`WorkerBatching` set the configured intervals on the streams as they
are made (``BatchedSend.interval`` is read before every send);
:func:`apply` installs both and sets the client's own stream.
"""
from __future__ import annotations

from dask.utils import parse_timedelta
from distributed.diagnostics.plugin import SchedulerPlugin, WorkerPlugin

from .. import config
from ..errors import InvalidRequest

NAME = "stockdag-batching"

#: config key under stockdag.batching -> Dask's own interval (seconds), for the record
DASK_DEFAULTS = {"scheduler_to_worker": 0.005, "scheduler_to_client": 0.002, "worker_to_scheduler": 0.002, "client_to_scheduler": 0.010}
#: named sets of intervals, as ``stockdag.batching`` takes them: ``dask`` is Dask's own, ``fast`` 1 ms on every
#: stream (stockdag's default, see stockdag.yaml); the sweep's ``batching`` and ``stockdag overhead
#: --batching`` choose among them
def as_config(seconds: dict[str, float]) -> dict[str, str]:
    """Intervals in seconds as ``stockdag.batching`` takes them (a bare number there means milliseconds)."""
    return {k: f"{1000 * v:g}ms" for k, v in seconds.items()}


PRESETS = {
    "dask": as_config(DASK_DEFAULTS),
    "fast": as_config(dict.fromkeys(DASK_DEFAULTS, 0.001)),
}


def intervals(overrides: dict | None = None) -> dict[str, float | None]:
    """Configured intervals in seconds (None: Dask's own), ``overrides`` winning."""
    conf = {**(config.get("batching") or {}), **(overrides or {})}
    out = {}
    for key in DASK_DEFAULTS:
        v = conf.get(key)
        if v is None:
            out[key] = None
            continue
        try:
            seconds = parse_timedelta(v, default="ms")
        except (KeyError, ValueError, TypeError):
            seconds = None
        if seconds is None or seconds < 0:
            raise InvalidRequest(f"stockdag.batching.{key} = {v!r} is not a duration such as '1ms' (or null for Dask's own)")
        out[key] = seconds
    return out


def effective(overrides: dict | None = None) -> dict[str, float]:
    """The intervals that apply (Dask's own where none is configured), for run records."""
    return {k: DASK_DEFAULTS[k] if v is None else v for k, v in intervals(overrides).items()}


class SchedulerBatching(SchedulerPlugin):
    """Sets the scheduler's outgoing stream intervals, for streams open now and made later."""

    name = NAME

    def __init__(self, to_worker: float | None, to_client: float | None):
        self.to_worker = to_worker
        self.to_client = to_client

    async def start(self, scheduler) -> None:
        for address in scheduler.stream_comms:
            self.add_worker(scheduler, address)
        for client in scheduler.client_comms:
            self._client(scheduler, client)

    def add_worker(self, scheduler, worker: str, **kwargs) -> None:
        stream = scheduler.stream_comms.get(worker)
        if stream is not None and self.to_worker is not None:
            stream.interval = self.to_worker

    def update_graph(self, scheduler, *, client: str, **kwargs) -> None:
        # add_client runs before the scheduler makes the client's stream; a graph comes after it
        self._client(scheduler, client)

    def _client(self, scheduler, client: str) -> None:
        stream = scheduler.client_comms.get(client)
        if stream is not None and self.to_client is not None:
            stream.interval = self.to_client


class WorkerBatching(WorkerPlugin):
    """Sets a worker's stream to the scheduler."""

    name = NAME

    def __init__(self, to_scheduler: float | None):
        self.to_scheduler = to_scheduler

    def setup(self, worker) -> None:
        if self.to_scheduler is not None:
            from .internals import require

            require(worker, "batched_stream", "Worker.batched_stream").interval = self.to_scheduler


def _set_client_stream(client, seconds: float | None) -> None:
    if seconds is not None and client.scheduler_comm is not None:
        client.scheduler_comm.interval = seconds


async def _install(plugin, dask_scheduler=None) -> None:
    if plugin.name in dask_scheduler.plugins:
        dask_scheduler.remove_plugin(plugin.name)  # add_plugin would warn about overwriting
    await plugin.start(dask_scheduler)
    dask_scheduler.add_plugin(plugin, name=plugin.name)


def apply(client, overrides: dict | None = None):
    """Apply the configured intervals to ``client``'s cluster and its own stream; nothing if none is set.

    Returns None, or an awaitable for an asynchronous client.
    """
    iv = intervals(overrides)
    if all(v is None for v in iv.values()):
        return None
    scheduler_plugin = SchedulerBatching(iv["scheduler_to_worker"], iv["scheduler_to_client"])
    worker_plugin = WorkerBatching(iv["worker_to_scheduler"])
    if client.asynchronous:
        async def _apply():
            await client.run_on_scheduler(_install, scheduler_plugin)
            await client.register_plugin(worker_plugin)
            _set_client_stream(client, iv["client_to_scheduler"])
        return _apply()
    client.run_on_scheduler(_install, scheduler_plugin)
    client.register_plugin(worker_plugin)
    _set_client_stream(client, iv["client_to_scheduler"])
    return None

"""A Dask comm backend, ``delaytcp://``: TCP that holds every outgoing message for a configured delay.

Emulates a slow link where the kernel has no ``netem``. The delay is a
property of the *sending process* (like netem on a host's egress): every
message a process writes on any ``delaytcp`` comm reaches the wire
``stockdag.deploy.link_delay`` seconds after ``write`` was called. Messages are
pipelined, not serialised: ``write`` serialises the message, queues its frames
with a due time and returns at once; one task a comm writes the queue out in
order as each message falls due, so ten messages sent together all arrive
one delay later, not ten delays later. A round trip to a process with delay
``d`` grows by ``d``.

Registered through the ``distributed.comm.backends`` entry point (pyproject.toml),
so any process of this environment (scheduler, workers, clients) understands
``delaytcp://`` addresses. Set the delay per process with the environment
variable ``DASK_STOCKDAG__DEPLOY__LINK_DELAY=0.02`` (seconds).
"""
from __future__ import annotations

import asyncio
import collections
import time

import dask.config
from distributed.comm.core import CommClosedError
from distributed.comm.tcp import TCP, TCPBackend, TCPConnector, TCPListener
from distributed.comm.utils import to_frames
from distributed.utils import ensure_memoryview
from tornado.iostream import StreamClosedError

from ..run.internals import from_module

_add_frames_header, convert_stream_closed_error = from_module(
    "distributed.comm.tcp", "_add_frames_header", "convert_stream_closed_error")

SCHEME = "delaytcp"

#: this process's last delayed messages, (delay, written, due, sent) in ``time.monotonic()`` seconds: the
#: comm's own account of what it held back and for how long (tests read it instead of timing round trips)
RECORDS: collections.deque = collections.deque(maxlen=10_000)


def link_delay() -> float:
    """This process's added delay, in seconds, from ``stockdag.deploy.link_delay`` (0 when unset)."""
    return float(dask.config.get("stockdag.deploy.link_delay", default=0.0) or 0.0)


class DelayedTCP(TCP):
    """A TCP comm whose writes reach the socket ``delay`` seconds late, in order."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.delay = link_delay()
        self._queue: collections.deque = collections.deque()
        self._drainer: asyncio.Task | None = None

    async def write(self, msg, serializers=None, on_error="message"):
        if self.delay <= 0:
            return await super().write(msg, serializers=serializers, on_error=on_error)
        if self.stream is None:
            raise CommClosedError()
        due = time.monotonic() + self.delay
        # serialise now, as a real sender would: later changes to msg must not leak into the message
        frames = await to_frames(
            msg, allow_offload=self.allow_offload, serializers=serializers, on_error=on_error,
            context={"sender": self.local_info, "recipient": self.remote_info, **self.handshake_options},
            frame_split_size=self.max_shard_size,
        )
        frames, frames_nbytes, total = _add_frames_header(frames)
        self._queue.append((due, frames, frames_nbytes, due - self.delay))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.ensure_future(self._drain())
        return total

    async def _drain(self) -> None:
        while self._queue:
            due, frames, frames_nbytes, written = self._queue[0]
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._queue.popleft()
            stream = self.stream
            if stream is None:
                self._queue.clear()
                return
            try:
                for nbytes, frame in zip(frames_nbytes, frames):
                    if nbytes:
                        stream.write(ensure_memoryview(frame))
                RECORDS.append((self.delay, written, due, time.monotonic()))
            except StreamClosedError as exc:
                self.stream = None
                self._closed = True
                self._queue.clear()
                try:
                    convert_stream_closed_error(self, exc)
                except CommClosedError:
                    return

    async def close(self):
        # a message written before close still leaves, one delay later (as on a real link)
        drainer = self._drainer
        if drainer is not None and not drainer.done():
            await asyncio.wait([drainer])
        await super().close()

    def abort(self) -> None:
        self._queue.clear()
        if self._drainer is not None and not self._drainer.done():
            self._drainer.cancel()
        super().abort()


class DelayedTCPConnector(TCPConnector):
    prefix = f"{SCHEME}://"
    comm_class = DelayedTCP


class DelayedTCPListener(TCPListener):
    prefix = f"{SCHEME}://"
    comm_class = DelayedTCP


class DelayedTCPBackend(TCPBackend):
    """The ``delaytcp://`` backend (entry point ``distributed.comm.backends: delaytcp``)."""

    _connector_class = DelayedTCPConnector
    _listener_class = DelayedTCPListener

"""A minimal local HTTP/1.1 server with scripted behaviour, for testing and calibrating the load generator.

It answers every ``GET`` after an optional delay, can stall once (every
request in flight or arriving during the stall waits until it ends, like a
garbage-collection pause), and can fail or hang every n-th request. It is
written on raw asyncio so that it stays cheaper than the client it measures:
the generator's own ceiling (``python -m stockdag.lab.bench.localserver``, then
``stockdag bench URL --users 64``) is then the client's, not the server's.

Run it in a thread of the calling process (:class:`LocalServer` as a context
manager) or as its own process (``python -m stockdag.lab.bench.localserver
--port 0`` prints ``port N`` when it listens).
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import threading
import time

_REASONS = {200: "OK", 404: "Not Found", 500: "Internal Server Error", 503: "Service Unavailable"}


class LocalServer:
    """Scripted HTTP server on 127.0.0.1.

    Parameters
    ----------
    delay : float
        Seconds every request waits before it is answered.
    stall_after, stall_for : float, optional
        Once ``stall_after`` seconds after the first request, stall the whole
        server for ``stall_for`` seconds.
    fail_every : int, optional
        Answer every n-th request (1-based, in arrival order) with HTTP 500.
    hang_every : int, optional
        Every n-th request waits ``hang_for`` seconds (checked before ``fail_every``).
    hang_for : float
        Seconds a hanging request waits.
    port : int
        0 picks a free port.
    """

    def __init__(self, delay: float = 0.0, *, stall_after: float | None = None, stall_for: float = 1.0,
                 fail_every: int | None = None, hang_every: int | None = None, hang_for: float = 5.0,
                 port: int = 0):
        self.delay = delay
        self.stall_after = stall_after
        self.stall_for = stall_for
        self.fail_every = fail_every
        self.hang_every = hang_every
        self.hang_for = hang_for
        self.port = port
        self.count = 0
        self._first: float | None = None
        self._stall_until: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    # -- behaviour
    async def _respond(self) -> tuple[int, bytes]:
        self.count += 1
        n = self.count
        now = time.monotonic()
        if self._first is None:
            self._first = now
        if self.stall_after is not None and self._stall_until is None and now - self._first >= self.stall_after:
            self._stall_until = now + self.stall_for
        wait = self.delay
        if self._stall_until is not None and now < self._stall_until:
            wait = max(wait, self._stall_until - now)
        if self.hang_every and n % self.hang_every == 0:
            wait = max(wait, self.hang_for)
        if wait > 0:
            await asyncio.sleep(wait)
        if self.fail_every and n % self.fail_every == 0 and not (self.hang_every and n % self.hang_every == 0):
            return 500, b'{"error": "scripted failure"}'
        return 200, b'{"ok": true}'

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                if length:
                    await reader.readexactly(length)
                status, body = await self._respond()
                writer.write(b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                             % (status, _REASONS[status].encode(), len(body), body))
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass  # the client closed the connection (e.g. after its timeout)
        finally:
            writer.close()

    # -- lifecycle
    async def start(self) -> None:
        """Listen on the running loop (for use inside async code)."""
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def _thread_main(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self.start())
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self.stop())
        # finish the connection handlers (a hanging request may still sleep) before the loop closes
        pending = asyncio.all_tasks(self._loop)
        for task in pending:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.close()

    def __enter__(self) -> LocalServer:
        self._thread = threading.Thread(target=self._thread_main, name="stockdag-localserver", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m stockdag.lab.bench.localserver",
                                description="A trivial local HTTP server for calibrating `stockdag bench`.")
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0 picks a free one)")
    p.add_argument("--delay", type=float, default=0.0, help="seconds each request waits (default 0)")
    args = p.parse_args(argv)

    async def serve():
        server = LocalServer(args.delay, port=args.port)
        await server.start()
        print(f"port {server.port}", flush=True)
        await asyncio.Event().wait()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""The HTTP prediction service (``stockdag serve``): FastAPI on uvicorn.

:func:`create_app` builds the ASGI app for one mode (``centralized``,
``replicated`` or ``distributed``, see :mod:`stockdag.serve.backends`);
:func:`serve` runs it in the foreground; :class:`ServerThread` runs it in a
background thread on a free loopback port (tests, notebooks, the bench app).
"""
from __future__ import annotations

import socket
import threading

import uvicorn

from .. import config
from .app import create_app
from .backends import BACKENDS, Backend, BackendUnavailable

__all__ = ["create_app", "serve", "ServerThread", "BACKENDS", "Backend", "BackendUnavailable"]


def serve(app=None, *, host: str | None = None, port: int | None = None, log_level: str = "warning", **app_kwargs) -> None:
    """Run the service until interrupted (``host``/``port`` default to ``stockdag.serve.host``/``port``)."""
    app = app if app is not None else create_app(**app_kwargs)
    uvicorn.run(app, host=config.get("serve.host", host), port=int(config.get("serve.port", port)),
                log_level=log_level, timeout_graceful_shutdown=5)


class ServerThread:
    """Run an ASGI app with uvicorn in a daemon thread, on 127.0.0.1 and a free port.

    Use as a context manager; ``url`` is the base URL once entered.
    Startup errors (a backend that cannot start) re-raise on entering.
    """

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning"):
        self.app = app
        # bound here, so the port is known before uvicorn starts and no other process can take it. The protocol
        # must be named: asyncio turns Nagle's algorithm off (TCP_NODELAY) only on sockets whose proto is
        # IPPROTO_TCP, and a connection accepted from a proto-0 socket kept it on, so a response written in
        # two pieces (headers, body) waited for the client's delayed ACK: ~40 ms on a kept-alive connection,
        # added to every latency the sweep measured (what `uvicorn.run`, binding by itself, never did)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.host, self.port = self._sock.getsockname()[:2]
        self.server = uvicorn.Server(uvicorn.Config(app, log_level=log_level, lifespan="on",
                                                    timeout_graceful_shutdown=5))
        self._thread = threading.Thread(target=self._run, name="stockdag-serve", daemon=True)
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _run(self) -> None:
        try:
            self.server.run(sockets=[self._sock])
        except BaseException as exc:
            self._error = exc

    def __enter__(self) -> ServerThread:
        from ..run.isolated import ctrl_c_left_to_this_process

        try:
            with ctrl_c_left_to_this_process():  # the backend's processes (replicas, Dask workers) start from this thread
                self._thread.start()
            while not self.server.started and self._thread.is_alive():
                self._thread.join(0.05)
        except BaseException:  # Ctrl-C while the backend starts: no `with` holds this server yet to stop it
            self.__exit__()
            raise
        if not self.server.started:
            self._sock.close()
            raise RuntimeError(f"the server did not start: {self._error!r}") from self._error
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self._thread.join(30)
        self._sock.close()

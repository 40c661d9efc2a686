"""``stockdag webapp``: a Bokeh server app that load-tests any server URL and shows latency and throughput live.

It drives the :mod:`stockdag.lab.bench` load generator (no second
implementation). Its data model is one module a concern: :mod:`.form` (form
checks), :mod:`.probe` (what is at a URL), :mod:`.live` (the background run),
:mod:`.stats` (live statistics), :mod:`.store` (the run store), :mod:`.charts`
(chart columns); :mod:`stockdag.lab.webapp.app` is the Bokeh document. :func:`make_server` builds the Bokeh server with two more
routes, ``/runs/<id>.csv`` (the raw per-request records) and
``/runs/<id>.json`` (summary and run facts); :func:`serve` runs it in the
foreground and :class:`WebAppThread` in a background thread (tests).
"""
from __future__ import annotations

import socket
import threading

from .form import FormError, parse_form
from .live import LiveRun
from .stats import LiveStats
from .store import RunStore

__all__ = ["make_server", "serve", "WebAppThread", "FormError", "LiveRun", "LiveStats", "RunStore", "parse_form"]


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def make_server(*, host: str | None = None, port: int | None = None, store=None, url: str | None = None, io_loop=None):
    """A started-but-not-running ``bokeh.server.server.Server`` serving the app at ``/``.

    Every argument defaults to ``stockdag.lab.webapp.<name>``; ``port=0`` picks a
    free port; ``store`` is a folder or a :class:`RunStore`.
    """
    from bokeh.application import Application
    from bokeh.application.handlers import FunctionHandler
    from bokeh.server.server import Server
    from tornado import web

    from ... import config
    from .app import LoadTestPage

    host = config.get("webapp.host", host)
    port = int(config.get("webapp.port", port))
    if port == 0:
        port = _free_port(host)
    run_store = store if isinstance(store, RunStore) else RunStore(store)
    default_url = config.get("webapp.url", url)

    def make_document(doc):
        LoadTestPage(doc, run_store, default_url)

    class RunFile(web.RequestHandler):
        def get(self, run_id: str, ext: str):
            if not run_store.valid(run_id):
                raise web.HTTPError(404, f"no stored run {run_id!r}")
            folder = run_store.folder / run_id
            if ext == "csv":
                self.set_header("Content-Type", "text/csv; charset=utf-8")
                self.set_header("Content-Disposition", f'attachment; filename="stockdag-{run_id}.csv"')
                self.write((folder / "records.csv").read_bytes())
            else:
                self.set_header("Content-Type", "application/json")
                self.write((folder / "run.json").read_bytes())

    origins = [f"{host}:{port}", f"localhost:{port}", f"127.0.0.1:{port}"]
    kwargs = {} if io_loop is None else {"io_loop": io_loop}
    server = Server({"/": Application(FunctionHandler(make_document))}, address=host, port=port,
                    allow_websocket_origin=origins, extra_patterns=[(r"/runs/([0-9a-f-]+)\.(csv|json)", RunFile)],
                    **kwargs)
    server.store = run_store
    return server


def serve(**kwargs) -> None:
    """Run the web app until interrupted (see :func:`make_server` for the arguments)."""
    server = make_server(**kwargs)
    server.start()
    server.io_loop.start()


class WebAppThread:
    """Run the web app in a daemon thread (its own event loop) on 127.0.0.1 and a free port.

    Use as a context manager; ``url`` is the page's address once entered.
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("host", "127.0.0.1")
        kwargs.setdefault("port", 0)
        self.kwargs = kwargs
        self.server = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="stockdag-webapp", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.server.address or '127.0.0.1'}:{self.server.port}/"

    def _run(self) -> None:
        import asyncio

        from tornado.ioloop import IOLoop

        asyncio.set_event_loop(asyncio.new_event_loop())
        loop = IOLoop.current()
        try:
            self.server = make_server(io_loop=loop, **self.kwargs)
            self.server.start()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        loop.start()
        self.server.stop()
        loop.close(all_fds=True)

    def __enter__(self) -> WebAppThread:
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None or self.server is None:
            raise RuntimeError(f"the web app did not start: {self._error!r}") from self._error
        return self

    def __exit__(self, *exc) -> None:
        loop = self.server.io_loop
        loop.add_callback(loop.stop)
        self._thread.join(30)

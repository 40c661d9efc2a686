"""The live run: :class:`LiveRun` drives the :mod:`stockdag.lab.bench` load generator (``arun`` with a
``LoadRun`` it can watch: schedule, requests, records) on an event loop of its own, in a background
thread, so the Bokeh event loop never blocks; it can be stopped, and its records grow while it runs."""
from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from ... import __version__, config
from ..bench import BenchConfig, BenchResult, RequestMix
from ..bench.loadgen import LoadRun, arun
from .probe import Target, probe
from .store import RunStore


class LiveRun:
    """One load-generator run in a background thread, observable while it runs.

    ``state`` goes ``probing -> running -> done | stopped``, or ``failed``
    (unreachable URL, bad mix) with the reason in ``message``. ``rows``
    grows as requests complete (tuples in :data:`RECORD_COLUMNS` order);
    ``result`` and ``run_id`` are set when it ended and was stored.
    ``on_end`` is called from the background thread when it ends (the page
    hands it to ``doc.add_next_tick_callback``).

    Stopping cancels the requests in flight: they are left out of the
    records, and the measured duration is the time until the stop.
    """

    def __init__(self, params: dict, store: RunStore | None = None, on_end: Callable[[], None] | None = None):
        self.params = params
        self.store = store
        self.on_end = on_end
        self.state = "probing"
        self.message = f"checking {params['bench']['url']} ..."
        self.target: Target | None = None
        self.cfg: BenchConfig | None = None
        self.result: BenchResult | None = None
        self.run_id: str | None = None
        self.meta: dict = {}
        self._run: LoadRun | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._stop_requested = False
        self._thread = threading.Thread(target=self._main, name="stockdag-webapp-run", daemon=True)

    # -- control (any thread)
    def start(self) -> LiveRun:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the run to stop (returns at once; ``state`` becomes ``stopped`` when it has)."""
        self._stop_requested = True
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            loop.call_soon_threadsafe(stop.set)

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    @property
    def active(self) -> bool:
        return self.state in ("probing", "running")

    @property
    def rows(self) -> list[tuple]:
        run = self._run
        return run.rows if run is not None else []

    @property
    def elapsed(self) -> float:
        run = self._run
        # t0 is on the run's event-loop clock, which is time.monotonic() for the default loop
        return time.monotonic() - run.t0 if run is not None and run.t0 else 0.0

    # -- the thread
    def _main(self) -> None:
        try:
            asyncio.run(self._amain())
        except Exception as exc:
            self.state, self.message = "failed", f"the run failed: {type(exc).__name__}: {exc}"
        finally:
            if self.on_end is not None:
                self.on_end()

    async def _amain(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        b = self.params["bench"]
        self.target = target = await probe(b["url"], min(float(b["timeout"]), 5.0))
        if not target.reachable:
            self.state, self.message = "failed", target.message
            return
        if self._stop_requested:
            self.state, self.message = "stopped", "stopped before the first request"
            return
        mix = None
        if target.symbols:
            try:
                mix = RequestMix(self.params["symbols"] or target.symbols, **self.params["mix"])
            except ValueError as exc:
                self.state, self.message = "failed", f"request mix: {exc}"
                return
        extra = {"label": self.label(),
                 "mix": None if mix is None else {"distribution": mix.distribution, "symbols": list(mix.symbols),
                                                  "start": mix.start, "end": mix.end, "seed": mix.seed}}
        self.cfg = cfg = BenchConfig(mix=mix, extra=extra, connections=int(config.get("bench.connections")), **b)
        self._run = LoadRun(cfg)
        self.state = "running"
        self.message = f"running against {target.describe()}"
        self.result = await arun(cfg, state=self._run, stop=self._stop)
        started = self.result.summary.started
        stopped = "stopped_after" in self.result.summary.extra
        self.state = "stopped" if stopped else "done"
        self.meta = {
            "label": self.label(), "url": cfg.url, "started": started, "stopped": stopped,
            "health": target.health, "form": self.params, "stockdag": __version__,
            "machine": {"cores": os.cpu_count()},
        }
        if self.store is not None:
            self.run_id = self.store.save(self.result, self.meta)
        s = self.result.summary
        cancelled = s.errors.get("cancelled", 0)
        self.message = (f"{'stopped' if stopped else 'finished'}: {s.requests} requests, {s.ok} ok, "
                        f"{sum(s.errors.values()) - cancelled} errors"
                        + (f", {cancelled} in flight at the stop (recorded as cancelled)" if cancelled else ""))

    def label(self) -> str:
        if self.params.get("label"):
            return self.params["label"]
        h = self.target.health if self.target is not None else None
        b = self.params["bench"]
        load = f"{b['rate']:g} req/s" if b.get("rate") is not None else f"{b['users']} users"
        if h and h.get("service") == "stockdag":
            who = h.get("mode") or "stockdag"
            if h.get("strategy"):
                who += f"/{h['strategy']}"
            if h.get("workers"):
                who += f" x{h['workers']}"
        else:
            who = urlsplit(b["url"]).netloc
        return f"{who}, {load}"

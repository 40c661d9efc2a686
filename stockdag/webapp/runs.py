"""The web app's data model, without Bokeh: form checking, the live run, live statistics, the run store.

:func:`parse_form`
    turns the form's values into keyword arguments of
    :class:`~stockdag.bench.BenchConfig` plus the request mix, or raises
    :class:`FormError` with one line a person can act on.
:func:`probe`
    tells an unreachable URL from a reachable one, and a stockdag server (its
    ``/health`` and symbols) from any other URL.
:class:`LiveRun`
    drives the :mod:`stockdag.bench` load generator (``arun`` with a ``LoadRun`` it can watch:
    schedule, requests, records) on an event loop of its own, in a background
    thread, so the Bokeh event loop never blocks; it can be stopped, and its
    records grow while it runs.
:class:`LiveStats`
    consumes the records incrementally: what the page plots and tabulates.
:class:`RunStore`
    keeps finished runs on disk (raw records CSV and summary JSON, one folder
    a run) so the comparison view survives page reloads and server restarts.

Extend by adding a field to the form (:func:`parse_form`), a statistic to
:class:`LiveStats`, or a key to the ``meta`` that :meth:`RunStore.save` writes.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
import os
import re
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

import aiohttp
import numpy as np
import pandas as pd

from .. import __version__, config
from ..bench import RECORD_COLUMNS, BenchConfig, BenchResult, RequestMix, probe_stockdag, write_records
from ..bench.loadgen import LoadRun, arun
from ..bench.summary import histogram, percentiles
from ..pipeline import order_stage_ids

#: record column positions (rows are tuples in :data:`RECORD_COLUMNS` order)
COL = {name: i for i, name in enumerate(RECORD_COLUMNS)}
#: the percentiles the page's table shows (keys of :func:`stockdag.bench.percentiles`)
TABLE_PERCENTILES = ("p50", "p90", "p99", "max")
_RUN_ID = re.compile(r"^[0-9]{8}-[0-9]{6}-[0-9a-f]{6}$")


class FormError(ValueError):
    """A form value the app cannot use; the message names the field and what it accepts."""


# ---------------------------------------------------------------------- form
def _number(values: dict, key: str, label: str, *, integer: bool = False, minimum: float | None = None,
            above: float | None = None, maximum: float | None = None, required: bool = True):
    raw = values.get(key)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        if required:
            raise FormError(f"{label}: enter a number")
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise FormError(f"{label}: {raw!r} is not a number") from None
    if not math.isfinite(value):
        raise FormError(f"{label}: {raw!r} is not a finite number")
    if integer:
        if value != int(value):
            raise FormError(f"{label}: {raw!r} is not a whole number")
        value = int(value)
    if minimum is not None and value < minimum:
        raise FormError(f"{label} must be at least {minimum:g} (got {value:g})")
    if above is not None and value <= above:
        raise FormError(f"{label} must be more than {above:g} (got {value:g})")
    if maximum is not None and value > maximum:
        raise FormError(f"{label} must be at most {maximum:g} (got {value:g})")
    return value


def parse_url(url: str | None) -> str:
    """A cleaned ``http(s)://host[:port][/path]`` URL, or :class:`FormError`."""
    url = (url or "").strip()
    if not url:
        raise FormError("server URL: enter the URL of the server to measure, e.g. http://127.0.0.1:8000")
    if "://" not in url:
        url = "http://" + url
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise FormError(f"server URL: {url!r} is not an http:// or https:// URL")
    try:
        port = parts.port
    except ValueError:
        raise FormError(f"server URL: {url!r} has an invalid port") from None
    if not parts.hostname:
        raise FormError(f"server URL: {url!r} names no host")
    del port
    return url


def parse_form(values: dict) -> dict:
    """Check the form and return the run's parameters.

    ``values`` holds strings or numbers under ``url, loop ("open"|"closed"),
    rate, users, arrivals, duration, warmup, timeout, distribution, symbols
    (comma- or space-separated, blank: all the server lists), start, end,
    seed, label``. Returns ``{"bench": BenchConfig keyword arguments without
    mix, "mix": RequestMix keyword arguments without symbols, "symbols": list
    or None, "label": str}``.

    Raises
    ------
    FormError
        naming the first bad field.
    """
    url = parse_url(values.get("url"))
    loop = values.get("loop", "open")
    if loop not in ("open", "closed"):
        raise FormError(f"load: choose open loop (rate) or closed loop (users), not {loop!r}")
    max_duration = float(config.get("webapp.max_duration"))
    bench = {
        "url": url,
        "duration": _number(values, "duration", "duration (s)", above=0, maximum=max_duration),
        "warmup": _number(values, "warmup", "warm-up (s)", minimum=0, maximum=max_duration, required=False) or 0.0,
        "timeout": _number(values, "timeout", "timeout (s)", above=0, maximum=3600),
        "seed": _number(values, "seed", "seed", integer=True, minimum=0, required=False) or 0,
    }
    if loop == "open":
        bench["rate"] = _number(values, "rate", "rate (requests/s)", above=0, maximum=100_000)
        arrivals = values.get("arrivals") or "constant"
        if arrivals not in ("constant", "poisson"):
            raise FormError(f"arrivals: choose constant or poisson, not {arrivals!r}")
        bench["arrivals"] = arrivals
    else:
        bench["users"] = _number(values, "users", "users", integer=True, minimum=1, maximum=10_000)
    distribution = values.get("distribution") or "uniform"
    if distribution not in ("uniform", "zipf"):
        raise FormError(f"request mix: choose uniform or zipf, not {distribution!r}")
    dates = {}
    for key in ("start", "end"):
        raw = str(values.get(key) or "").strip()
        try:
            dates[key] = dt.date.fromisoformat(raw).isoformat()
        except ValueError:
            raise FormError(f"as-of {key} date: {raw!r} is not a date like 2012-06-01") from None
    if dates["start"] > dates["end"]:
        raise FormError(f"as-of dates: start {dates['start']} is after end {dates['end']}")
    symbols = [s.upper() for s in re.split(r"[\s,;]+", str(values.get("symbols") or "")) if s]
    for s in symbols:
        if not re.fullmatch(r"[A-Z0-9.\-^=]{1,15}", s):
            raise FormError(f"symbols: {s!r} is not a ticker symbol")
    return {
        "bench": bench,
        "mix": {"start": dates["start"], "end": dates["end"], "distribution": distribution,
                "s": float(config.get("bench.zipf_s")), "seed": bench["seed"]},
        "symbols": symbols or None,
        "label": str(values.get("label") or "").strip(),
    }


# ---------------------------------------------------------------------- probe
@dataclass
class Target:
    """What :func:`probe` found at a URL."""

    url: str
    reachable: bool
    message: str
    health: dict | None = None
    symbols: list[str] | None = None

    @property
    def stockdag(self) -> bool:
        return bool(self.health) and self.health.get("service") == "stockdag"

    def describe(self) -> str:
        """One line for the page."""
        if not self.reachable:
            return self.message
        if not self.stockdag:
            return f"{self.url} answers ({self.message}); not a stockdag server: it will be requested as given"
        h = self.health
        parts = [f"stockdag {h.get('mode')} server", f"{h.get('workers')} worker(s)"]
        if h.get("strategy"):
            parts.append(f"placement {h['strategy']}")
        parts.append(f"profile {h.get('profile')}")
        if self.symbols:
            parts.append(f"symbols {', '.join(self.symbols)}")
        return ", ".join(parts)


def _base(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.path not in ("", "/") or parts.query:
        return None
    return f"{parts.scheme}://{parts.netloc}"


async def probe(url: str, timeout: float = 5.0) -> Target:
    """Is ``url`` reachable, and is it a stockdag server (then its health and symbols)?"""
    base = _base(url)
    target = base + "/health" if base else url
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as s:
            async with s.get(target) as r:
                status = r.status
                body = await r.read()
    except aiohttp.InvalidURL:
        return Target(url, False, f"cannot use {url!r}: not a valid URL")
    except aiohttp.ClientConnectorError as exc:
        reason = exc.os_error.strerror if exc.os_error is not None and exc.os_error.strerror else str(exc)
        return Target(url, False, f"cannot reach {url}: {reason.lower()} (is the server running?)")
    except asyncio.TimeoutError:
        return Target(url, False, f"cannot reach {url}: no answer within {timeout:g} s")
    except (aiohttp.ClientError, OSError) as exc:
        return Target(url, False, f"cannot reach {url}: {type(exc).__name__}: {exc}")
    health = None
    if base and status == 200:
        try:
            health = json.loads(body)
        except ValueError:
            health = None
        if not isinstance(health, dict):
            health = None
    symbols = await probe_stockdag(url, timeout) if health and health.get("service") == "stockdag" else None
    return Target(url, True, f"HTTP {status}", health, symbols)


# ---------------------------------------------------------------------- live run
def _stamp() -> str:
    return dt.datetime.now().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


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

    def __init__(self, params: dict, store: "RunStore | None" = None, on_end: Callable[[], None] | None = None):
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
    def start(self) -> "LiveRun":
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
        except Exception as exc:  # noqa: BLE001  (shown on the page instead of dying silently in a thread)
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


# ---------------------------------------------------------------------- live statistics
STATUS_COLORS = {"2xx": "#2ca02c", "3xx": "#1f77b4", "4xx": "#ff7f0e", "5xx": "#d62728", "none": "#444444"}


def outcome(status: int, error: str) -> tuple[str, str]:
    """(legend label, colour) of one request: its HTTP status, or the error kind when there was no response."""
    if not status:
        return (error or "no response"), STATUS_COLORS["none"]
    cls = f"{int(status) // 100}xx"
    return str(int(status)), STATUS_COLORS.get(cls, STATUS_COLORS["none"])


def parse_trace(trace) -> list[dict]:
    """The stage records of one response's trace (``[]`` when it has none)."""
    if trace is None or (isinstance(trace, float) and math.isnan(trace)) or trace == "":
        return []
    items = json.loads(trace) if isinstance(trace, str) else trace
    return [t for t in items or () if isinstance(t, dict) and "id" in t]


def gantt(trace) -> dict[str, list]:
    """Columns of a Gantt chart of one request: stage id, name, worker, start/end in ms from its first stage."""
    items = parse_trace(trace)
    if not items:
        return {"id": [], "stage": [], "worker": [], "left": [], "right": [], "ms": []}
    t0 = min(float(t["start"]) for t in items)
    items = sorted(items, key=lambda t: (float(t["start"]), t["id"]))
    return {
        "id": [t["id"] for t in items],
        "stage": [t.get("stage", "") for t in items],
        "worker": [str(t.get("worker", "")) for t in items],
        "left": [1e3 * (float(t["start"]) - t0) for t in items],
        "right": [1e3 * (float(t["end"]) - t0) for t in items],
        "ms": [1e3 * (float(t["end"]) - float(t["start"])) for t in items],
    }


class LiveStats:
    """Running statistics of one run's records, fed incrementally with :meth:`add`.

    Counts, errors and percentiles cover the measured requests (not the
    warm-up), as :func:`stockdag.bench.summarize` does, so the live table ends
    equal to the run's summary. Percentiles come from the same HDR histogram.
    """

    def __init__(self, warmup: float = 0.0, bin_seconds: float = 1.0):
        self.warmup = warmup
        self.bin = bin_seconds
        self.seen = 0
        self.requests = 0
        self.ok = 0
        self.errors: Counter[str] = Counter()
        self.statuses: Counter[str] = Counter()
        self.ok_latencies: list[float] = []
        self._hdr = histogram(())
        self._hdr_all = histogram(())  # every measured request: failures and stopped ones too
        self._offered: Counter[int] = Counter()
        self._achieved: Counter[int] = Counter()
        self._stage_sum: dict[str, float] = {}
        self._stage_n: Counter[str] = Counter()
        self._stage_name: dict[str, str] = {}
        self.last_trace = None
        self.last_trace_index: int | None = None

    def add(self, rows: list[tuple]) -> dict[str, list]:
        """Take in new rows; return the columns of the points to stream to the latency-over-time plot."""
        out = {"t": [], "latency_ms": [], "outcome": [], "color": [], "index": [], "warmup": []}
        for row in rows:
            i, intended, end = row[COL["index"]], row[COL["intended"]], row[COL["end"]]
            status, error, latency = row[COL["status"]], row[COL["error"]], row[COL["latency"]]
            warm = bool(row[COL["warmup"]])
            label, color = outcome(status, error)
            out["t"].append(float(intended))
            out["latency_ms"].append(1e3 * float(latency))
            out["outcome"].append(label)
            out["color"].append(color)
            out["index"].append(int(i))
            out["warmup"].append(warm)
            self._offered[int(intended // self.bin)] += 1
            if warm:
                continue
            self.requests += 1
            self.statuses[label] += 1
            self._hdr_all.record_value(min(max(int(round(latency * 1e6)), 1), 3_600_000_000))
            if error:
                self.errors[error] += 1
                continue
            self.ok += 1
            self._achieved[int(end // self.bin)] += 1
            self.ok_latencies.append(float(latency))
            self._hdr.record_value(min(max(int(round(latency * 1e6)), 1), 3_600_000_000))
            trace = row[COL["trace"]]
            if trace:
                for t in parse_trace(trace):
                    sid = t["id"]
                    self._stage_sum[sid] = self._stage_sum.get(sid, 0.0) + float(t["end"]) - float(t["start"])
                    self._stage_n[sid] += 1
                    self._stage_name[sid] = t.get("stage", "")
                self.last_trace, self.last_trace_index = trace, int(i)
        self.seen += len(rows)
        return out

    def percentiles(self) -> dict[str, float]:
        """p50/p90/p99/p99.9/max/mean in ms of the successful measured requests (HDR, as the summary)."""
        return percentiles(self._hdr)

    def percentiles_all(self) -> dict[str, float]:
        """The same over every measured request (a failure with the time it took), as ``summary.latency_all_ms``."""
        return percentiles(self._hdr_all)

    def histogram(self, bins: int | None = None) -> dict[str, list]:
        """Columns of a latency histogram (ms) of the successful measured requests.

        ``bins`` defaults to twice the square root of the count, between 5 and 40.
        """
        if not self.ok_latencies:
            return {"left": [], "right": [], "count": []}
        ms = 1e3 * np.asarray(self.ok_latencies)
        if bins is None:
            bins = int(min(40, max(5, 2 * math.sqrt(len(ms)))))
        hi = float(np.percentile(ms, 99.5)) if len(ms) > 50 else float(ms.max())
        lo = float(ms.min())
        if hi <= lo:
            hi = lo + 1.0
        counts, edges = np.histogram(np.clip(ms, lo, hi), bins=bins, range=(lo, hi))
        return {"left": edges[:-1].tolist(), "right": edges[1:].tolist(), "count": counts.tolist()}

    def throughput(self, until: float | None = None) -> dict[str, list]:
        """Columns of offered (by intended send time) and achieved (ok responses by end time) requests/s per bin.

        ``until`` (seconds since the start) drops the bin still being filled.
        """
        keys = set(self._offered) | set(self._achieved)
        if not keys:
            return {"t": [], "offered": [], "achieved": []}
        last = max(keys) if until is None else min(max(keys), int(until // self.bin) - 1)
        ts = list(range(0, last + 1))
        return {"t": [(k + 0.5) * self.bin for k in ts],
                "offered": [self._offered.get(k, 0) / self.bin for k in ts],
                "achieved": [self._achieved.get(k, 0) / self.bin for k in ts]}

    def stage_means(self) -> dict[str, list]:
        """Columns of the mean time (ms) per stage over the traced successful requests, in their pipeline's table order."""
        ids = order_stage_ids(self._stage_n)
        return {"id": ids, "stage": [self._stage_name.get(s, "") for s in ids],
                "ms": [1e3 * self._stage_sum[s] / self._stage_n[s] for s in ids],
                "n": [self._stage_n[s] for s in ids]}


# ---------------------------------------------------------------------- store
def latency_cdf(records: pd.DataFrame, points: int = 400) -> tuple[list[float], list[float]]:
    """(latency ms, percentile) of the successful measured requests, at most ``points`` points."""
    m = records[~records["warmup"].astype(bool)]
    ms = np.sort(1e3 * m.loc[m["error"].fillna("") == "", "latency"].to_numpy(dtype=float))
    if not len(ms):
        return [], []
    pct = 100.0 * np.arange(1, len(ms) + 1) / len(ms)
    if len(ms) > points:
        pick = np.unique(np.linspace(0, len(ms) - 1, points).round().astype(int))
        ms, pct = ms[pick], pct[pick]
    return ms.tolist(), pct.tolist()


def throughput_series(records: pd.DataFrame, bin_seconds: float = 1.0) -> tuple[list[float], list[float]]:
    """(t, ok responses/s) per bin of the measured requests' end times."""
    m = records[~records["warmup"].astype(bool)]
    ends = m.loc[m["error"].fillna("") == "", "end"].to_numpy(dtype=float)
    if not len(ends):
        return [], []
    counts = np.bincount((ends // bin_seconds).astype(int))
    return ((np.arange(len(counts)) + 0.5) * bin_seconds).tolist(), (counts / bin_seconds).tolist()


class RunStore:
    """Finished runs on disk: ``<folder>/<run id>/records.csv`` and ``run.json`` (summary and meta).

    ``folder`` defaults to ``stockdag.webapp.store`` or ``~/.cache/stockdag/webapp``.
    Run ids sort by start time.
    """

    def __init__(self, folder: str | os.PathLike | None = None):
        folder = config.get("webapp.store", folder)
        self.folder = Path(folder).expanduser() if folder else Path.home() / ".cache" / "stockdag" / "webapp"
        self._lock = threading.Lock()
        self._records: dict[str, pd.DataFrame] = {}

    def save(self, result: BenchResult, meta: dict) -> str:
        run_id = _stamp()
        path = self.folder / run_id
        path.mkdir(parents=True, exist_ok=True)
        write_records(result.records, str(path / "records.csv"))
        doc = {"id": run_id, "meta": meta, "summary": result.summary.to_dict()}
        tmp = path / "run.json.tmp"
        tmp.write_text(json.dumps(doc, indent=1, default=str))
        tmp.replace(path / "run.json")  # a listing never sees a half-written run
        return run_id

    def valid(self, run_id: str) -> bool:
        return bool(_RUN_ID.match(run_id)) and (self.folder / run_id / "run.json").is_file()

    def list(self) -> list[dict]:
        """Every stored run's ``run.json`` content, oldest first."""
        if not self.folder.is_dir():
            return []
        out = []
        for p in sorted(self.folder.iterdir()):
            f = p / "run.json"
            if _RUN_ID.match(p.name) and f.is_file():
                try:
                    out.append(json.loads(f.read_text()))
                except ValueError:
                    continue  # a damaged file: leave it out of the listing rather than break the page
        return out

    def csv_path(self, run_id: str) -> Path:
        if not self.valid(run_id):
            raise KeyError(run_id)
        return self.folder / run_id / "records.csv"

    def records(self, run_id: str) -> pd.DataFrame:
        with self._lock:
            df = self._records.get(run_id)
        if df is None:
            df = pd.read_csv(self.csv_path(run_id), keep_default_na=False, na_values={"latency": [""]})
            with self._lock:
                self._records[run_id] = df
        return df

    def delete(self, run_id: str) -> None:
        path = self.csv_path(run_id).parent
        for f in path.iterdir():
            f.unlink()
        path.rmdir()
        with self._lock:
            self._records.pop(run_id, None)

"""The load generator: open loop (constant or Poisson arrivals) and closed loop, on one asyncio event loop.

Open loop
    Request ``i`` has an *intended* send time fixed in advance by the
    schedule; its latency is counted from that time, not from when it was
    actually sent. A server that stalls for a second therefore shows a
    second's worth of requests with latencies from 1 s down to 0, exactly as
    users arriving at that rate would see it (wrk2's correction for
    *coordinated omission*).
Closed loop
    ``users`` coroutines each send the next request when the last returns.
    The client slows down with the server, so a stall delays only the one
    request each user had in flight: closed-loop percentiles hide stalls,
    which is why open loop is the default for latency claims.

Every request is recorded, including warm-up ones (flagged), errors and
timeouts; :func:`stockdag.lab.bench.summary.summarize` excludes the warm-up.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import sys
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import aiohttp
import numpy as np
import pandas as pd

from .mix import RequestMix
from .summary import RECORD_COLUMNS, Summary, summarize
from .vocabulary import ARRIVALS, CLOSED, OPEN


@dataclass
class BenchConfig:
    """One benchmark run. Give exactly one of ``rate`` (open loop) and ``users`` (closed loop).

    Parameters
    ----------
    url : str
        Requested as given, unless ``mix`` is set: then ``mix`` paths are
        appended to the URL's scheme and host.
    rate : float, optional
        Open loop: target requests per second.
    users : int, optional
        Closed loop: concurrent users.
    arrivals : {"constant", "poisson"}
        Open-loop inter-arrival times: fixed ``1/rate`` or exponential (seeded).
    duration : float
        Measured seconds after the warm-up (ignored when ``requests`` is set).
    requests : int, optional
        Measured requests to send instead of a duration.
    min_requests : int, optional
        With ``duration``: keep sending past the duration until this many
        measured requests were sent (a point needs enough samples).
    warmup : float
        Seconds of requests sent first and excluded from the summary.
    timeout : float
        Per-request timeout in seconds, from the actual send time.
    connections : int
        Open loop: most connections kept open at once (closed loop uses ``users``).
    mix : RequestMix, optional
    seed : int
        Seeds Poisson arrivals.
    progress : bool
        Show a progress bar (tqdm, on stderr).
    """

    url: str
    rate: float | None = None
    users: int | None = None
    arrivals: str = "constant"
    duration: float = 10.0
    requests: int | None = None
    warmup: float = 0.0
    min_requests: int | None = None
    timeout: float = 10.0
    connections: int = 1000
    mix: RequestMix | None = None
    seed: int = 0
    progress: bool = False
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if (self.rate is None) == (self.users is None):
            raise ValueError("give exactly one of rate (open loop) and users (closed loop)")
        if self.rate is not None and self.rate <= 0:
            raise ValueError("rate must be > 0")
        if self.users is not None and self.users < 1:
            raise ValueError("users must be >= 1")
        if self.arrivals not in ARRIVALS:
            raise ValueError(f"unknown arrivals {self.arrivals!r}; choose one of: {', '.join(ARRIVALS)}")
        if self.requests is None and self.duration <= 0:
            raise ValueError("duration must be > 0")
        if self.requests is not None and self.requests < 1:
            raise ValueError("requests must be >= 1")
        if self.warmup < 0 or self.timeout <= 0:
            raise ValueError("warmup must be >= 0 and timeout > 0")

    @property
    def loop(self) -> str:
        return OPEN if self.rate is not None else CLOSED


@dataclass
class BenchResult:
    """Raw per-request records (one row a request, :data:`RECORD_COLUMNS`) and their summary."""

    records: pd.DataFrame
    summary: Summary

    def write(self, path: str) -> None:
        """Write the raw records to ``.parquet`` or ``.csv`` (chosen by the suffix)."""
        write_records(self.records, path)


def write_records(records: pd.DataFrame, path: str) -> None:
    """Write records to Parquet (``.parquet``/``.pq``) or CSV (``.csv``)."""
    low = str(path).lower()
    if low.endswith((".parquet", ".pq")):
        records.to_parquet(path, index=False)
    elif low.endswith(".csv"):
        records.to_csv(path, index=False)
    else:
        raise ValueError(f"cannot tell the format of {path!r}: use a .parquet or .csv file name")


def _error_kind(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "connect"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "disconnected"
    return type(exc).__name__


def intended_times(cfg: BenchConfig):
    """Open loop: the intended send time of every request (seconds from the start), in order.

    Constant arrivals are ``i / rate``; Poisson arrivals have exponential gaps
    drawn from ``cfg.seed``. The schedule ends at ``warmup + duration``, or once
    ``requests`` measured (post-warm-up) times were given; a duration-bound
    schedule also runs until ``min_requests`` measured times. The load generator
    and the simulator (:mod:`stockdag.lab.simulate`) both draw from here.
    """
    rng = np.random.default_rng(cfg.seed)
    interval = 1.0 / cfg.rate
    end = cfg.warmup + cfg.duration
    i, t, measured = 0, 0.0, 0
    while True:
        if cfg.requests is not None:
            if t >= cfg.warmup and measured >= cfg.requests:
                return
        elif t >= end and measured >= (cfg.min_requests or 0):
            return
        yield t
        if t >= cfg.warmup:
            measured += 1
        i += 1
        # i * interval, not a running sum: summed floats drift and add or drop a request at the end
        t = i * interval if cfg.arrivals == "constant" else t + float(rng.exponential(interval))


class LoadRun:
    """The state of one run: schedule and records (``rows`` grows while it runs, so a live view can read it).

    Times are read from the running event loop's clock (``loop.time()``), so
    the scheduling logic runs unchanged on a virtual clock in tests; extend by
    overriding :meth:`fetch` (what one request does) rather than :meth:`one`.
    """

    def __init__(self, cfg: BenchConfig):
        self.cfg = cfg
        parts = urlsplit(cfg.url)
        self.base = f"{parts.scheme}://{parts.netloc}" if cfg.mix is not None else cfg.url.rstrip("?")
        self.rows: list[tuple] = []
        self.t0 = 0.0
        self.paths: list[str] = []
        self.measured_sent = 0
        self.done = 0
        self.tasks: set[asyncio.Task] = set()  # this run's requests in flight (open loop), and nothing else

    def path(self, i: int) -> str:
        if self.cfg.mix is None:
            return ""
        while i >= len(self.paths):  # draw in chunks: the draw stays off the per-request path
            self.paths.extend(self.cfg.mix.paths(4096))
        return self.paths[i]

    @staticmethod
    def clock() -> float:
        return asyncio.get_running_loop().time()

    async def fetch(self, session: aiohttp.ClientSession, url: str) -> tuple[int, bytes]:
        """Send one request; return (status, body). Raises on a connection failure."""
        async with session.get(url) as resp:
            return resp.status, await resp.read()

    async def one(self, session: aiohttp.ClientSession, i: int, intended: float) -> None:
        path = self.path(i)
        clock = self.clock
        sent = clock() - self.t0
        status, error, body = 0, "", b""
        try:
            async with asyncio.timeout(self.cfg.timeout):
                status, body = await self.fetch(session, self.base + path)
            end = clock() - self.t0  # before any decoding: the response has arrived
            if status >= 400:
                error = f"http_{status}"
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            end = clock() - self.t0
            error = _error_kind(exc)
        except asyncio.CancelledError:
            # stopped while in flight: recorded with the time it had waited so far (the slowest requests)
            end = clock() - self.t0
            self._record(i, path, intended, sent, end, 0, "cancelled", None)
            raise
        trace = cache = None
        if not error and b'"trace"' in body:
            # only stockdag predictions carry a trace; others skip the JSON parse
            try:
                answer = json.loads(body)
                trace = json.dumps(answer.get("trace"), separators=(",", ":"))
                # hit or miss per retriever: configurations are compared at the hit rates they had
                cache = json.dumps(answer["cache"], separators=(",", ":")) if answer.get("cache") else None
            except (ValueError, AttributeError):
                trace = cache = None
        self._record(i, path, intended, sent, end, status, error, trace, cache)

    def _record(self, i, path, intended, sent, end, status, error, trace, cache=None) -> None:
        self.rows.append((i, path, intended, sent, end, status, error, end - intended, end - sent,
                          intended < self.cfg.warmup, trace, cache))
        self.done += 1

    def schedule(self):
        """Intended send times (seconds from the start), in order, until the run's end."""
        return intended_times(self.cfg)

    async def open_loop(self, session: aiohttp.ClientSession) -> None:
        clock = self.clock
        try:
            for i, t in enumerate(self.schedule()):
                delay = self.t0 + t - clock()
                # when behind schedule, still yield so the requests already started can progress
                await asyncio.sleep(delay if delay > 0 else 0)
                task = asyncio.create_task(self.one(session, i, t))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
                if t >= self.cfg.warmup:
                    self.measured_sent += 1
            if self.tasks:
                await asyncio.gather(*self.tasks)
        except asyncio.CancelledError:
            for task in list(self.tasks):  # only this run's own requests
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
            raise

    async def closed_loop(self, session: aiohttp.ClientSession) -> None:
        cfg = self.cfg
        end = cfg.warmup + cfg.duration
        counter = iter(range(sys.maxsize))
        clock = self.clock

        async def user():
            while True:
                t = clock() - self.t0
                if cfg.requests is not None:
                    if t >= cfg.warmup:
                        if self.measured_sent >= cfg.requests:
                            return
                        self.measured_sent += 1
                elif t >= end and self.measured_sent >= (cfg.min_requests or 0):
                    return
                elif t >= cfg.warmup:
                    self.measured_sent += 1
                await self.one(session, next(counter), t)

        # cancelling the gather cancels every user, and each records its request in flight as cancelled
        await asyncio.gather(*(user() for _ in range(cfg.users)))

    async def progress(self, total: int | None) -> None:
        from tqdm import tqdm

        with tqdm(total=total, unit="req", file=sys.stderr, leave=False) as bar:
            try:
                while True:
                    await asyncio.sleep(0.25)
                    bar.update(self.done - bar.n)
            except asyncio.CancelledError:
                bar.update(self.done - bar.n)
                raise


async def arun(cfg: BenchConfig, *, state: LoadRun | None = None, stop: asyncio.Event | None = None) -> BenchResult:
    """Run one benchmark from async code.

    ``state`` lets a caller watch ``state.rows`` while the run goes on (the web
    app does); setting ``stop`` ends the run early: this run's requests in
    flight are cancelled and recorded with error ``cancelled`` and the time
    they had waited, and the measured window ends at the stop
    (``summary.extra["stopped_after"]``). Nothing else on the event loop is touched.
    """
    run = state if state is not None else LoadRun(cfg)
    limit = cfg.connections if cfg.loop == "open" else cfg.users
    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=0, ttl_dns_cache=300)
    # the per-request timeout is enforced in LoadRun.one (on the loop's clock), not by the session
    timeout = aiohttp.ClientTimeout(total=None)
    started = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
    stopped_after = None
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, raise_for_status=False,
                                     auto_decompress=False) as session:
        ticker = None
        if cfg.progress:
            total = None
            if cfg.requests is not None:
                total = cfg.requests
            elif cfg.rate is not None:
                total = int(cfg.rate * (cfg.warmup + cfg.duration))
            ticker = asyncio.create_task(run.progress(total))
        run.t0 = run.clock()
        try:
            work = asyncio.ensure_future(run.open_loop(session) if cfg.loop == "open" else run.closed_loop(session))
            if stop is None:
                await work
            else:
                waiter = asyncio.ensure_future(stop.wait())
                await asyncio.wait({work, waiter}, return_when=asyncio.FIRST_COMPLETED)
                if not work.done():
                    stopped_after = run.clock() - run.t0
                    work.cancel()
                    await asyncio.gather(work, return_exceptions=True)
                else:
                    work.result()  # re-raise a failure of the generator itself
                waiter.cancel()
                await asyncio.gather(waiter, return_exceptions=True)
        finally:
            if ticker is not None:
                ticker.cancel()
                await asyncio.gather(ticker, return_exceptions=True)
    return result_from(cfg, run.rows, started, stopped_after)


def result_from(cfg: BenchConfig, rows: list[tuple], started: str, stopped_after: float | None = None) -> BenchResult:
    """Records and their summary; a stopped run's measured window ends at the stop."""
    records = pd.DataFrame(list(rows), columns=list(RECORD_COLUMNS)).sort_values("index", ignore_index=True)
    measured = records[~records["warmup"].astype(bool)]
    if stopped_after is not None:
        duration = max(stopped_after - cfg.warmup, 1e-3)
    elif cfg.requests is None and not cfg.min_requests:
        duration = cfg.duration
    elif cfg.requests is None:  # ran past the duration until it had min_requests
        if cfg.loop == "open":
            duration = max(cfg.duration, len(measured) / cfg.rate)
        else:
            last = float(measured["intended"].max() - cfg.warmup) if len(measured) else 0.0
            duration = max(cfg.duration, last)
    elif cfg.loop == "open":
        duration = len(measured) / cfg.rate
    else:
        duration = float(measured["intended"].max() - cfg.warmup) if len(measured) > 1 else 0.0
    summary = summarize(records, url=cfg.url, loop=cfg.loop, rate=cfg.rate, users=cfg.users,
                        arrivals=cfg.arrivals if cfg.loop == "open" else None, duration=duration,
                        warmup=cfg.warmup, timeout=cfg.timeout, started=started)
    summary.extra.update(cfg.extra)
    if stopped_after is not None:
        summary.extra["stopped_after"] = stopped_after
    return BenchResult(records, summary)


def run(cfg: BenchConfig) -> BenchResult:
    """Run one benchmark on its own event loop.

    Called where a loop already runs in this thread (a Jupyter kernel, an
    async app), the benchmark runs on a fresh loop in a helper thread, so the
    generator's timing never depends on the caller's loop.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(arun(cfg))
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="stockdag-bench") as pool:
        return pool.submit(asyncio.run, arun(cfg)).result()


#: seconds a client waits beyond a stockdag server's deadline, so the server's own 504 arrives first
DEADLINE_GRACE = 5.0
#: per-request timeout when the server does not say its deadline (the sweep's default as well)
DEFAULT_TIMEOUT = 30.0


def default_timeout(health: dict | None) -> float:
    """A client timeout just past the server's deadline (its 504 says "overloaded"), else :data:`DEFAULT_TIMEOUT`."""
    deadline = (health or {}).get("deadline")
    if isinstance(deadline, (int, float)) and deadline > 0:
        return float(deadline) + DEADLINE_GRACE
    return DEFAULT_TIMEOUT


async def stockdag_health(url: str, timeout: float = 5.0) -> dict | None:
    """The ``/health`` answer of a stockdag server at base URL ``url`` (None for anything else)."""
    parts = urlsplit(url)
    if parts.path not in ("", "/") or parts.query:
        return None
    base = f"{parts.scheme}://{parts.netloc}"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as s:
        try:
            async with s.get(base + "/health") as r:
                health = await r.json(content_type=None) if r.status == 200 else None
        except (TimeoutError, aiohttp.ClientError, ValueError):
            return None
    return health if isinstance(health, dict) and health.get("service") == "stockdag" else None


async def probe_stockdag(url: str, timeout: float = 5.0) -> list[str] | dict[str, dict | None] | None:
    """If ``url`` is a stockdag server's base URL, return its symbols; else None.

    A server that reports each symbol's valid as-of range gives
    ``{symbol: {"first", "last"} | None}``, which :class:`RequestMix` takes as
    its symbols to draw only answerable requests by default.

    A base URL (no path) whose ``/health`` says ``"service": "stockdag"`` is a
    stockdag server; anything else is requested as given.
    """
    if await stockdag_health(url, timeout) is None:
        return None
    parts = urlsplit(url)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as s:
        try:
            async with s.get(f"{parts.scheme}://{parts.netloc}/symbols") as r:
                body = await r.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError, ValueError):
            return None
    symbols = body.get("symbols") if isinstance(body, dict) else None
    if symbols and isinstance(body.get("as_of"), dict):  # each symbol's valid as-of range: the mix draws within them
        return {str(x): body["as_of"].get(x) for x in symbols}
    return [str(x) for x in symbols] if symbols else None

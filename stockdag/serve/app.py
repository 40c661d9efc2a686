"""The FastAPI application: /predict, /symbols, /health, /metrics, with admission control.

Admission control keeps an overloaded server answering: beyond
``max_in_flight`` prediction requests' work it answers 503 with
``Retry-After`` at once, and a prediction still running after ``deadline``
seconds answers 504 (its queued work is cancelled where the backend can; work
that cannot be stopped keeps its place in the count until it ends, see
:mod:`stockdag.serve.admission`). ``/health`` and ``/metrics`` never queue
behind predictions.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time

from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily
from pydantic import BaseModel

from .. import __version__, config
from ..errors import InsufficientHistory, InvalidRequest, OutsideData, StockdagError, UnknownSymbol
from ..pipeline.modes import DISTRIBUTED, REPLICATED, check_mode
from ..pipeline.request import parse_request
from ..pipeline.result import PredictionJSON, finite
from ..run.ranges import symbol_ranges
from .admission import Admission
from .backends import BACKENDS, Backend

logger = logging.getLogger(__name__)

# seconds; spans a cached pretrained request (ms) to an overloaded refit one (tens of s)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


# -- response schemas (documented in /openapi.json; the prediction's is PredictionJSON)
class ErrorOut(BaseModel):
    """Every error response: the error class, a one-line reason, and the symbols for a 404."""

    error: str
    detail: str
    available: list[str] | None = None


class AsOfRange(BaseModel):
    first: str
    last: str


class SymbolsOut(BaseModel):
    """The symbols the data source has, and each one's valid as-of range for this server's profile and data.

    A date in ``[first, last]`` can be answered; ``null`` means no date can
    (too little history, or no pretrained models). A source that cannot list
    its symbols (yfinance) gives empty lists.
    """

    source: str
    profile: str
    symbols: list[str]
    as_of: dict[str, AsOfRange | None]


class HealthOut(BaseModel):
    service: str
    status: str
    version: str
    mode: str
    workers: int | None
    strategy: str | None
    dashboard: str | None
    profile: str
    in_flight: int
    max_in_flight: int
    deadline: float


_ERRORS = {
    404: {"model": ErrorOut, "description": "unknown symbol (names the available ones)"},
    422: {"model": ErrorOut, "description": "malformed symbol or date, too little history, or an unknown query parameter"},
    502: {"model": ErrorOut, "description": "a data source failed"},
    503: {"model": ErrorOut, "description": "too many requests in flight (see Retry-After), or models unavailable"},
    504: {"model": ErrorOut, "description": "the request ran past its deadline"},
}


async def _no_unknown_query_parameters(request: Request) -> None:
    """Refuse query parameters the route does not declare: a typo (``?asof=``) must not answer for another date."""
    route = request.scope.get("route")
    known = {p.alias for p in route.dependant.query_params} if route is not None else set()
    unknown = [k for k in dict.fromkeys(request.query_params.keys()) if k not in known]
    if unknown:
        accepted = f"{route.path} accepts: {', '.join(sorted(known))}" if known else f"{route.path} takes no query parameters"
        raise InvalidRequest(f"unknown query parameter{'s' if len(unknown) > 1 else ''} "
                             f"{', '.join(repr(k) for k in unknown)}; {accepted}")


_UNKNOWN_QUERY = {"model": ErrorOut, "description": "an unknown query parameter"}


def _check_range(request, ranges: dict, unanswerable: dict) -> None:
    """Refuse a date outside the symbol's valid range before any work is submitted.

    An expected client error then never runs (or fails) on a worker; the
    stages still check everything themselves (a symbol with no listed range
    goes through them).
    """
    if request.symbol not in ranges:
        return
    valid = ranges[request.symbol]
    if valid is None:  # the error the stages would raise (no stored models: a 503 saying how to fix it)
        raise unanswerable.get(request.symbol) or InsufficientHistory(
            f"no as-of date of {request.symbol} can be answered with this server's {request.profile} profile and data")
    as_of = request.as_of.isoformat() if request.as_of else None
    if as_of is not None and as_of < valid["first"]:
        raise InsufficientHistory(f"as-of date {as_of} is before {request.symbol}'s first answerable date "
                                  f"{valid['first']} ({request.profile} profile; see /symbols)")
    if as_of is not None and as_of > valid["last"]:
        raise OutsideData(f"as-of date {as_of} is after the last {request.symbol} price ({valid['last']})")


# an absolute (or home-relative) path of two or more parts, not the tail of a URL (tcp://host/..., http://...)
_PART = r"[^\s'\"`,;:()\[\]{}<>/\\]+"
_PATH_RE = re.compile(rf"(?<![\w:/.~-])(?:~|[A-Za-z]:)?(?:[/\\]{_PART}){{2,}}[/\\]?")


def _without_paths(message: str, folders) -> str:
    """``message`` with file paths replaced by ``<path>``: a client learns what failed, not where the
    server keeps its files. ``folders``: the configured ones, which may be relative (``data``), so that
    no pattern alone finds them."""
    message = _PATH_RE.sub("<path>", message)
    for folder in sorted({str(f) for f in folders if f}, key=len, reverse=True):
        # a bare word is a folder's name only where a path ends (a separator, a quote, punctuation, the end)
        message = re.sub(rf"(?<![\w.-]){re.escape(folder)}(?:[/\\]{_PART})*(?=[/\\'\"`;:,)]|$)", "<path>", message)
    return message


def _error(status: int, error: str, detail: str, available=None, headers=None) -> JSONResponse:
    body = {"error": error, "detail": detail}
    if available is not None:
        body["available"] = list(available)
    return JSONResponse(body, status_code=status, headers=headers)


class _Metrics:
    """Prometheus metrics in a registry of their own, so several apps can live in one process (tests)."""

    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("stockdag_http_requests", "HTTP requests answered, by endpoint and status",
                                ("endpoint", "status"), registry=self.registry)
        self.latency = Histogram("stockdag_http_request_duration_seconds", "HTTP request latency, by endpoint",
                                 ("endpoint",), buckets=LATENCY_BUCKETS, registry=self.registry)
        self.in_flight = Gauge("stockdag_http_in_flight", "prediction requests whose work is computing or queued "
                               "(including work that outlived its request's 504)", registry=self.registry)
        self.rejected = Counter("stockdag_http_rejected", "prediction requests refused by admission control, by reason",
                                ("reason",), registry=self.registry)


class _BackendCounters:
    """The backend's own counters, read at each scrape (a backend knows nothing of Prometheus)."""

    def __init__(self, backend: Backend):
        self.backend = backend

    def collect(self):
        yield CounterMetricFamily("stockdag_backend_replaced", "times the backend replaced its worker processes "
                                  "after one died (replicated mode)", value=self.backend.replaced)


def create_app(mode: str | None = None, *, replicas: int | None = None, workers: int | None = None,
               scheduler: str | None = None, strategy: str | None = None, profile: str | None = None,
               max_in_flight: int | None = None, deadline: float | None = None, retry_after: int | None = None,
               backend: Backend | None = None, security=None, on_ready=None) -> FastAPI:
    """Build the ASGI app. Every argument defaults to ``stockdag.serve.<name>`` (or ``stockdag.profile``).

    The ``stockdag`` configuration is snapshotted here, once: every request is
    parsed against that snapshot, so a server started inside
    ``dask.config.set(...)`` keeps those settings. ``on_ready``, when given, is
    called with the backend's info (mode, workers, dashboard) once it has started.

    Raises
    ------
    stockdag.InvalidRequest
        for an unknown mode or placement strategy.
    """
    mode = config.get("serve.mode", mode)
    settings = config.snapshot()
    if profile is not None:
        settings = {**settings, "profile": profile}
    profile = settings["profile"]
    max_in_flight = int(config.get("serve.max_in_flight", max_in_flight))
    deadline = float(config.get("serve.deadline", deadline))
    retry_after = int(config.get("serve.retry_after", retry_after))
    if backend is None:
        check_mode(mode)
        if mode == REPLICATED:
            backend = BACKENDS[mode](int(config.get("serve.replicas", replicas)))
        elif mode == DISTRIBUTED:
            from ..placement.registry import check_strategy

            # None goes on: the configured default, which a cluster placing with its own strategy does not override
            check_strategy(config.get("placement.strategy", strategy))
            backend = BACKENDS[mode](int(config.get("serve.workers", workers)), scheduler, strategy, security=security)
        else:
            backend = BACKENDS[mode]()

    from ..domain.data.prices import get_price_source

    source_name = settings["data"]["source"]
    source = get_price_source(source_name, settings["data"]["data_dir"], float(settings["data"]["timeout"]))
    metrics = _Metrics()
    metrics.registry.register(_BackendCounters(backend))
    admission = Admission(max_in_flight)
    metrics.in_flight.set_function(lambda: admission.in_flight)
    state = {"symbols": [], "ranges": {}, "unanswerable": {}}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        # the bundled and csv sources list their symbols; a live source may not (then C2 decides)
        loop = asyncio.get_running_loop()
        state["symbols"] = await loop.run_in_executor(None, source.symbols)
        state["ranges"] = await loop.run_in_executor(None, symbol_ranges, source, state["symbols"], settings,
                                                     state["unanswerable"])
        await backend.start()
        if on_ready is not None:  # e.g. `stockdag serve` prints the dashboard, known only once the cluster is up
            on_ready(await backend.info())
        try:
            yield
        finally:
            await backend.close()

    from ..pipeline.spec import load_pipeline

    spec = load_pipeline((settings.get("pipeline") or {}).get("spec"))  # a bad spec fails here, before serving
    # fastapi-offline: FastAPI's own self-hosted docs recipe with current swagger-ui and redoc assets shipped
    # in the wheel, so /docs and /redoc work offline (FastAPI's default pages load them from a CDN)
    app = FastAPIOffline(
        title="stockdag",
        version=__version__,
        description=f"Next-day stock-price predictions from the {spec.name} pipeline ({len(spec.models)} models"
                    f"{', steps ' + ', '.join(spec.steps) if spec.steps else ''}), served "
                    f"{backend.mode}. Every prediction carries its per-stage trace.",
        lifespan=lifespan,
        dependencies=[Depends(_no_unknown_query_parameters)],
    )
    app.state.backend = backend
    app.state.metrics = metrics
    app.state.admission = admission

    @app.middleware("http")
    async def measure(request: Request, call_next):
        start = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        endpoint = getattr(route, "path", "other")  # the template, so symbols do not become label values
        metrics.requests.labels(endpoint, str(response.status_code)).inc()
        metrics.latency.labels(endpoint).observe(time.perf_counter() - start)
        return response

    # the folders an error message may name (relative ones too, which no pattern recognises)
    folders = (settings["data"].get("data_dir"), (settings.get("models") or {}).get("store"),
               (settings.get("cache") or {}).get("directory"))

    @app.exception_handler(StockdagError)
    async def stockdag_error(request: Request, exc: StockdagError):
        detail = _without_paths(exc.message, folders)
        if detail != exc.message:  # the server's operator still needs the full message
            logger.warning("%s on %s: %s", type(exc).__name__, request.url.path, exc.message)
        return _error(exc.http_status, type(exc).__name__, detail,
                      available=exc.available if isinstance(exc, UnknownSymbol) else None)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        detail = "; ".join(f"{'.'.join(str(x) for x in e.get('loc', ()))}: {e.get('msg', '')}" for e in exc.errors())
        return _error(422, "InvalidRequest", detail or "invalid request")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        # the traceback goes to the server log, never to the client
        logger.exception("unexpected error on %s", request.url.path)
        return _error(500, "InternalError", f"{type(exc).__name__}: unexpected server error (see the server log)")

    @app.get("/predict/{symbol}", response_model=PredictionJSON, responses=_ERRORS,
             summary="Predict the next-day close of a symbol")
    async def predict(
        symbol: str = Path(..., description="ticker symbol, e.g. AAPL (see /symbols)"),
        as_of: str | None = Query(None, description="YYYY-MM-DD; the last day of data when omitted"),
    ):
        # parsing first: malformed input is a 422 even when the server is full
        request = parse_request(symbol, as_of, settings=settings)
        if state["symbols"] and request.symbol not in state["symbols"]:
            raise UnknownSymbol(request.symbol, state["symbols"])
        _check_range(request, state["ranges"], state["unanswerable"])
        ticket = admission.admit()
        if ticket is None:
            metrics.rejected.labels("overload").inc()
            return _error(503, "Overloaded", f"{admission.in_flight} requests in flight (limit {max_in_flight}); retry later",
                          headers={"Retry-After": str(retry_after)})
        try:
            body = await asyncio.wait_for(backend.predict(request, ticket), deadline)
        except TimeoutError:
            metrics.rejected.labels("deadline").inc()
            return _error(504, "DeadlineExceeded", f"no answer within the {deadline:g} s deadline")
        finally:
            if not ticket.handed_over:  # the backend never started work (or its work ends with the handler)
                ticket.release()
        return finite(body)  # validated against PredictionJSON by response_model

    @app.get("/symbols", response_model=SymbolsOut, responses={422: _UNKNOWN_QUERY}, summary="Symbols the data source has")
    async def symbols():
        return {"source": source_name, "profile": profile, "symbols": state["symbols"], "as_of": state["ranges"]}

    @app.get("/health", response_model=HealthOut, summary="Mode, workers, strategy and load (503 when no worker can run a request)",
             responses={422: _UNKNOWN_QUERY,
                        503: {"model": HealthOut, "description": "no workers: every prediction would time out"}})
    async def health():
        info = await backend.info()
        ok = info["workers"] is None or info["workers"] > 0  # a cluster with no workers answers every prediction with 504
        body = {"service": "stockdag", "status": "ok" if ok else "no workers", "version": __version__, "profile": profile,
                "in_flight": admission.in_flight, "max_in_flight": max_in_flight, "deadline": deadline,
                "mode": info["mode"], "workers": info["workers"], "strategy": info["strategy"],
                "dashboard": info["dashboard"]}
        return body if ok else JSONResponse(body, status_code=503)

    @app.get("/metrics", response_class=Response, summary="Prometheus metrics",
             responses={422: _UNKNOWN_QUERY, 200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}}}})
    async def prometheus():
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app

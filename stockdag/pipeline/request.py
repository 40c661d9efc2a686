"""C1 parse_request: validate and normalise a prediction request.

The request carries every setting the downstream stages need, resolved once
in the caller's process, so a worker never depends on its own configuration
and a recorded request reproduces its answer.
"""
from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from .. import config
from ..domain.data.ticker import SYMBOL_RE
from ..errors import InvalidRequest, OutsideData
from .spec import DEFAULT as DEFAULT_PIPELINE
from .spec import PipelineSpec, load_pipeline

PROFILES = ("refit", "pretrained")
SOURCES = ("bundled", "csv", "yfinance")
CACHE_BACKENDS = ("lru", "disk", "redis", "none")
CACHE_URL_SCHEMES = ("redis", "rediss", "unix")
LATENCY_DISTRIBUTIONS = ("none", "constant", "uniform", "lognormal")
# the dates any price or news data can carry: pandas' datetime64[ns] range (pd.Timestamp.min/max)
FIRST_DATE, LAST_DATE = dt.date(1677, 9, 22), dt.date(2262, 4, 11)


@dataclass(frozen=True)
class Latency:
    """Emulated fetch latency added on a cache miss (seconds)."""

    distribution: str = "none"
    mean: float = 0.0
    spread: float = 0.0
    seed: int = 0


@dataclass(frozen=True)
class Request:
    """A validated prediction request (the output of C1)."""

    symbol: str
    as_of: dt.date | None
    profile: str
    source: str
    data_dir: str | None
    history_days: int
    min_history: int
    news_days: int
    timeout: float
    latency: Latency
    cache_backend: str
    cache_size: int
    cache_dir: str | None
    cache_url: str | None
    window: int
    error_days: int
    model_store: str | None
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    #: the pipeline this request runs; it travels with the request, so workers read no spec file
    pipeline: PipelineSpec = DEFAULT_PIPELINE

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["as_of"] = self.as_of.isoformat() if self.as_of else None
        d["pipeline"] = self.pipeline.to_dict()
        return d

    def settings(self) -> dict[str, Any]:
        """The configuration snapshot this request was resolved from (for re-parsing)."""
        return {
            "profile": self.profile,
            "data": {
                "source": self.source, "data_dir": self.data_dir, "history_days": self.history_days,
                "min_history": self.min_history, "news_days": self.news_days, "timeout": self.timeout,
                "latency": asdict(self.latency),
            },
            "cache": {"backend": self.cache_backend, "size": self.cache_size, "directory": self.cache_dir,
                      "url": self.cache_url},
            "models": {"window": self.window, "error_days": self.error_days, "store": self.model_store},
        }


def normalise_symbol(symbol: object) -> str:
    """Upper-case and validate a ticker symbol; raise InvalidRequest if malformed."""
    if not isinstance(symbol, str):
        raise InvalidRequest(f"symbol must be a string, got {type(symbol).__name__}")
    s = symbol.strip().upper()
    if not SYMBOL_RE.match(s):
        raise InvalidRequest(
            f"malformed symbol {symbol!r}: expected 1-10 letters/digits starting with a letter"
        )
    return s


def parse_date(value: object, what: str = "as-of date") -> dt.date | None:
    """Parse an ISO date (YYYY-MM-DD), a date or None; raise InvalidRequest otherwise."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError as exc:
            if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):  # the right form, an impossible date: say which part
                raise InvalidRequest(f"invalid {what} {value!r}: {exc}") from None
    raise InvalidRequest(f"malformed {what} {value!r}: expected YYYY-MM-DD")


def _check_date_range(as_of: dt.date | None, news_days: int) -> None:
    """Reject as-of dates no data can cover, before a stage computes with them.

    C5 reads headlines from ``news_days`` before the as-of date: in years 1-3
    that date does not exist (OverflowError), and outside pandas' range no
    frame can hold it. Such a date is outside the data: a 422, like any other.
    """
    if as_of is None:
        return
    if as_of > LAST_DATE:
        raise OutsideData(f"as-of date {as_of.isoformat()} is after any data (dates end by {LAST_DATE})")
    if as_of.toordinal() - news_days < FIRST_DATE.toordinal():
        raise OutsideData(f"as-of date {as_of.isoformat()} is before any data (its {news_days}-day news "
                                  f"window would start before {FIRST_DATE})")


def _choice(name: str, value: str | None, allowed: tuple[str, ...]) -> str:
    if value is None and "none" in allowed:
        # dask reads DASK_STOCKDAG__CACHE__BACKEND=none (and YAML's null) as None: the documented choice "none"
        value = "none"
    if value not in allowed:
        raise InvalidRequest(f"unknown {name} {value!r}; choose one of: {', '.join(allowed)}")
    return value


def _cache_url(backend: str, url: object) -> str | None:
    if url in (None, ""):
        if backend == "redis":
            raise InvalidRequest("cache backend 'redis' needs stockdag.cache.url, e.g. redis://127.0.0.1:6379/0")
        return None
    scheme = str(url).partition("://")[0] if "://" in str(url) else ""
    if not isinstance(url, str) or scheme not in CACHE_URL_SCHEMES:
        raise InvalidRequest(f"malformed cache URL {url!r}: expected one of "
                             + ", ".join(f"{s}://..." for s in CACHE_URL_SCHEMES))
    return url


def _positive_int(name: str, value: object) -> int:
    try:
        v: int = int(value)  # type: ignore[call-overload]  # any object: int() says what it cannot convert
    except (TypeError, ValueError):
        raise InvalidRequest(f"{name} must be a positive integer, got {value!r}") from None
    if v <= 0:
        raise InvalidRequest(f"{name} must be a positive integer, got {value!r}")
    return v


class _Settings:
    """Dotted look-ups in a configuration snapshot, with an explicit override."""

    def __init__(self, snapshot: dict[str, Any]):
        self._snap = snapshot

    def get(self, key: str, override_with: object = None) -> Any:
        if override_with is not None:
            return override_with
        node: object = self._snap
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                raise InvalidRequest(f"configuration key stockdag.{key} is missing")
            node = node[part]
        return node


def parse_request(
    symbol: object,
    as_of: object = None,
    *,
    profile: str | None = None,
    source: str | None = None,
    data_dir: str | None = None,
    request_id: str | None = None,
    settings: dict[str, Any] | None = None,
    pipeline: object = None,
) -> Request:
    """C1: validate the inputs and resolve every setting.

    ``settings`` is a snapshot of the ``stockdag`` configuration taken in the
    caller's process (``stockdag.config.snapshot()``); None reads it here.
    ``pipeline`` is a :class:`~stockdag.pipeline.spec.PipelineSpec`, a spec file
    path or None (``stockdag.pipeline.spec``, else the default C1-C12).

    Raises
    ------
    InvalidRequest
        for a malformed symbol, date, profile, source or configuration value.
    """
    snap = settings if settings is not None else config.snapshot()
    cfg = _Settings(snap)
    if pipeline is None:
        pipeline = (snap.get("pipeline") or {}).get("spec")
    spec = load_pipeline(pipeline)
    sym = normalise_symbol(symbol)
    date = parse_date(as_of)
    profile = _choice("profile", cfg.get("profile", profile), PROFILES)
    source = _choice("source", cfg.get("data.source", source), SOURCES)
    data_dir = cfg.get("data.data_dir", data_dir)
    if source == "csv" and not data_dir:
        raise InvalidRequest("source 'csv' needs a data directory (--data-dir or stockdag.data.data_dir)")
    lat = cfg.get("data.latency")
    latency = Latency(
        distribution=_choice("latency distribution", lat.get("distribution", "none"), LATENCY_DISTRIBUTIONS),
        mean=float(lat.get("mean", 0.0)),
        spread=float(lat.get("spread", 0.0)),
        seed=int(lat.get("seed", 0)),
    )
    if latency.mean < 0 or latency.spread < 0:
        raise InvalidRequest("emulated latency mean and spread must be >= 0")
    history_days = _positive_int("data.history_days", cfg.get("data.history_days"))
    min_history = _positive_int("data.min_history", cfg.get("data.min_history"))
    window = _positive_int("models.window", cfg.get("models.window"))
    error_days = _positive_int("models.error_days", cfg.get("models.error_days"))
    if min_history > history_days:
        raise InvalidRequest("data.min_history cannot exceed data.history_days")
    news_days = _positive_int("data.news_days", cfg.get("data.news_days"))
    _check_date_range(date, news_days)
    cache_backend = _choice("cache backend", cfg.get("cache.backend"), CACHE_BACKENDS)
    return Request(
        symbol=sym,
        as_of=date,
        profile=profile,
        source=source,
        data_dir=str(data_dir) if data_dir else None,
        history_days=history_days,
        min_history=min_history,
        news_days=news_days,
        timeout=float(cfg.get("data.timeout")),
        latency=latency,
        cache_backend=cache_backend,
        cache_size=_positive_int("cache.size", cfg.get("cache.size")),
        cache_dir=cfg.get("cache.directory"),
        cache_url=_cache_url(cache_backend, cfg.get("cache.url")),
        window=window,
        error_days=error_days,
        model_store=cfg.get("models.store"),
        request_id=request_id or uuid.uuid4().hex,
        pipeline=spec,
    )

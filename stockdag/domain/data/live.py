"""Live Yahoo Finance sources (C2 prices, C5 news) through the ``yfinance`` client.

yfinance answers most failures with an empty frame and a log line, keeps one
HTTP session and one cookie/crumb per process (its ``YfData`` singleton), and
waits up to 30 s on some requests whatever timeout it is given. So each fetch
here holds a module lock and runs through a *watched* session: every request
gets at most what is left of ``timeout`` seconds for the whole fetch, and its
answer or exception is recorded, so that an empty result can be explained.
A 404 from the chart API becomes :class:`~stockdag.errors.UnknownSymbol`;
every other failure, yfinance's or the network's, a
:class:`~stockdag.errors.DataSourceError` with a one-line reason.

Extend by subclassing :class:`YFinanceSource` and calling :meth:`YFinanceSource._call`.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import functools
import math
import threading
import time
from urllib.parse import urlsplit

import pandas as pd
import requests
import yfinance as yf
from yfinance.data import YfData
from yfinance.exceptions import YFRateLimitError

from ...errors import DataSourceError, StockdagError, UnknownSymbol
from .base import COLUMNS, NewsSource, PriceSource, _between

try:
    from curl_cffi.requests.exceptions import Timeout as _CurlTimeout
except ImportError:  # yfinance falls back to plain requests without curl_cffi
    _CurlTimeout = requests.exceptions.Timeout

_TIMEOUTS = (TimeoutError, requests.exceptions.Timeout, _CurlTimeout)
_CHART = "/v8/finance/chart/"
_NEWS = "/xhr/ncp"
_RENAME = {"Open": "open", "High": "high", "Low": "low", "Close": "close",
           "Adj Close": "adj_close", "Volume": "volume"}

# yfinance's session, cookie and crumb are process-wide: two fetches with
# different sessions would swap them under each other.
_LOCK = threading.Lock()


@functools.lru_cache(maxsize=1)
def _default_session():
    # yfinance's own default: Yahoo turns away clients that do not look like a browser.
    # One per process, so the cookie and crumb are fetched once.
    from curl_cffi import requests as curl_requests

    return curl_requests.Session(impersonate="chrome")


class _Watch:
    """The HTTP requests of one fetch: bounded by one deadline, and recorded."""

    def __init__(self, budget: float):
        self.budget = budget
        self.deadline = time.monotonic() + budget
        self.calls: list[tuple[str, object]] = []  # (url, response or exception)

    def bound(self, request):
        def bounded_request(method, url, *args, **kwargs):
            left = self.deadline - time.monotonic()
            if left <= 0:
                # an OSError, which yfinance treats as a transient network failure and gives up on
                exc = TimeoutError(f"the {self.budget:g}s budget of this fetch is spent")
                self.calls.append((url, exc))
                raise exc
            kwargs["timeout"] = _capped(kwargs.get("timeout"), left)
            try:
                response = request(method, url, *args, **kwargs)
            except Exception as exc:
                self.calls.append((url, exc))
                raise
            self.calls.append((url, response))
            return response

        return bounded_request

    def failures(self) -> list[tuple[BaseException, str]]:
        return [(r, url) for url, r in self.calls if isinstance(r, BaseException)]

    def answers(self, path: str) -> list:
        return [r for url, r in self.calls if path in url and not isinstance(r, BaseException)]


def _capped(timeout, left: float):
    if timeout is None:
        return left
    if isinstance(timeout, tuple):  # requests' (connect, read)
        return tuple(left if t is None else min(t, left) for t in timeout)
    return min(timeout, left)


@contextlib.contextmanager
def _watched(session, budget: float):
    watch = _Watch(budget)
    own = session.__dict__.get("request")
    # an instance attribute shadows Session.request for this fetch only
    session.request = watch.bound(session.request)
    try:
        yield watch
    finally:
        if own is None:
            del session.request
        else:
            session.request = own


def _one_line(exc: BaseException, url: str | None = None) -> str:
    text = " ".join(str(exc).split())
    if len(text) > 160:
        text = text[:157] + "..."
    where = f" from {urlsplit(url).hostname}" if url else ""
    return f"{type(exc).__name__}{where}: {text}" if text else f"{type(exc).__name__}{where}"


def _yahoo_reason(response) -> str | None:
    try:
        error = response.json()["chart"]["error"]
        return " ".join(str(error["description"]).split()) or None
    except (ValueError, KeyError, TypeError):
        return None


class YFinanceSource:
    """Shared plumbing of the Yahoo Finance sources.

    Parameters
    ----------
    timeout : float
        Seconds one fetch may spend on the network in all (cookie, crumb,
        timezone and data requests together).
    session : requests.Session or curl_cffi.requests.Session, optional
        The HTTP session yfinance uses; default a browser-impersonating
        curl_cffi session shared by the process.

    Notes
    -----
    Subclasses fetch through :meth:`_call`, which serialises yfinance calls in
    the process and turns every failure into a :class:`StockdagError`.
    """

    name = "yfinance"
    _data_path = _CHART

    def __init__(self, timeout: float = 10.0, session=None):
        self.timeout = float(timeout)
        self.session = session

    def _call(self, symbol: str, what: str, fetch):
        """Return ``(fetch(ticker), watch)``; any exception becomes a StockdagError."""
        session = self.session if self.session is not None else _default_session()
        with _LOCK, _watched(session, self.timeout) as watch:
            # yfinance caches answers per process: a cached 404 would never reach the watch
            YfData.cache_get.cache_clear()
            try:
                result = fetch(yf.Ticker(symbol, session=session))
            except Exception as exc:  # yfinance lets its own, requests', curl_cffi's and plain errors through
                raise self._explain(symbol, what, watch, exc) from exc
        return result, watch

    def _explain(self, symbol: str, what: str, watch: _Watch, exc=None) -> StockdagError:
        """The error that best says why ``what`` for ``symbol`` did not arrive."""
        chart = f"{_CHART}{symbol.upper()}"
        if any(r.status_code == 404 for r in watch.answers(chart)):
            return UnknownSymbol(symbol)
        prefix = f"no {symbol} {what} from Yahoo Finance"
        answers = watch.answers(self._data_path)
        if isinstance(exc, YFRateLimitError) or (answers and answers[-1].status_code == 429):
            return DataSourceError(f"{prefix}: rate-limited (HTTP 429), try again later")
        failures = watch.failures()
        if any(isinstance(e, _TIMEOUTS) for e, _ in failures):
            return DataSourceError(
                f"{prefix}: no answer within {self.timeout:g}s ({_one_line(*failures[-1])}); "
                "the source is unreachable or too slow"
            )
        if failures:
            return DataSourceError(f"{prefix}: {_one_line(*failures[-1])}; the source is unreachable")
        if answers and answers[-1].status_code >= 400:
            reason = _yahoo_reason(answers[-1])
            return DataSourceError(
                f"{prefix}: HTTP {answers[-1].status_code}" + (f" ({reason})" if reason else "")
                + "; the symbol may not exist or the source is unreachable"
            )
        if exc is not None:
            return DataSourceError(
                f"{prefix}: yfinance failed ({_one_line(exc)}); "
                "the symbol may not exist or the source is unreachable"
            )
        return DataSourceError(f"{prefix}: empty answer; the symbol may not exist or the source is unreachable")


class YFinancePrices(YFinanceSource, PriceSource):
    """Daily prices from Yahoo Finance (live; open-ended symbol list).

    Fetches about ``1.5 * history_days + 10`` calendar days up to ``as_of``
    (trading days are ~5/7 of calendar days, plus holidays), unadjusted, so
    both ``close`` and ``adj_close`` come back.
    """

    def symbols(self) -> list[str]:
        return []

    def history(self, symbol, as_of, history_days):
        end = as_of or dt.date.today()
        start = end - dt.timedelta(days=math.ceil(history_days * 1.5 + 10))
        what = f"prices {start}..{end}"
        frame, watch = self._call(
            symbol,
            what,
            lambda ticker: ticker.history(
                start=start,
                end=end + dt.timedelta(days=1),  # yfinance's end is exclusive
                interval="1d",
                auto_adjust=False,
                actions=False,
                timeout=self.timeout,
            ),
        )
        if frame is None or frame.empty:
            raise self._explain(symbol, what, watch)
        frame = frame.rename(columns=_RENAME)
        # midnights in the exchange's zone: dropping the zone keeps the trading date
        frame.index = pd.DatetimeIndex(frame.index).tz_localize(None).normalize()
        frame.index.name = "date"
        # Yahoo may append the latest bar after the requested end
        return frame.loc[: pd.Timestamp(end), COLUMNS]


class YFinanceNews(YFinanceSource, NewsSource):
    """Recent headlines from Yahoo Finance (live).

    Yahoo serves only the latest ``count`` stories, so an ``as_of`` in the past
    usually finds none (sentiment is then neutral). Dates are the publication
    day in UTC.
    """

    _data_path = _NEWS
    count = 20

    def headlines(self, symbol, start, end):
        items, watch = self._call(symbol, "news", lambda ticker: ticker.get_news(count=self.count))
        answers = watch.answers(_NEWS)
        if answers and answers[-1].status_code >= 400:
            raise self._explain(symbol, "news", watch)
        rows = [(_published(item), _title(item)) for item in items or []]
        rows = [(when, title) for when, title in rows if when is not None and title]
        frame = pd.DataFrame(
            {
                "date": pd.Series([when for when, _ in rows], dtype="datetime64[ns, UTC]")
                .dt.tz_localize(None)
                .dt.normalize(),
                "headline": pd.Series([title for _, title in rows], dtype=str),
            }
        )
        return _between(frame, start, end).reset_index(drop=True)


def _title(item: dict) -> str | None:
    # current stories nest under "content"; older yfinance/Yahoo answers were flat
    content = item.get("content") or {}
    title = content.get("title") or item.get("title")
    return " ".join(str(title).split()) if title else None


def _published(item: dict) -> pd.Timestamp | None:
    content = item.get("content") or {}
    try:
        if content.get("pubDate"):  # ISO 8601, "Z" for UTC
            when = pd.Timestamp(content["pubDate"])
            return when.tz_localize("UTC") if when.tzinfo is None else when.tz_convert("UTC")
        if item.get("providerPublishTime") is not None:  # epoch seconds
            return pd.Timestamp(int(item["providerPublishTime"]), unit="s", tz="UTC")
    except (ValueError, TypeError):
        pass
    return None

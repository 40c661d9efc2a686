"""C2 price retriever: daily OHLCV history up to an as-of date.

Sources
-------
``bundled`` (default, offline)
    The real daily prices that the ``bokeh_sampledata`` package ships (Quandl
    WIKI, public domain): AAPL, IBM, MSFT 2000-03-01..2013-03-01, GOOG from
    2004-08-19, FB from 2012-05-18. Returns use ``adj_close``: the raw OHLC
    columns jump at splits.
``csv``
    A folder of ``<SYMBOL>.csv`` files with a date column and open, high, low,
    close, volume and (optionally) adj close columns.
``yfinance``
    The live Yahoo Finance client, with short timeouts; an empty answer or a
    network failure becomes a :class:`~stockdag.errors.DataSourceError`.

Add a source by subclassing :class:`PriceSource` and registering it in
:data:`PRICE_SOURCES`.
"""
from __future__ import annotations

import functools
import os

import pandas as pd

from ...errors import DataSourceError, OutsideData, UnknownSymbol
from .base import COLUMNS, PriceData, PriceSource, _clean  # noqa: F401  (re-exported: callers import them from here)
from .ticker import SYMBOL_RE


@functools.lru_cache(maxsize=1)
def _bundled_frame() -> pd.DataFrame:
    # read-only reference data: loaded once per process
    from bokeh_sampledata.stocks import data

    return data


class BundledPrices(PriceSource):
    """Real daily prices shipped by ``bokeh_sampledata`` (offline)."""

    name = "bundled"

    def symbols(self) -> list[str]:
        return sorted(_bundled_frame()["ticker"].unique().tolist())

    def history(self, symbol, as_of, history_days):
        data = _bundled_frame()
        rows = data[data["ticker"] == symbol]
        if rows.empty:
            raise UnknownSymbol(symbol, self.symbols())
        last = rows["date"].iloc[-1].date()
        if as_of is not None and as_of > last:
            raise OutsideData(
                f"as-of date {as_of} is after the last bundled {symbol} price ({last})"
            )
        return rows.set_index("date").drop(columns="ticker")


NEWS_SUFFIX = ".news.csv"


def symbol_files(data_dir: str, suffix: str) -> dict[str, str]:
    """``{SYMBOL: file name}`` of the files ``<symbol><suffix>`` in ``data_dir``, matched case-insensitively.

    A price file (``suffix=".csv"``) is never a news file (``.news.csv``); a
    stem that is not a valid symbol (:data:`~stockdag.domain.data.ticker.SYMBOL_RE`) is
    skipped. When two files differ only in case, the upper-case one wins.
    """
    out: dict[str, str] = {}
    for name in sorted(os.listdir(data_dir), reverse=True):  # upper case sorts first: reversed, it is set last
        low = name.lower()
        if not low.endswith(suffix) or (suffix != NEWS_SUFFIX and low.endswith(NEWS_SUFFIX)):
            continue
        symbol = name[: -len(suffix)].upper()
        if SYMBOL_RE.match(symbol) and os.path.isfile(os.path.join(data_dir, name)):
            out[symbol] = name
    return out


class CsvPrices(PriceSource):
    """A folder of ``<SYMBOL>.csv`` files (a ``date`` column plus OHLCV); file names in any case.

    ``<SYMBOL>.news.csv`` files beside them are news (:class:`~stockdag.domain.data.news.CsvNews`), not symbols.
    """

    name = "csv"

    def __init__(self, data_dir: str):
        if not data_dir or not os.path.isdir(data_dir):
            raise DataSourceError(f"price data folder {data_dir!r} does not exist")
        self.data_dir = data_dir

    def symbols(self) -> list[str]:
        return sorted(symbol_files(self.data_dir, ".csv"))

    def history(self, symbol, as_of, history_days):
        name = symbol_files(self.data_dir, ".csv").get(symbol)
        if name is None:
            raise UnknownSymbol(symbol, self.symbols())
        path = os.path.join(self.data_dir, name)
        try:
            frame = pd.read_csv(path)
        except (OSError, ValueError) as exc:
            raise DataSourceError(f"cannot read {path}: {exc}") from None
        cols = {c: str(c).strip().lower() for c in frame.columns}
        frame = frame.rename(columns=cols)
        if "date" not in frame.columns:
            raise DataSourceError(f"{path} has no date column")
        try:
            frame["date"] = pd.to_datetime(frame["date"], utc=True).dt.tz_localize(None)
        except (ValueError, TypeError) as exc:
            raise DataSourceError(f"{path}: unparseable dates ({exc})") from None
        last = frame["date"].max().date()
        if as_of is not None and as_of > last:
            raise OutsideData(f"as-of date {as_of} is after the last {symbol} price ({last})")
        return frame.set_index("date")


def _yfinance_prices(*args, **kwargs):
    from .live import YFinancePrices

    return YFinancePrices(*args, **kwargs)


PRICE_SOURCES = {"bundled": BundledPrices, "csv": CsvPrices, "yfinance": _yfinance_prices}


def get_price_source(name: str, data_dir: str | None = None, timeout: float = 10.0) -> PriceSource:
    """Instantiate the price source called ``name``."""
    if name == "csv":
        return CsvPrices(data_dir or "")
    if name == "yfinance":
        return _yfinance_prices(timeout=timeout)
    if name == "bundled":
        return BundledPrices()
    raise DataSourceError(f"unknown price source {name!r}; choose one of {', '.join(PRICE_SOURCES)}")

"""C5 news retriever: headlines of a symbol up to an as-of date.

Sources
-------
``bundled`` (default, offline)
    A **synthetic**, deterministic headline set for the bundled symbols,
    generated once by ``scripts/make_news.py`` (seeded) from the real daily
    moves in the bundled prices and committed as ``stockdag/data/news.csv.gz``.
    A day's headlines echo that day's move (never the next day's), so they
    carry no look-ahead; they are not real news and say nothing about the
    real companies.
``csv``
    ``<SYMBOL>.news.csv`` files (``date,headline``) beside the price files;
    a symbol with no such file has no news (sentiment is then neutral).
``yfinance``
    The live Yahoo Finance news client (recent headlines only).

Add a source by subclassing :class:`NewsSource` and registering it in
:data:`NEWS_SOURCES`.
"""
from __future__ import annotations

import functools
import os

import pandas as pd

from ...errors import DataSourceError, UnknownSymbol
from .base import NewsData, NewsSource, _between  # noqa: F401  (re-exported: callers import them from here)
from .prices import NEWS_SUFFIX, symbol_files

BUNDLED_NEWS = os.path.join(os.path.dirname(__file__), "news.csv.gz")


@functools.lru_cache(maxsize=1)
def _bundled_news() -> pd.DataFrame:
    # read-only reference data: loaded once per process
    frame = pd.read_csv(BUNDLED_NEWS, parse_dates=["date"])
    return frame


class BundledNews(NewsSource):
    """Synthetic headlines for the bundled symbols (see the module docstring)."""

    name = "bundled"

    def headlines(self, symbol, start, end):
        data = _bundled_news()
        rows = data[data["symbol"] == symbol]
        if rows.empty:
            raise UnknownSymbol(symbol, sorted(data["symbol"].unique().tolist()))
        return _between(rows, start, end)


class CsvNews(NewsSource):
    """``<SYMBOL>.news.csv`` files (``date,headline``) in a folder; absent file = no news."""

    name = "csv"

    def __init__(self, data_dir: str):
        if not data_dir or not os.path.isdir(data_dir):
            raise DataSourceError(f"news data folder {data_dir!r} does not exist")
        self.data_dir = data_dir

    def headlines(self, symbol, start, end):
        name = symbol_files(self.data_dir, NEWS_SUFFIX).get(symbol)
        path = os.path.join(self.data_dir, name or f"{symbol}{NEWS_SUFFIX}")
        if name is None:
            return pd.DataFrame({"date": pd.Series(dtype="datetime64[ns]"), "headline": pd.Series(dtype=str)})
        try:
            frame = pd.read_csv(path, parse_dates=["date"])
        except (OSError, ValueError) as exc:
            raise DataSourceError(f"cannot read {path}: {exc}") from None
        return _between(frame, start, end)


def _yfinance_news(*args, **kwargs):
    from .live import YFinanceNews

    return YFinanceNews(*args, **kwargs)


NEWS_SOURCES = {"bundled": BundledNews, "csv": CsvNews, "yfinance": _yfinance_news}


def get_news_source(name: str, data_dir: str | None = None, timeout: float = 10.0) -> NewsSource:
    """Instantiate the news source called ``name``."""
    if name == "csv":
        return CsvNews(data_dir or "")
    if name == "yfinance":
        return _yfinance_news(timeout=timeout)
    if name == "bundled":
        return BundledNews()
    raise DataSourceError(f"unknown news source {name!r}; choose one of {', '.join(NEWS_SOURCES)}")

"""What every data source is: the price and news source types and the frames they return.

:mod:`.prices` and :mod:`.news` hold the offline sources and the registries,
:mod:`.live` the Yahoo Finance ones; all of them import these types from here,
so the registries can name the live sources without an import circle.
"""
from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from dataclasses import dataclass

import pandas as pd

from ...errors import DataSourceError, InsufficientHistory, OutsideData

COLUMNS = ["open", "high", "low", "close", "volume", "adj_close"]


@dataclass(frozen=True)
class PriceData:
    """Daily prices of one symbol, indexed by date (ascending), up to ``as_of``."""

    symbol: str
    source: str
    as_of: dt.date
    frame: pd.DataFrame
    cache_hit: bool = False


class PriceSource(ABC):
    """A place daily prices come from. Subclass and implement both methods."""

    name: str = ""

    @abstractmethod
    def symbols(self) -> list[str]:
        """The symbols this source can serve (may be empty for open-ended live sources)."""

    @abstractmethod
    def history(self, symbol: str, as_of: dt.date | None, history_days: int) -> pd.DataFrame:
        """Return the frame of ``COLUMNS`` indexed by date, rows up to ``as_of``."""

    def fetch(self, symbol: str, as_of: dt.date | None, history_days: int, min_history: int) -> PriceData:
        """Validated history: the last ``history_days`` rows up to ``as_of``."""
        frame = self.history(symbol, as_of, history_days)
        frame = _clean(frame)
        if as_of is not None:
            if len(frame) and frame.index[0].date() > as_of:
                raise OutsideData(
                    f"as-of date {as_of} is before the first {symbol} price ({frame.index[0].date()})"
                )
            frame = frame.loc[: pd.Timestamp(as_of)]
        if frame.empty:
            raise InsufficientHistory(f"no {symbol} prices up to {as_of}")
        frame = frame.tail(history_days)
        if len(frame) < min_history:
            raise InsufficientHistory(
                f"{symbol} has {len(frame)} trading days up to {frame.index[-1].date()}; "
                f"at least {min_history} are needed"
            )
        return PriceData(symbol=symbol, source=self.name, as_of=frame.index[-1].date(), frame=frame)


def _clean(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame.columns = [str(c).strip().lower().replace(" ", "_") for c in frame.columns]
    if "adj_close" not in frame.columns and "close" in frame.columns:
        frame["adj_close"] = frame["close"]
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise DataSourceError(f"price data lacks columns: {', '.join(missing)}")
    frame = frame[COLUMNS].astype("float64")
    frame.index = pd.DatetimeIndex(pd.to_datetime(frame.index)).tz_localize(None).normalize()
    frame.index.name = "date"
    frame = frame[~frame.index.duplicated(keep="last")].sort_index()
    return frame.dropna(subset=["adj_close", "close"])


@dataclass(frozen=True)
class NewsData:
    """Headlines of one symbol: a frame with ``date`` (datetime64) and ``headline``."""

    symbol: str
    source: str
    frame: pd.DataFrame
    cache_hit: bool = False


class NewsSource(ABC):
    """A place headlines come from. Subclass and implement :meth:`headlines`."""

    name: str = ""

    @abstractmethod
    def headlines(self, symbol: str, start: dt.date | None, end: dt.date | None) -> pd.DataFrame:
        """Return ``date, headline`` rows with start <= date <= end."""

    def fetch(self, symbol: str, as_of: dt.date | None, news_days: int) -> NewsData:
        start = as_of - dt.timedelta(days=news_days) if as_of else None
        frame = self.headlines(symbol, start, as_of)
        frame = frame[["date", "headline"]].sort_values("date", kind="stable").reset_index(drop=True)
        return NewsData(symbol=symbol, source=self.name, frame=frame)


def _between(frame: pd.DataFrame, start, end) -> pd.DataFrame:
    if start is not None:
        frame = frame[frame["date"] >= pd.Timestamp(start)]
    if end is not None:
        frame = frame[frame["date"] <= pd.Timestamp(end)]
    return frame

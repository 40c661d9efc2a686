"""C13 fetch_market and C14 market_features: the other symbols as market and peer factors.

A second branch of the graph, independent of the requested symbol's own
prices: C13 reads every other symbol of the request's price source up to the
as-of date, C14 turns them into an equal-weighted index (its daily return,
5-day return and 20-day volatility). The models' join
(:func:`with_market`) adds the symbol's 60-day beta to that index and its
20-day relative strength. Every factor at date t uses prices up to t only.
A source that cannot list its symbols (``yfinance``) gives no peers: the
factors are then zero (beta one), which the response's trace makes visible.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import InsufficientHistory, UnknownSymbol
from .data.prices import get_price_source

MARKET_FEATURES = ["mkt_ret", "mkt_ret_5", "mkt_vol_20", "beta_60", "rel_str_20"]


@dataclass(frozen=True)
class MarketData:
    """C13's answer: adjusted closes of the peer symbols (one column each), up to ``as_of``."""

    symbol: str
    as_of: dt.date | None
    closes: pd.DataFrame


@dataclass(frozen=True)
class MarketFactors:
    """C14's answer: the equal-weighted index's factors by date, and the peers it was built from."""

    peers: tuple[str, ...]
    frame: pd.DataFrame


def fetch_market(symbol: str, as_of: dt.date | None, source: str, data_dir: str | None, history_days: int,
                 timeout: float = 10.0) -> MarketData:
    """C13: adjusted closes of every other symbol of ``source`` (the peers) up to ``as_of``."""
    src = get_price_source(source, data_dir, timeout)
    closes = {}
    for peer in src.symbols():
        if peer == symbol:
            continue
        try:  # fetch, not history: it cuts the rows after as_of (no look-ahead)
            closes[peer] = src.fetch(peer, as_of, history_days, min_history=1).frame["adj_close"]
        except (UnknownSymbol, InsufficientHistory):  # not listed (yet) on that date
            continue
    frame = pd.DataFrame(closes).sort_index() if closes else pd.DataFrame(index=pd.DatetimeIndex([], name="date"))
    return MarketData(symbol=symbol, as_of=as_of, closes=frame)


def market_features(market: MarketData) -> MarketFactors:
    """C14: index return (mean of the peers' daily returns that day), its 5-day return and 20-day volatility."""
    rets = market.closes.pct_change(fill_method=None)
    index = rets.mean(axis=1, skipna=True)  # a peer not yet listed that day is left out
    frame = pd.DataFrame({
        "mkt_ret": index,
        "mkt_ret_5": (1.0 + index).rolling(5).apply(np.prod, raw=True) - 1.0,
        "mkt_vol_20": index.rolling(20).std(),
    }, index=market.closes.index)
    return MarketFactors(peers=tuple(market.closes.columns), frame=frame)


def with_market(frame: pd.DataFrame, factors: MarketFactors) -> pd.DataFrame:
    """Join the market factors onto feature rows (needs ``ret_1``); add beta and relative strength."""
    out = frame.copy()
    f = factors.frame.reindex(out.index)
    # beta and relative strength from the days both returns are known (a missing day is not a zero return)
    own = out["ret_1"]
    mkt = f["mkt_ret"].where(own.notna())
    own = own.where(mkt.notna())
    cov = own.rolling(60, min_periods=20).cov(mkt)
    var = mkt.rolling(60, min_periods=20).var().replace(0.0, np.nan)
    beta = cov / var
    rel = own.rolling(20, min_periods=1).sum() - mkt.rolling(20, min_periods=1).sum()
    for col in ("mkt_ret", "mkt_ret_5", "mkt_vol_20"):
        out[col] = f[col].fillna(0.0)
    out["beta_60"] = beta.fillna(1.0)
    out["rel_str_20"] = rel.fillna(0.0)
    return out

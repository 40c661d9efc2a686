"""C3 make_features: technical indicators from daily prices.

Every feature at date t is computed from prices up to and including t
(rolling windows, lags, Wilder's exponential smoothing): nothing looks
ahead. The target of row t is the return from t to t+1, unknown (NaN) on the
as-of row, which is the row the models predict from.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .data.prices import PriceData
from .sentiment import Sentiment

PRICE_FEATURES = [
    "ret_1", "ret_lag_1", "ret_lag_2", "ret_lag_3", "ret_lag_4", "ret_5",
    "ma_ratio_5", "ma_ratio_20", "ma_5_20", "rsi_14", "vol_20", "volume_z", "hl_range",
]
SENTIMENT_FEATURES = ["sent_mean", "sent_count", "sent_3d"]
FEATURES = PRICE_FEATURES + SENTIMENT_FEATURES
WARMUP = 21  # rows consumed by the longest window (20) plus the first return


@dataclass(frozen=True)
class Features:
    """Feature rows (``PRICE_FEATURES`` + ``target``) indexed by date, up to ``as_of``."""

    symbol: str
    as_of: dt.date
    frame: pd.DataFrame


def price_features(prices: pd.DataFrame) -> pd.DataFrame:
    """Indicators for every row of an OHLCV frame (first rows NaN during warm-up)."""
    adj = prices["adj_close"]
    ret = adj.pct_change(fill_method=None)
    out = pd.DataFrame(index=prices.index)
    out["ret_1"] = ret
    for k in range(1, 5):
        out[f"ret_lag_{k}"] = ret.shift(k)
    out["ret_5"] = adj.pct_change(5, fill_method=None)
    ma5, ma20 = adj.rolling(5).mean(), adj.rolling(20).mean()
    out["ma_ratio_5"] = adj / ma5 - 1.0
    out["ma_ratio_20"] = adj / ma20 - 1.0
    out["ma_5_20"] = ma5 / ma20 - 1.0
    delta = adj.diff()
    gain = delta.clip(lower=0).ewm(alpha=1 / 14, adjust=False, min_periods=14).mean()
    loss = (-delta.clip(upper=0)).ewm(alpha=1 / 14, adjust=False, min_periods=14).mean()
    rs = gain / loss.replace(0.0, np.nan)
    out["rsi_14"] = (1.0 - 1.0 / (1.0 + rs)).fillna(1.0).where(gain.notna())
    out["vol_20"] = ret.rolling(20).std()
    logv = np.log1p(prices["volume"].clip(lower=0))
    sd = logv.rolling(20).std().replace(0.0, np.nan)
    out["volume_z"] = ((logv - logv.rolling(20).mean()) / sd).fillna(0.0).where(sd.notna() | logv.notna())
    out["hl_range"] = (prices["high"] - prices["low"]) / prices["close"]
    return out


def make_features(prices: PriceData) -> Features:
    """C3: indicators plus the next-day-return target, warm-up rows dropped."""
    frame = price_features(prices.frame)
    frame["target"] = frame["ret_1"].shift(-1)
    frame = frame.iloc[WARMUP:]
    frame = frame.dropna(subset=PRICE_FEATURES)
    return Features(symbol=prices.symbol, as_of=prices.as_of, frame=frame)


def with_sentiment(features: Features, sentiment: Sentiment) -> pd.DataFrame:
    """Join the daily sentiment onto the feature rows (no headlines that day: 0)."""
    daily = sentiment.daily.reindex(features.frame.index)
    out = features.frame.copy()
    out["sent_mean"] = daily["sent_mean"].fillna(0.0)
    out["sent_count"] = np.log1p(daily["sent_count"].fillna(0.0))
    out["sent_3d"] = out["sent_mean"].rolling(3, min_periods=1).mean()
    return out

"""``stockdag train``: fit the pretrained profile's models into the model store."""
from __future__ import annotations

import datetime as dt
import platform

import pandas as pd
import sklearn

from ..data.news import get_news_source
from ..data.prices import get_price_source
from ..features import FEATURES, make_features, with_sentiment
from ..sentiment import score_sentiment
from . import store
from .compete import _fit
from .registry import MODELS


def train(symbols, train_end: str | dt.date, store_dir: str | None = None, *, window: int = 500,
          source: str = "bundled", data_dir: str | None = None, show_progress: bool = False) -> str:
    """Fit every model of every symbol on the ``window`` rows up to ``train_end``; return the store folder."""
    end = pd.Timestamp(train_end).date()
    store_dir = store_dir or store.default_store()
    jobs = [(s, m) for s in symbols for m in MODELS]
    bar = None
    if show_progress:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), desc="training", unit="model")
    try:
        for symbol in symbols:
            prices = get_price_source(source, data_dir).fetch(symbol, end, history_days=window + 60, min_history=window // 2)
            news = get_news_source(source, data_dir).fetch(symbol, end, news_days=2 * window)
            frame = with_sentiment(make_features(prices), score_sentiment(news)).dropna(subset=["target"]).tail(window)
            meta = {
                "symbol": symbol, "train_end": end.isoformat(), "last_row": frame.index[-1].date().isoformat(),
                "rows": len(frame), "features": FEATURES, "source": source,
                "sklearn": sklearn.__version__, "python": platform.python_version(),
            }
            for spec in MODELS:
                est = _fit(spec.name, frame[FEATURES].to_numpy(), frame["target"].to_numpy())
                store.save(store_dir, symbol, spec.name, est, meta)
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return store_dir

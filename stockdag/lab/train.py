"""``stockdag train``: fit the pretrained profile's models into the model store."""
from __future__ import annotations

import datetime as dt
import platform

import pandas as pd
import sklearn

from ..domain.data.symbols import symbols_with_history
from ..domain.models import store
from ..domain.models.compete import feature_columns, fit_model
from ..pipeline.spec import load_pipeline
from ..pipeline.stages import model_frame


def default_symbols(train_end, window: int, source: str = "bundled", data_dir: str | None = None) -> list[str]:
    """The symbols :func:`train` fits when none are named: the source's with ``window // 2`` days of prices
    up to ``train_end`` (:func:`~stockdag.domain.data.symbols.symbols_with_history`)."""
    return symbols_with_history(train_end, window // 2, source, data_dir)


def train(symbols, train_end: str | dt.date, store_dir: str | None = None, *, window: int = 500,
          source: str = "bundled", data_dir: str | None = None, show_progress: bool = False, pipeline=None) -> str:
    """Fit every model of ``pipeline`` (a spec; None: the default five) for every symbol on the
    ``window`` rows up to ``train_end``; return the store folder.

    ``symbols`` None: :func:`default_symbols`.

    A spec with the ``market`` step stores its models apart (``<name>@market.joblib``):
    they are fitted on more features.
    """
    spec = load_pipeline(pipeline)
    market = "market" in spec.steps
    cols = feature_columns(market)
    variant = store.variant(market)
    end = pd.Timestamp(train_end).date()
    if symbols is None:
        symbols = default_symbols(end, window, source, data_dir)
    store_dir = store_dir or store.default_store()
    jobs = [(s, m) for s in symbols for m in spec.models]
    bar = None
    if show_progress:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), desc="training", unit="model")
    try:
        for symbol in symbols:
            frame = model_frame(symbol, end, history_days=window + 60, min_history=window // 2, news_days=2 * window,
                                source=source, data_dir=data_dir, pipeline=spec)
            frame = frame.dropna(subset=["target"]).tail(window)
            meta = {
                "symbol": symbol, "train_end": end.isoformat(), "last_row": frame.index[-1].date().isoformat(),
                "rows": len(frame), "features": cols, "source": source,
                "sklearn": sklearn.__version__, "python": platform.python_version(),
            }
            fitted = {}
            for name in spec.models:
                fitted[name] = fit_model(name, frame[cols].to_numpy(), frame["target"].to_numpy())
                if bar is not None:
                    bar.update(1)
            # a symbol's models and metadata change together (an interrupted retrain never mixes them)
            store.save(store_dir, symbol, fitted, meta, variant)
    finally:
        if bar is not None:
            bar.close()
    return store_dir

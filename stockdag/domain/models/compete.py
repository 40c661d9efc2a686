"""C7-C11: fit (or load) one model, predict the next-day return, report recent error.

``refit`` profile: the model is fitted on the ``window`` rows before the last
``error_days`` rows and scored on them (its recent out-of-sample error), then
refitted on the ``window`` rows ending at the as-of date and asked for the
next-day return. ``pretrained`` profile: a model fitted ahead by ``stockdag
train`` is loaded from the model store, scored on the last ``error_days``
rows and asked for the next-day return.
"""
from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import ThreadpoolController

from ...errors import InsufficientHistory
from ..features import FEATURES, Features, with_sentiment
from ..sentiment import Sentiment
from .registry import make_estimator


@dataclass(frozen=True)
class Candidate:
    """One model's answer: predicted next-day return and recent mean absolute error."""

    model: str
    prediction: float
    recent_error: float
    train_rows: int
    #: actual - predicted on each recent out-of-sample day (C16 calibrates its interval on the winner's)
    recent_residuals: tuple[float, ...] = ()


@functools.lru_cache(maxsize=1)
def _controller() -> ThreadpoolController:
    # inspecting the loaded BLAS/OpenMP libraries costs ~2 ms; do it once per process,
    # after the model libraries (and their OpenMP runtimes) are imported
    import lightgbm  # noqa: F401
    import sklearn.ensemble  # noqa: F401

    return ThreadpoolController()


def single_threaded():
    """Context manager limiting BLAS/OpenMP pools to one thread: the executor owns the parallelism."""
    return _controller().limit(limits=1)


def fit_model(name: str, X, y):
    """A fresh estimator of model ``name`` fitted on ``(X, y)``, single-threaded, the stages' way (C7-C11)."""
    est = make_estimator(name)
    with single_threaded(), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        est.fit(X, y)
    return est


def predict_model(est, X) -> np.ndarray:
    """``est``'s predictions for ``X`` as floats, single-threaded, the stages' way (C7-C11)."""
    with single_threaded(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        return np.asarray(est.predict(X), dtype=float)


def feature_columns(market: bool = False) -> list[str]:
    """The model inputs: price and sentiment features, plus the market factors when C14 runs."""
    from ..market import MARKET_FEATURES

    return FEATURES + MARKET_FEATURES if market else list(FEATURES)


def model_inputs(features: Features, sentiment: Sentiment, market=None):
    """The frame every model sees: C3's features joined with C4's sentiment (and C14's market factors).

    ``market`` (C14's :class:`~stockdag.domain.market.MarketFactors`) adds the market factors.
    """
    frame = with_sentiment(features, sentiment)
    if market is not None:
        from ..market import with_market

        frame = with_market(frame, market)
    return frame


def training_rows(features: Features, sentiment: Sentiment, market=None):
    """(X_known, y_known, x_now): rows whose next-day return is known, and the as-of row (see :func:`model_inputs`)."""
    frame = model_inputs(features, sentiment, market)
    cols = feature_columns(market is not None)
    known = frame.iloc[:-1]
    return known[cols].to_numpy(), known["target"].to_numpy(), frame[cols].iloc[[-1]].to_numpy()


def fit_predict(name: str, features: Features, sentiment: Sentiment, window: int, error_days: int,
                market=None) -> Candidate:
    """refit profile: recent out-of-sample error, then a fresh fit up to the as-of date."""
    X, y, x_now = training_rows(features, sentiment, market)
    needed = error_days + 50
    if len(y) < needed:
        raise InsufficientHistory(f"{features.symbol}: {len(y)} usable rows, at least {needed} needed")
    split = len(y) - error_days
    lo = max(0, split - window)
    est = fit_model(name, X[lo:split], y[lo:split])
    residuals = y[split:] - predict_model(est, X[split:])
    recent_error = float(np.mean(np.abs(residuals)))
    lo = max(0, len(y) - window)
    est = fit_model(name, X[lo:], y[lo:])
    return Candidate(name, float(predict_model(est, x_now)[0]), recent_error, len(y) - lo, tuple(map(float, residuals)))


def predict_pretrained(name: str, est, features: Features, sentiment: Sentiment, error_days: int,
                       market=None) -> Candidate:
    """pretrained profile: score a stored model on the recent rows and predict."""
    X, y, x_now = training_rows(features, sentiment, market)
    residuals = y[-error_days:] - predict_model(est, X[-error_days:])
    recent_error = float(np.mean(np.abs(residuals)))
    return Candidate(name, float(predict_model(est, x_now)[0]), recent_error, 0, tuple(map(float, residuals)))

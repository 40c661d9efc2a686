"""Walk-forward evaluation of a pipeline's models, the selector, the ensemble and a naive baseline.

For each block of ``step`` trading days in the test period, every model is
fitted on the ``window`` rows before the block (whose targets were all known
by the block's first day) and predicts each day of the block. The selector
(C12's rule) picks, each day, the model with the lowest error over its
previous ``error_days`` out-of-sample predictions. Nothing of a test day is
seen before it is predicted.

With a pipeline spec (:mod:`stockdag.pipeline.spec`) the models are the spec's,
the ``market`` step adds the market factors (C14) to every fit, the
``ensemble`` step (C15's rule) weights each model by the inverse of the same
recent error, and the ``interval`` step (C16's rule) is scored by its coverage:
each day's interval is the selected model's prediction plus or minus the
split-conformal quantile of that model's previous ``error_days`` absolute errors.

Daily returns are close to a random walk: honest models score about a coin
flip on direction here (the committed figures: ``results/accuracy/``); much more
means look-ahead.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..domain.data.symbols import symbols_with_history
from ..domain.models.combine import conformal_halfwidth, ensemble_weights
from ..domain.models.compete import feature_columns, fit_model, predict_model
from ..domain.models.select import winner_index
from ..errors import InsufficientHistory
from ..pipeline.spec import PipelineSpec, load_pipeline
from ..pipeline.stages import model_frame

#: usable model rows before the first test day (the first block's fit)
MIN_TRAIN_ROWS = 100


@dataclass(frozen=True)
class Evaluation:
    """Per-day out-of-sample predictions (``daily``) and the metric table (``table``)."""

    daily: pd.DataFrame
    table: pd.DataFrame
    #: the interval step's measured coverage {"level", "coverage", "days", "mean_halfwidth"}; None without it
    coverage: dict | None = None


def _load(symbol: str, end: dt.date, source: str, data_dir: str | None, spec: PipelineSpec):
    """Every row up to ``end`` of the frame the models see (the pipeline's own front end)."""
    return model_frame(symbol, end, history_days=100_000, min_history=300, news_days=100_000,
                       source=source, data_dir=data_dir, pipeline=spec)


def walk_forward(symbol: str, start: dt.date, end: dt.date, *, window: int = 500, step: int = 20,
                 error_days: int = 20, source: str = "bundled", data_dir: str | None = None,
                 models: tuple[str, ...] | None = None, progress=None, pipeline=None) -> pd.DataFrame:
    """Out-of-sample predictions of every model for each test day of one symbol.

    ``models`` overrides the models of ``pipeline`` (a spec; None: the default five).
    """
    spec = load_pipeline(pipeline)
    market = "market" in spec.steps
    frame = _load(symbol, end, source, data_dir, spec)
    frame = frame.dropna(subset=["target"])  # the last day's next return is unknown
    names = tuple(models or spec.models)
    cols = feature_columns(market)
    X, y = frame[cols].to_numpy(), frame["target"].to_numpy()
    test = np.flatnonzero((frame.index >= pd.Timestamp(start)) & (frame.index <= pd.Timestamp(end)))
    if len(test) == 0:
        raise InsufficientHistory(f"{symbol}: no trading day with a known next-day return between {start} and {end}")
    if test[0] < MIN_TRAIN_ROWS:
        # a user's choice of dates: a clear one-line error (the CLI's exit code 2) naming a start that works
        hint = (f"choose a start on {frame.index[MIN_TRAIN_ROWS].date()} or later" if len(frame) > MIN_TRAIN_ROWS
                else f"the data have only {len(frame)} usable days up to {end}")
        raise InsufficientHistory(f"{symbol}: {int(test[0])} usable days before {start}, fewer than the {MIN_TRAIN_ROWS} "
                                  f"a first fit needs; {hint}")
    out = pd.DataFrame(index=frame.index[test], data={"actual": y[test]})
    out.insert(0, "symbol", symbol)
    for b0 in range(0, len(test), step):
        block = test[b0:b0 + step]
        lo = max(0, block[0] - window)
        for name in names:
            est = fit_model(name, X[lo:block[0]], y[lo:block[0]])
            out.loc[frame.index[block], name] = predict_model(est, X[block])
        if progress is not None:
            progress.update(len(names))
    # the selector: lowest mean absolute error over each model's previous error_days predictions
    errors = out[list(names)].sub(out["actual"], axis=0).abs()
    # no history yet on the first day: every score is inf and the first model is taken
    recent = errors.rolling(error_days, min_periods=1).mean().shift(1).fillna(np.inf)
    choice = pd.Series([names[winner_index(r)] for r in recent.to_numpy()], index=out.index)  # C12's own rule
    out["selector_model"] = choice
    out["selector"] = [out.at[i, c] for i, c in zip(out.index, choice)]
    # C15's rule on the same recent errors (equal weights while there is no history)
    weights = np.vstack([ensemble_weights(r) for r in recent.to_numpy()])
    out["ensemble"] = (weights * out[list(names)].to_numpy()).sum(axis=1)
    # C16's rule: the chosen model's previous error_days absolute errors calibrate the day's interval
    level = spec.interval_level
    err = errors.to_numpy()
    col = {n: j for j, n in enumerate(names)}
    half = [
        conformal_halfwidth(err[max(0, t - error_days):t, col[c]], level) if t > 0 else np.inf
        for t, c in enumerate(choice)
    ]
    out["interval_halfwidth"] = half
    return out


def coverage(daily: pd.DataFrame, level: float) -> dict:
    """How often the actual return fell in the selector's interval (days with a finite interval)."""
    half = daily["interval_halfwidth"].to_numpy()
    finite = np.isfinite(half)
    inside = np.abs(daily["actual"].to_numpy() - daily["selector"].to_numpy()) <= half
    return {"level": level, "coverage": float(np.mean(inside[finite])) if finite.any() else float("nan"),
            "days": int(finite.sum()), "mean_halfwidth": float(np.mean(half[finite])) if finite.any() else float("nan")}


def metrics(daily: pd.DataFrame, models: tuple[str, ...] | None = None, ensemble: bool = False) -> pd.DataFrame:
    """Directional accuracy and MAE of each model, the selector (winner-takes-all), the ensemble and the naive baselines."""
    names = list(models or load_pipeline(None).models) + ["selector"] + (["ensemble"] if ensemble else [])
    actual = daily["actual"].to_numpy()
    moved = actual != 0
    rows = []
    for name in names:
        pred = daily[name].to_numpy()
        rows.append({
            "model": name,
            "direction_accuracy": float(np.mean(np.sign(pred[moved]) == np.sign(actual[moved]))),
            "mae": float(np.mean(np.abs(pred - actual))),
        })
    rows.append({"model": "naive: zero return (MAE) / always up (direction)",
                 "direction_accuracy": float(np.mean(actual[moved] > 0)),
                 "mae": float(np.mean(np.abs(actual)))})
    table = pd.DataFrame(rows).set_index("model")
    table["days"] = int(len(daily))
    return table


def evaluate(symbols: list[str] | tuple[str, ...] | None, start="2011-01-01", end="2012-12-31", *, window: int = 500,
             step: int = 20, error_days: int = 20, source: str = "bundled", data_dir: str | None = None,
             models: tuple[str, ...] | None = None, show_progress: bool = False, pipeline=None) -> Evaluation:
    """Walk-forward evaluation over several symbols; see the module docstring.

    ``symbols`` None: every symbol of the source with ``window`` days of prices before ``start``
    (:func:`~stockdag.domain.data.symbols.symbols_with_history`).
    """
    spec: PipelineSpec = load_pipeline(pipeline)
    start_d, end_d = pd.Timestamp(start).date(), pd.Timestamp(end).date()
    if symbols is None:
        symbols = symbols_with_history(start_d - dt.timedelta(days=1), window, source, data_dir)
    names = tuple(models or spec.models)
    bar = None
    if show_progress:
        from tqdm import tqdm

        days = np.busday_count(start_d, end_d)
        bar = tqdm(total=len(symbols) * len(names) * int(np.ceil(days / step)), desc="walk-forward fits", unit="fit")
    try:
        daily = pd.concat([
            walk_forward(s, start_d, end_d, window=window, step=step, error_days=error_days,
                         source=source, data_dir=data_dir, models=names, progress=bar, pipeline=spec)
            for s in symbols
        ])
    finally:
        if bar is not None:
            bar.close()
    table = metrics(daily, names, ensemble="ensemble" in spec.steps)
    cov = coverage(daily, spec.interval_level) if "interval" in spec.steps else None
    return Evaluation(daily=daily, table=table, coverage=cov)

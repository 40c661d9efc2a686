"""The answer to one prediction request, as returned by both executors, and its JSON.

The JSON's shape is owned here, as typed dicts: :meth:`PredictionResult.to_dict`
fills :class:`PredictionJSON` (mypy checks its keys), ``stockdag predict --json``
prints it and the server's ``response_model`` validates what it sends against it.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, NotRequired

# pydantic (the server's response_model) reads typed dicts from typing_extensions only, on Python < 3.12
from typing_extensions import TypedDict

from .spec import PipelineSpec
from .stages import Prediction
from .table import stage_order, stage_table
from .trace import StageTrace, StageTraceJSON, Traced


class PredictionValues(TypedDict):
    last_close: float | None
    next_close: float | None
    next_return: float | None


class CandidateJSON(TypedDict):
    model: str
    prediction: float | None
    recent_error: float | None
    train_rows: int | None


class EnsembleJSON(TypedDict):
    """C15 (:class:`stockdag.pipeline.Ensemble`)."""

    next_return: float | None
    next_close: float | None
    weights: dict[str, float | None]


class IntervalJSON(TypedDict):
    """C16 (:class:`stockdag.pipeline.Interval`); an unbounded side is null."""

    level: float
    lower: float | None
    upper: float | None
    lower_close: float | None
    upper_close: float | None
    calibration_days: int


class PredictionJSON(TypedDict):
    """The prediction JSON of ``stockdag predict --json`` and ``GET /predict/{symbol}``."""

    symbol: str
    as_of: str
    requested_as_of: NotRequired[str]  # the date asked for, when it was not a trading day
    note: NotRequired[str]  # what was answered instead, in words
    profile: str
    source: str
    mode: str
    request_id: str
    prediction: PredictionValues
    winner: str
    candidates: list[CandidateJSON]
    sentiment: dict[str, Any]
    cache: dict[str, Any]
    trace: list[StageTraceJSON]
    pipeline: str
    ensemble: NotRequired[EnsembleJSON]  # when the pipeline spec has the ensemble step
    interval: NotRequired[IntervalJSON]  # when the pipeline spec has the interval step


def finite(value: Any) -> Any:
    """``value`` with NaN and infinities replaced by None, through dicts, lists and tuples: strict JSON has no such numbers."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


@dataclass(frozen=True)
class PredictionResult:
    """A prediction plus how it was made: mode, request id and the per-stage trace."""

    prediction: Prediction
    trace: tuple[StageTrace, ...]
    mode: str
    request_id: str

    @classmethod
    def from_traced(cls, traced: Traced, mode: str, request_id: str,
                    pipeline: PipelineSpec | None = None) -> PredictionResult:
        """``pipeline``: the request's spec, whose table orders stages that started together."""
        order = stage_order(stage_table(pipeline) if pipeline is not None else None)
        trace = tuple(sorted(traced.trace, key=lambda t: (t.start, order.get(t.id, len(order)))))
        return cls(traced.value, trace, mode, request_id)

    @property
    def winner(self) -> str:
        return self.prediction.winner

    def latency(self) -> float:
        """Seconds from the first stage's start to the last stage's end."""
        return max(t.end for t in self.trace) - min(t.start for t in self.trace)

    def to_dict(self) -> PredictionJSON:
        """The answer as :class:`PredictionJSON` (floats kept as they are: :func:`finite` makes it strict JSON)."""
        p = self.prediction
        d: PredictionJSON = {
            "symbol": p.symbol,
            "as_of": p.as_of.isoformat(),
            "profile": p.profile,
            "source": p.source,
            "mode": self.mode,
            "request_id": self.request_id,
            "prediction": {"last_close": p.last_close, "next_close": p.next_close, "next_return": p.next_return},
            "winner": p.winner,
            "candidates": [
                {"model": c.model, "prediction": c.prediction, "recent_error": c.recent_error, "train_rows": c.train_rows}
                for c in p.candidates
            ],
            "sentiment": p.sentiment,
            "cache": p.cache,
            "trace": [t.to_dict() for t in self.trace],
            "pipeline": p.pipeline,
        }
        # a weekend or holiday is answered from the last close before it, and says so
        if p.requested_as_of is not None:
            d["requested_as_of"] = p.requested_as_of.isoformat()
            d["note"] = (f"{p.requested_as_of.isoformat()} is not a trading day of {p.symbol}: "
                         f"predicted from the last close before it ({p.as_of.isoformat()})")
        if p.ensemble is not None:
            d["ensemble"] = {"next_return": p.ensemble.next_return, "next_close": p.ensemble.next_close,
                             "weights": dict(p.ensemble.weights)}
        if p.interval is not None:
            # an interval too wide for its calibration days is unbounded: null in JSON
            d["interval"] = finite(asdict(p.interval))
        return d

"""The answer to one prediction request, as returned by both executors."""
from __future__ import annotations

import math
from dataclasses import dataclass

from .spec import PipelineSpec
from .stages import Prediction
from .table import stage_order, stage_table
from .trace import StageTrace, Traced


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

    def to_dict(self) -> dict:
        p = self.prediction
        return {
            "symbol": p.symbol,
            "as_of": p.as_of.isoformat(),
            # a weekend or holiday is answered from the last close before it, and says so
            **({"requested_as_of": p.requested_as_of.isoformat(),
                "note": f"{p.requested_as_of.isoformat()} is not a trading day of {p.symbol}: "
                        f"predicted from the last close before it ({p.as_of.isoformat()})"}
               if p.requested_as_of is not None else {}),
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
            **({"ensemble": p.ensemble} if p.ensemble is not None else {}),
            # an interval too wide for its calibration days is unbounded: null in JSON
            **({"interval": {k: (None if isinstance(v, float) and math.isinf(v) else v) for k, v in p.interval.items()}}
               if p.interval is not None else {}),
        }

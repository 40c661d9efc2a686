"""C12 select: the competition between the pipeline's models.

The candidate with the lowest recent out-of-sample error wins (ties: the
earlier model in the pipeline spec). The selection keeps every candidate, so a
response shows the whole competition, not just the winner.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .compete import Candidate


@dataclass(frozen=True)
class Selection:
    winner: Candidate
    candidates: tuple[Candidate, ...]


def winner_index(recent_errors: Sequence[float]) -> int:
    """C12's rule: the index of the lowest recent error (ties, and all errors infinite: the earliest)."""
    if len(recent_errors) == 0:
        raise ValueError("no candidates to select from")
    return min(range(len(recent_errors)), key=lambda i: (recent_errors[i], i))


def select(candidates: list[Candidate] | tuple[Candidate, ...]) -> Selection:
    """Pick the candidate with the lowest ``recent_error`` (:func:`winner_index`)."""
    best = winner_index([c.recent_error for c in candidates])
    return Selection(winner=candidates[best], candidates=tuple(candidates))

"""C12 select: the competition between the pipeline's models.

The candidate with the lowest recent out-of-sample error wins (ties: the
earlier model in the pipeline spec). The selection keeps every candidate, so a
response shows the whole competition, not just the winner.
"""
from __future__ import annotations

from dataclasses import dataclass

from .compete import Candidate


@dataclass(frozen=True)
class Selection:
    winner: Candidate
    candidates: tuple[Candidate, ...]


def select(candidates: list[Candidate] | tuple[Candidate, ...]) -> Selection:
    """Pick the candidate with the lowest ``recent_error``."""
    if not candidates:
        raise ValueError("no candidates to select from")
    best = min(range(len(candidates)), key=lambda i: (candidates[i].recent_error, i))
    return Selection(winner=candidates[best], candidates=tuple(candidates))

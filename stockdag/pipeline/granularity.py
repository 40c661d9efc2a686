"""Pipeline granularity: how many stages one Dask task runs (``stockdag.pipeline.granularity``).

Kept apart from :mod:`stockdag.pipeline` so that the command line can offer the
choices without importing the pipeline. The task groups themselves are derived
from the stage table by :func:`stockdag.pipeline.task_groups`.
"""
from __future__ import annotations

from typing import Literal, TypeGuard, get_args

from ..errors import InvalidRequest

#: How many stages one Dask task runs (``stockdag.pipeline.granularity``):
#: ``stage`` one task a stage (12 tasks, 6 dependency levels); ``branch`` fuses
#: each chain of the stage graph into one task (C1+C6, C2+C3, C5+C4, each model,
#: C12: 9 tasks, 4 levels); ``request`` runs the whole pipeline as one task.
Granularity = Literal["stage", "branch", "request"]
#: what ``stockdag.pipeline.granularity`` accepts: a granularity, ``auto`` or
#: ``load`` (see :func:`resolve_granularity`)
GranularityChoice = Literal[Granularity, "auto", "load"]

GRANULARITIES: tuple[Granularity, ...] = get_args(Granularity)
GRANULARITY_CHOICES: tuple[GranularityChoice, ...] = get_args(GranularityChoice)


def _is_granularity(name: str) -> TypeGuard[Granularity]:
    return name in GRANULARITIES


def resolve_granularity(granularity: str, threads: int | None, in_flight: int | None = None) -> Granularity:
    """The granularity to build for a cluster running ``threads`` tasks at once (None: unknown).

    ``auto`` is ``request`` on one thread (every stage would run there anyway, so
    each extra task is only a scheduler round trip), ``branch`` on more (a chain
    gains nothing from running apart), and ``stage`` when nothing is known (the
    finest, so any strategy can still spread it). ``load`` is ``auto`` that also
    builds ``request`` while the submitting client already has ``in_flight`` >=
    ``threads`` requests running: with every thread busy a request's own
    parallelism wins nothing (the reasoning of the ``adaptive`` strategy) and one
    task is the fewest round trips. Any other name is checked and returned.
    """
    if granularity in ("auto", "load"):
        if threads is None:
            return "stage"
        if threads <= 1 or (granularity == "load" and in_flight is not None and in_flight >= threads):
            return "request"
        return "branch"
    if not _is_granularity(granularity):
        raise InvalidRequest(f"unknown granularity {granularity!r}; choose one of: {', '.join(GRANULARITY_CHOICES)}")
    return granularity

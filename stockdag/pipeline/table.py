"""The stage table: stages of a pipeline spec as data, in topological order.

Everything that needs the stage list derives it from here. See :doc:`/guides/pipeline`.
"""
from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .. import config
from ..domain.models import MODELS_BY_NAME
from .granularity import GRANULARITIES, GRANULARITY_CHOICES, resolve_granularity  # noqa: F401  (re-exported)
from .spec import DEFAULT as DEFAULT_PIPELINE
from .spec import PipelineSpec
from .stages import (
    cache_stage,
    ensemble_stage,
    fetch_market_stage,
    fetch_news_stage,
    fetch_prices_stage,
    interval_stage,
    make_features_stage,
    market_features_stage,
    model_stage,
    parse_request_stage,
    score_sentiment_stage,
    select_stage,
)


# ---------------------------------------------------------------- the stage table
@dataclass(frozen=True)
class Stage:
    """One pipeline stage: id (C1..C12), name (used in task keys), function, inputs (stage ids)."""

    id: str
    name: str
    func: Callable[..., Any]
    inputs: tuple[str, ...]
    description: str


@functools.lru_cache(maxsize=64)
def stage_table(spec: PipelineSpec = DEFAULT_PIPELINE) -> tuple[Stage, ...]:
    """The stages of ``spec``, in topological order; the last one answers the request."""
    market = "market" in spec.steps
    models = [MODELS_BY_NAME[name] for name in spec.models]
    model_inputs = ("C1", "C3", "C4", "C14") if market else ("C1", "C3", "C4")
    stages = [
        Stage("C1", "parse_request", parse_request_stage, (), "validate symbol, as-of date, profile; normalise"),
        Stage("C6", "cache", cache_stage, ("C1",), "caching layer in front of C2 and C5"),
        Stage("C2", "fetch_prices", fetch_prices_stage, ("C1", "C6"), "price retriever"),
        Stage("C5", "fetch_news", fetch_news_stage, ("C1", "C6"), "news retriever"),
        Stage("C3", "make_features", make_features_stage, ("C1", "C2"), "technical indicators"),
        Stage("C4", "score_sentiment", score_sentiment_stage, ("C1", "C5"), "VADER sentiment per day"),
    ]
    if market:
        stages += [
            Stage("C13", "fetch_market", fetch_market_stage, ("C1",), "market retriever: the other symbols' prices"),
            Stage("C14", "market_features", market_features_stage, ("C1", "C13"), "market and peer factors"),
        ]
    stages += [
        Stage(m.id, m.name, functools.partial(model_stage, m.name), model_inputs, f"model: {m.family}")
        for m in models
    ]
    stages.append(Stage("C12", "select", select_stage, ("C1", "C2", "C5", "C4", *(m.id for m in models)),
                        "competition: lowest recent error wins"))
    last = "C12"
    if "ensemble" in spec.steps:
        stages.append(Stage("C15", "ensemble", ensemble_stage, ("C1", last), "inverse-error weighted ensemble"))
        last = "C15"
    if "interval" in spec.steps:
        stages.append(Stage("C16", "interval", interval_stage, ("C1", last), "split-conformal prediction interval"))
    return tuple(stages)


def final_id(stages: tuple[Stage, ...]) -> str:
    """The id of the stage whose output is the request's answer (the table's last)."""
    return stages[-1].id


def stage_order(stages: tuple[Stage, ...] | None = None) -> dict[str, int]:
    """stage id -> position in the table (the default spec's when None)."""
    return {s.id: i for i, s in enumerate(stages or STAGES)}


@functools.cache
def active_table() -> tuple[Stage, ...]:
    """The stage table of this process's configured pipeline (``stockdag.pipeline.spec``), for client-side tools.

    Requests carry their own spec; use ``stage_table(request.pipeline)`` wherever a request is at hand.
    """
    from .spec import load_pipeline

    return stage_table(load_pipeline(config.get("pipeline.spec")))


@functools.cache
def step_stage_ids(step: str) -> tuple[str, ...]:
    """The stage ids a spec's optional ``step`` adds to the table."""
    base = {s.id for s in stage_table(DEFAULT_PIPELINE)}
    return tuple(s.id for s in stage_table(dataclasses.replace(DEFAULT_PIPELINE, steps=(step,))) if s.id not in base)


def spec_for_ids(ids: Iterable[str]) -> PipelineSpec:
    """The pipeline whose stages are ``ids`` (e.g. the ids of recorded traces), for tools that have no spec.

    Models are taken in registry order, which only changes display order: the
    graph's edges are the same.
    """
    from ..domain.models import REGISTRY
    from .spec import STEPS

    ids = set(ids)
    models = tuple(m.name for m in REGISTRY if m.id in ids) or DEFAULT_PIPELINE.models
    steps = tuple(step for step in STEPS if set(step_stage_ids(step)) <= ids)
    return PipelineSpec(name="traced", models=models, steps=steps)


def order_stage_ids(ids: Iterable[str]) -> list[str]:
    """``ids`` in the order of the stage table they belong to; ids of no table last, sorted."""
    ids = set(ids)
    order = stage_order(stage_table(spec_for_ids(ids)))
    return sorted(ids, key=lambda i: (order.get(i, len(order)), i))


#: the default spec's table (C1-C12, five models); code serving a request reads ``stage_table(request.pipeline)``
STAGES: tuple[Stage, ...] = stage_table(DEFAULT_PIPELINE)
STAGES_BY_ID = {s.id: s for s in STAGES}
FINAL = final_id(STAGES)


def task_key(stage: Stage, request_id: str) -> str:
    """The task key of ``stage`` for one request: unique per request."""
    return f"{stage.name}-{request_id}"

"""The inference pipeline: the stage table (C1-C12, and more) and the ``dask.delayed`` graph.

Figure 1.1 of the design report, as data::

    C1 parse_request
     ├─ C6 cache ─┬─ C2 fetch_prices ── C3 make_features ──┐
     │            └─ C5 fetch_news ──── C4 score_sentiment ┼─ models ── C12 select ── [C15 ensemble] ── [C16 interval]
     └─ [C13 fetch_market ── C14 market_features] ─────────┘

A pipeline spec (:mod:`stockdag.pipeline.spec`) names its models and optional
steps (bracketed); :func:`stage_table` turns it into the stage table
(:mod:`stockdag.pipeline.table`); :func:`build_graph` builds a request's delayed
graph from the table and :func:`run_stages` runs the same stage functions
(:mod:`stockdag.pipeline.stages`) one after another with no Dask: the
centralized baseline (:mod:`stockdag.pipeline.graph`).
"""
from __future__ import annotations

from .bounds import CriticalPath, best_schedule, critical_path, stage_layers, width, work
from .granularity import GRANULARITIES, GRANULARITY_CHOICES, resolve_granularity
from .graph import TaskGroup, build_graph, graph_keys, request_task, run_group, run_stages, task_groups
from .stages import (
    CacheLookup,
    Prediction,
    cache_stage,
    emulated_delay,
    ensemble_stage,
    fetch_market_stage,
    fetch_news_stage,
    fetch_prices_stage,
    interval_stage,
    make_features_stage,
    market_features_stage,
    model_frame,
    model_stage,
    parse_request_stage,
    score_sentiment_stage,
    select_stage,
)
from .table import (
    FINAL,
    STAGES,
    STAGES_BY_ID,
    Stage,
    active_table,
    final_id,
    order_stage_ids,
    spec_for_ids,
    stage_order,
    stage_table,
    step_stage_ids,
    task_key,
)

__all__ = [
    "FINAL", "GRANULARITIES", "GRANULARITY_CHOICES", "STAGES", "STAGES_BY_ID", "CacheLookup", "CriticalPath", "Prediction", "Stage",
    "TaskGroup", "active_table", "best_schedule", "build_graph", "cache_stage", "critical_path", "emulated_delay", "ensemble_stage", "fetch_market_stage",
    "fetch_news_stage", "fetch_prices_stage", "final_id", "graph_keys", "interval_stage", "make_features_stage",
    "market_features_stage", "model_frame", "model_stage", "order_stage_ids", "parse_request_stage", "request_task",
    "resolve_granularity", "run_group", "run_stages", "score_sentiment_stage", "select_stage", "spec_for_ids",
    "stage_layers", "stage_order", "stage_table", "step_stage_ids", "task_groups", "task_key", "width", "work",
]

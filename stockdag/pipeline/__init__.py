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

import importlib
from typing import Any

# imported on first use (PEP 562): the submodules pull in pandas, scikit-learn and nltk, which
# `stockdag --help` and the modes/granularity vocabularies never need
_LAZY = {
    "active_table": "table",
    "best_schedule": "bounds",
    "build_graph": "graph",
    "cache_stage": "stages",
    "CacheLookup": "stages",
    "critical_path": "bounds",
    "CriticalPath": "bounds",
    "emulated_delay": "stages",
    "Ensemble": "stages",
    "ensemble_stage": "stages",
    "fetch_market_stage": "stages",
    "fetch_news_stage": "stages",
    "fetch_prices_stage": "stages",
    "FINAL": "table",
    "final_id": "table",
    "GRANULARITIES": "granularity",
    "GRANULARITY_CHOICES": "granularity",
    "graph_keys": "graph",
    "Interval": "stages",
    "interval_stage": "stages",
    "make_features_stage": "stages",
    "market_features_stage": "stages",
    "model_frame": "stages",
    "model_stage": "stages",
    "order_stage_ids": "table",
    "parse_request_stage": "stages",
    "Prediction": "stages",
    "request_task": "graph",
    "resolve_granularity": "granularity",
    "run_group": "graph",
    "run_stages": "graph",
    "score_sentiment_stage": "stages",
    "select_stage": "stages",
    "spec_for_ids": "table",
    "Stage": "table",
    "stage_layers": "bounds",
    "stage_order": "table",
    "stage_table": "table",
    "STAGES": "table",
    "STAGES_BY_ID": "table",
    "step_stage_ids": "table",
    "task_groups": "graph",
    "task_key": "table",
    "TaskGroup": "graph",
    "width": "bounds",
    "work": "bounds",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

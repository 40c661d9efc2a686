"""stockdag: a stock-prediction inference pipeline as a Dask graph.

Run it centralized (one process, stage after stage) or distributed (a Dask
cluster), place its tasks with pluggable strategies, serve it over HTTP and
measure it from the client side.
"""
from __future__ import annotations

__version__ = "0.1.0"

from . import config  # noqa: F401  (loads the defaults into dask.config)
from .errors import (
    DataSourceError,
    InsufficientHistory,
    InvalidRequest,
    ModelStoreError,
    OutsideData,
    StockdagError,
    UnknownSymbol,
)

# imported on first use (PEP 562): they pull in the pipeline, pandas, scikit-learn and nltk, which
# `stockdag --help` and most commands never need
_LAZY = {"predict": ".run.api", "PredictionResult": ".pipeline.result"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "predict",
    "PredictionResult",
    "StockdagError",
    "InvalidRequest",
    "InsufficientHistory",
    "OutsideData",
    "UnknownSymbol",
    "DataSourceError",
    "ModelStoreError",
]

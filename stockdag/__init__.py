"""stockdag: a stock-prediction inference pipeline as a Dask graph.

Run it centralized (one process, stage after stage) or distributed (a Dask
cluster), place its tasks with pluggable strategies, serve it over HTTP and
measure it from the client side.
"""
from __future__ import annotations

__version__ = "0.1.0"

from . import config  # noqa: F401  (loads the defaults into dask.config)
from .errors import (  # noqa: F401
    DataSourceError,
    InsufficientHistory,
    InvalidRequest,
    ModelStoreError,
    StockdagError,
    UnknownSymbol,
)
from .api import predict  # noqa: E402,F401
from .result import PredictionResult  # noqa: E402,F401

__all__ = [
    "predict",
    "PredictionResult",
    "StockdagError",
    "InvalidRequest",
    "InsufficientHistory",
    "UnknownSymbol",
    "DataSourceError",
    "ModelStoreError",
]

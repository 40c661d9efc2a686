"""stockdag: a stock-prediction inference pipeline as a Dask graph.

Run it centralized (one process, stage after stage) or distributed (a Dask
cluster), place its tasks with pluggable strategies, serve it over HTTP and
measure it from the client side.

The public API is :data:`__all__`: what a user calls or extends. Everything
else (every other module and name) is internal and may change.
"""
from __future__ import annotations

import importlib as _importlib  # (private names: only __all__ is public, a test holds it)
import importlib.metadata as _metadata
from typing import Any as _Any

try:  # one place: the git tag the installed distribution was built from (setuptools-scm, pyproject.toml)
    __version__ = _metadata.version(__name__)
except _metadata.PackageNotFoundError:  # a source tree on sys.path that was never installed
    __version__ = "0+unknown"

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

# imported on first use (PEP 562): they pull in the pipeline, pandas, scikit-learn, nltk and distributed,
# which `stockdag --help` and most commands never need. name -> (module, attribute; None: the module itself)
_LAZY: dict[str, tuple[str, str | None]] = {
    "predict": (".run.api", "predict"),
    "PredictionResult": (".pipeline.result", "PredictionResult"),
    "PredictionJSON": (".pipeline.result", "PredictionJSON"),
    "Mode": (".pipeline.modes", "Mode"),
    "Granularity": (".pipeline.granularity", "Granularity"),
    "build_graph": (".pipeline.graph", "build_graph"),
    "run_stages": (".pipeline.graph", "run_stages"),
    "CentralizedExecutor": (".run.centralized", "CentralizedExecutor"),
    "DistributedExecutor": (".run.distributed", "DistributedExecutor"),
    "Strategy": (".placement.base", "Strategy"),
    "TaskInfo": (".placement.base", "TaskInfo"),
    "WorkerInfo": (".placement.base", "WorkerInfo"),
    "PlacementPlugin": (".placement.plugin", "PlacementPlugin"),
    "deploy": (".deploy", None),  # deploy.start(spec) starts a cluster and tears it down on exit
}


def __getattr__(name: str) -> _Any:
    if name in _LAZY:
        module, attribute = _LAZY[name]
        value = _importlib.import_module(module, __name__)
        if attribute is not None:
            value = getattr(value, attribute)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(__all__) | {"__version__"})


__all__ = [
    "build_graph",
    "CentralizedExecutor",
    "DataSourceError",
    "deploy",
    "DistributedExecutor",
    "Granularity",
    "InsufficientHistory",
    "InvalidRequest",
    "Mode",
    "ModelStoreError",
    "OutsideData",
    "PlacementPlugin",
    "predict",
    "PredictionJSON",
    "PredictionResult",
    "run_stages",
    "StockdagError",
    "Strategy",
    "TaskInfo",
    "UnknownSymbol",
    "WorkerInfo",
]

"""Experiments: the sweep runner the notebooks call, analysis, charts and reports."""
from __future__ import annotations

import importlib as _importlib
from typing import Any as _Any

# imported on first use (PEP 562): the report and the sweep need the experiments extra (matplotlib, scipy, the
# load generator); the machine facts (.facts), which every result records, the demo's on the core, need none of it.
# name -> module
_LAZY = {
    "build": ".report",
    "build_index": ".report",
    "Configuration": ".sweep",
    "Point": ".sweep",
    "SweepParams": ".sweep",
    "run_sweep": ".sweep",
    "summarize_run": ".sweep",
}


def __getattr__(name: str) -> _Any:
    if name in _LAZY:
        value = getattr(_importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted(_LAZY)

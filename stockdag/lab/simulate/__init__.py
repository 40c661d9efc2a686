"""A discrete-event model of the serving system, calibrated on measured runs (SimPy).

:mod:`.model` simulates one configuration under one load (the same arrivals,
summary fields and placement strategy objects as the real system);
:mod:`.calibrate` fits its inputs from a run folder; :mod:`.validate` compares
it with every measured point; :mod:`.planner` searches for the cheapest
cluster that holds a latency objective; :mod:`.scale` makes the test-case
table and curves at n machines for a run's REPORT.
"""
from __future__ import annotations

__all__ = ["MODES", "Costs", "Overheads", "SimConfig", "SimWorker", "critical_path", "simulate"]


def __getattr__(name: str):
    """The model's names, imported on first use (PEP 562): ``stockdag --help`` imports :mod:`.cli`, not SimPy or pandas."""
    if name in __all__:
        from . import model

        return getattr(model, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

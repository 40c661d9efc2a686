"""A discrete-event model of the serving system, calibrated on measured runs (SimPy).

:mod:`.model` simulates one configuration under one load (the same arrivals,
summary fields and placement strategy objects as the real system);
:mod:`.calibrate` fits its inputs from a run folder; :mod:`.validate` compares
it with every measured point; :mod:`.planner` searches for the cheapest
cluster that holds a latency objective; :mod:`.scale` makes the test-case
table and curves at n machines for a run's REPORT.
"""
from __future__ import annotations

from .model import MODES, Costs, Overheads, SimConfig, SimWorker, critical_path, simulate

__all__ = ["MODES", "Costs", "Overheads", "SimConfig", "SimWorker", "critical_path", "simulate"]

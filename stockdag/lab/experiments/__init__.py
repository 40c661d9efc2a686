"""Experiments: the sweep runner the notebooks call, analysis, charts and reports."""
from .report import build, build_index  # noqa: F401
from .sweep import Configuration, Point, SweepParams, run_sweep, summarize_run  # noqa: F401

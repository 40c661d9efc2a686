"""The web app's data model, without Bokeh, one module a concern (this module re-exports them):

:mod:`.form`
    :func:`parse_form`, :func:`parse_url`, :class:`FormError`: the form's checks.
:mod:`.probe`
    :func:`probe`, :class:`Target`: what is at a URL.
:mod:`.live`
    :class:`LiveRun`: the load generator in a background thread.
:mod:`.stats`
    :class:`LiveStats`: the live statistics.
:mod:`.store`
    :class:`RunStore`: finished runs on disk.
:mod:`.charts`
    :func:`gantt`, :func:`latency_cdf`, :func:`throughput_series`: chart columns.
"""
from __future__ import annotations

from .charts import gantt, latency_cdf, throughput_series
from .form import FormError, parse_form, parse_url
from .live import LiveRun
from .probe import Target, probe
from .stats import COL, STATUS_COLORS, TABLE_PERCENTILES, LiveStats, outcome, parse_trace
from .store import RunStore

__all__ = ["FormError", "parse_form", "parse_url", "Target", "probe", "LiveRun", "LiveStats", "COL", "STATUS_COLORS",
           "TABLE_PERCENTILES", "outcome", "parse_trace", "RunStore", "gantt", "latency_cdf", "throughput_series"]

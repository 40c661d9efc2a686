"""Client-side measurement: a coordinated-omission-correct HTTP load generator.

:func:`run` (or :func:`arun` from async code) sends requests described by a
:class:`BenchConfig`, open loop at a target rate (latency from each request's
intended send time, as wrk2 does) or closed loop with N users, records every
request and summarises them with an HDR histogram. A stockdag server gets a
seeded :class:`RequestMix` of ``/predict/{symbol}?as_of=`` paths.
``stockdag bench URL`` is the command line on top of it.

Extend by adding fields to :class:`BenchConfig` and handling them in
``loadgen.LoadRun``; summaries only ever read the raw records, so a new field
never changes how old record files are summarised.
"""
from __future__ import annotations

from .loadgen import ARRIVALS, BenchConfig, BenchResult, LoadRun, arun, probe_stockdag, result_from, run, write_records
from .mix import DISTRIBUTIONS, RequestMix
from .summary import MIN_SAMPLES, PERCENTILES, RECORD_COLUMNS, Summary, histogram, percentiles, summarize, supported, supported_text

__all__ = [
    "ARRIVALS", "BenchConfig", "BenchResult", "LoadRun", "arun", "result_from", "run", "probe_stockdag", "write_records",
    "DISTRIBUTIONS", "RequestMix", "PERCENTILES", "RECORD_COLUMNS", "Summary", "histogram", "percentiles",
    "summarize", "MIN_SAMPLES", "supported", "supported_text",
]

"""Client-side measurement: a coordinated-omission-correct HTTP load generator.

:func:`run` (or :func:`arun` from async code) sends requests described by a
:class:`BenchConfig`, open loop at a target rate (latency from each request's
intended send time, as wrk2 does) or closed loop with N users, records every
request and summarises them with an HDR histogram. A stockdag server gets a
seeded :class:`RequestMix` of ``/predict/{symbol}?as_of=`` paths.
``stockdag bench URL`` is the command line on top of it. The names of arrivals,
mixes and loops are owned by :mod:`stockdag.lab.bench.vocabulary` (re-exported here:
:data:`ARRIVALS`, :data:`MIXES`, :data:`LOOPS`); the rest is imported on first use.

Extend by adding fields to :class:`BenchConfig` and handling them in
``loadgen.LoadRun``; summaries only ever read the raw records, so a new field
never changes how old record files are summarised.
"""
from __future__ import annotations

import importlib

from .vocabulary import ARRIVALS, LOOPS, MIXES

#: name -> the module that defines it; imported on first use, so the vocabulary is cheap to import
_LAZY = {
    **dict.fromkeys(("BenchConfig", "BenchResult", "LoadRun", "arun", "probe_stockdag", "result_from", "run",
                     "write_records"), "loadgen"),
    **dict.fromkeys(("DISTRIBUTIONS", "RequestMix"), "mix"),
    "prepare": "configure",
    **dict.fromkeys(("MIN_SAMPLES", "PERCENTILES", "RECORD_COLUMNS", "Summary", "histogram", "percentiles", "summarize",
                     "supported", "supported_text", "percentile_label", "min_samples"), "summary"),
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__all__ = ["ARRIVALS", "MIXES", "LOOPS", *_LAZY]

"""Stage traces: which process ran each stage, and when.

A stage never knows which executor runs it. The pipeline wraps each stage
call in :func:`run_traced`, which passes plain values to the stage and keeps
a :class:`StageTrace` for it beside the value, so both executors produce the
same trace without the stages knowing.
"""
from __future__ import annotations

import os
import socket
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class StageTrace:
    id: str
    stage: str
    worker: str
    start: float
    end: float
    planned_worker: str | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["duration"] = self.end - self.start
        return d


@dataclass(frozen=True)
class Traced:
    """A stage's value with the traces of that stage and everything upstream of it."""

    value: Any
    trace: tuple[StageTrace, ...]


def current_worker() -> str:
    """The Dask worker address running this code, else ``local:<host>:<pid>``."""
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return f"local:{socket.gethostname()}:{os.getpid()}"


def run_traced(stage_id: str, stage_name: str, func: Callable, *inputs: Any) -> Traced:
    """Call ``func`` on the unwrapped inputs and record when and where it ran."""
    values, traces = [], {}
    for item in inputs:
        if isinstance(item, Traced):
            values.append(item.value)
            for t in item.trace:
                traces[t.id] = t
        else:
            values.append(item)
    start = time.time()
    value = func(*values)
    end = time.time()
    traces[stage_id] = StageTrace(stage_id, stage_name, current_worker(), start, end)
    return Traced(value, tuple(traces.values()))

"""Stage traces: which process ran each stage, and when.

A stage never knows which executor runs it. The pipeline wraps each stage
call in :func:`run_traced`, which passes plain values to the stage and keeps
a :class:`StageTrace` for it beside the value, so both executors produce the
same trace without the stages knowing.
"""
from __future__ import annotations

import os
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from typing_extensions import TypedDict  # pydantic reads typed dicts from typing_extensions only, on Python < 3.12

from ..errors import StockdagError


class StageTraceJSON(TypedDict):
    """:class:`StageTrace` in the prediction JSON, with its duration."""

    id: str
    stage: str
    worker: str
    start: float
    end: float
    planned_worker: str | None
    duration: float


@dataclass(frozen=True)
class StageTrace:
    id: str
    stage: str
    worker: str
    start: float
    end: float
    planned_worker: str | None = None

    def to_dict(self) -> StageTraceJSON:
        return StageTraceJSON(id=self.id, stage=self.stage, worker=self.worker, start=self.start, end=self.end,
                              planned_worker=self.planned_worker, duration=self.end - self.start)


@dataclass(frozen=True)
class Traced:
    """A stage's value with the traces of that stage and everything upstream of it."""

    value: Any
    trace: tuple[StageTrace, ...]


def current_place() -> tuple[str, str | None]:
    """``(worker, planned worker)`` of the running task.

    The planned worker is what the placement plugin wrote into the task's
    ``stockdag`` annotation (sent to the worker with the task), None when no
    plugin planned it or outside Dask.
    """
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        return f"local:{socket.gethostname()}:{os.getpid()}", None
    key = worker.active_threads.get(threading.get_ident())
    ts = worker.state.tasks.get(key) if key is not None else None
    ann = (ts.annotations or {}).get("stockdag") if ts is not None else None
    planned = ann.get("planned") if isinstance(ann, dict) else None
    return worker.address, planned


#: request errors (4xx stockdag errors) a stage raised in this process, by Dask task key, until the worker's
#: log filter (stockdag.run.worker_logs) takes them: it knows them by their class, not by a name in the log text
_REQUEST_ERRORS: OrderedDict[Hashable, BaseException] = OrderedDict()
_REQUEST_ERRORS_KEPT = 1000  # a bound for errors no filter takes (a worker without the filter)
_request_errors_lock = threading.Lock()


def _current_key() -> Hashable | None:
    try:
        from distributed import get_worker

        key: Hashable | None = get_worker().active_threads.get(threading.get_ident())
    except (ImportError, ValueError):
        return None
    return key


def note_request_error(exc: BaseException, key: Hashable | None = None) -> None:
    """Remember that the task ``key`` (default: the running task) failed with the request error ``exc``."""
    key = _current_key() if key is None else key
    if key is None:
        return
    with _request_errors_lock:
        _REQUEST_ERRORS[key] = exc
        while len(_REQUEST_ERRORS) > _REQUEST_ERRORS_KEPT:
            _REQUEST_ERRORS.popitem(last=False)


def take_request_error(key: Hashable) -> BaseException | None:
    """The request error a stage of task ``key`` raised in this process (forgotten once taken), else None."""
    with _request_errors_lock:
        return _REQUEST_ERRORS.pop(key, None)


def run_traced(stage_id: str, stage_name: str, func: Callable[..., Any], *inputs: Any) -> Traced:
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
    try:
        value = func(*values)
    except StockdagError as exc:
        if 400 <= exc.http_status < 500:  # the client's mistake, answered with a 4xx: not a worker failure
            note_request_error(exc)
        raise
    end = time.time()
    worker, planned = current_place()
    traces[stage_id] = StageTrace(stage_id, stage_name, worker, start, end, planned)
    return Traced(value, tuple(traces.values()))

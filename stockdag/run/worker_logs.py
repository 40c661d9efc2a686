"""A worker's log without false alarms: a heartbeat lost at shutdown, a request error (not tracebacks).

When a cluster closes, the scheduler can close its connections while a
worker's heartbeat is in flight (on a busy machine a nanny may not have stopped
its worker yet). distributed then logs "Failed to communicate with scheduler
during heartbeat" at ERROR with the connection's traceback, into the terminal
of a ``stockdag predict`` that succeeded. :class:`WorkerLogs` is a worker
plugin whose filter drops that record while the worker is closing, and turns
it into a one-line warning otherwise (a scheduler that really went away is
still reported); that message with any other exception passes unchanged.

A request error (an unknown symbol, a date outside the data: any
:class:`~stockdag.errors.StockdagError` the server answers with a 4xx) raised
by a stockdag stage on a worker (an instance of the class, noted where the stage
raised it) is the client's mistake, not the worker's. distributed
logs it as "Compute Failed" at ERROR with the task and its traceback; the same
filter drops that record, or shortens it to one line when the worker's logger
is at DEBUG. Most such errors are refused before anything is submitted; this
covers the ones only a worker can find (a live yfinance source, which cannot
list its symbols up front). A "Compute Failed" of any other exception passes
unchanged, whatever its class is called.
"""
from __future__ import annotations

import logging
import weakref

from distributed.comm.core import CommClosedError
from distributed.core import Status
from distributed.diagnostics.plugin import WorkerPlugin
from tornado.iostream import StreamClosedError

NAME = "stockdag-worker-logs"
MESSAGE = "Failed to communicate with scheduler during heartbeat"
_CLOSING = {Status.closing, Status.closed, Status.closing_gracefully, Status.failed}
COMPUTE_FAILED = "Compute Failed"


def _request_error(record: logging.LogRecord) -> str | None:
    """The exception text of a "Compute Failed" record of a task whose stage raised a request error, else None.

    The class is checked where the stage raised it (:func:`stockdag.pipeline.trace.run_traced` notes a 4xx
    :class:`~stockdag.errors.StockdagError` by task key): a task of someone else's raising an exception
    of the same name is logged as distributed logs it.
    """
    if not str(record.msg).startswith(COMPUTE_FAILED) or not isinstance(record.args, tuple) or len(record.args) < 4:
        return None
    from ..pipeline.trace import take_request_error

    return str(record.args[3]) if take_request_error(record.args[0]) is not None else None


class WorkerLogFilter(logging.Filter):
    """Filter for the ``distributed.worker`` logger of one worker: lost heartbeats at shutdown, request errors."""

    def __init__(self, worker=None):
        super().__init__()
        self._worker = weakref.ref(worker) if worker is not None else (lambda: None)
        self.dropped = 0
        self.shortened = 0
        self.request_errors = 0

    def filter(self, record: logging.LogRecord) -> bool:
        request_error = _request_error(record)
        if request_error is not None:
            self.request_errors += 1
            if not logging.getLogger(record.name).isEnabledFor(logging.DEBUG):
                return False
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            record.msg, record.args = f"request error in task {record.args[0]!r} (answered to the client): {request_error}", ()
            record.exc_info, record.exc_text = None, None
            return True
        exc = record.exc_info[1] if record.exc_info else None
        if not (isinstance(exc, (CommClosedError, StreamClosedError)) and str(record.msg).startswith(MESSAGE)):
            return True
        worker = self._worker()
        if worker is None or getattr(worker, "status", None) in _CLOSING:
            self.dropped += 1
            return False
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.msg, record.args = f"{MESSAGE}: {exc}", ()
        record.exc_info, record.exc_text = None, None
        self.shortened += 1
        return True


class WorkerLogs(WorkerPlugin):
    """Installs :class:`WorkerLogFilter` on the worker's logger (and removes it on teardown)."""

    name = NAME

    def setup(self, worker) -> None:
        self.filter = WorkerLogFilter(worker)
        logging.getLogger("distributed.worker").addFilter(self.filter)

    def teardown(self, worker) -> None:
        logging.getLogger("distributed.worker").removeFilter(self.filter)


def install(client):
    """Register the plugin on ``client``'s workers (an awaitable for an asynchronous client)."""
    return client.register_plugin(WorkerLogs(), name=NAME)

"""A worker's heartbeat lost while a cluster closes is not printed as a traceback (stockdag.run.worker_logs)."""
import logging
import sys

from distributed import Client, LocalCluster
from distributed.comm.core import CommClosedError
from distributed.core import Status

from stockdag.run import worker_logs
from stockdag.run.worker_logs import MESSAGE, WorkerLogFilter


def _record(exc: BaseException, msg: str = MESSAGE + ".") -> logging.LogRecord:
    try:
        raise exc
    except BaseException:
        info = sys.exc_info()
    return logging.LogRecord("distributed.worker", logging.ERROR, __file__, 1, msg, (), info)


class _Worker:
    def __init__(self, status):
        self.status = status


def _worker(status):
    return _Worker(status)


def test_dropped_while_the_worker_closes():
    w = _worker(Status.closing)
    f = WorkerLogFilter(w)
    assert f.filter(_record(CommClosedError("in <TCP (closed)>: Stream is closed"))) is False
    assert f.dropped == 1


def test_one_line_warning_while_the_worker_runs():
    w = _worker(Status.running)
    f = WorkerLogFilter(w)
    rec = _record(CommClosedError("Stream is closed"))
    assert f.filter(rec) is True
    assert rec.levelno == logging.WARNING and rec.exc_info is None
    formatted = logging.Formatter("%(levelname)s %(message)s").format(rec)
    assert "Traceback" not in formatted and "Stream is closed" in formatted and "\n" not in formatted


def test_other_records_pass_unchanged():
    w = _worker(Status.closing)
    f = WorkerLogFilter(w)
    other_exc = _record(ValueError("boom"))
    other_msg = _record(CommClosedError("x"), msg="Unexpected exception during heartbeat. Closing worker.")
    for rec in (other_exc, other_msg):
        level, info = rec.levelno, rec.exc_info
        assert f.filter(rec) is True
        assert rec.levelno == level and rec.exc_info is info
    assert f.dropped == 0 and f.shortened == 0


def test_installed_on_the_workers_of_an_executor():
    from stockdag.run.distributed import DistributedExecutor

    with LocalCluster(n_workers=1, processes=False, protocol="tcp://", host="127.0.0.1", dashboard_address="127.0.0.1:0",
                      scheduler_kwargs={"dashboard": False}, silence_logs=logging.ERROR) as cluster, \
            Client(cluster) as client:
        DistributedExecutor(client=client, strategy="dask")
        (worker,) = cluster.workers.values()
        assert worker_logs.NAME in worker.plugins
        filters = [f for f in logging.getLogger("distributed.worker").filters if isinstance(f, WorkerLogFilter)]
        assert filters and filters[-1]._worker() is worker


def _compute_failed(exception: BaseException, noted: bool = True) -> logging.LogRecord:
    """The record distributed.worker makes (key, state, task, exception text, traceback text); ``noted``: as if a
    stockdag stage of that task raised it (stockdag.pipeline.trace.run_traced notes the request errors it sees)."""
    from stockdag.pipeline.trace import note_request_error

    if noted:
        note_request_error(exception, key="C2-abc")
    args = ("C2-abc", "executing", "<Task 'C2-abc' run_traced(...)>", repr(exception), '  File "x.py", line 1\n')
    return logging.LogRecord("distributed.worker", logging.ERROR, __file__, 1,
                             "Compute Failed\nKey:       %s\nState:     %s\nTask:  %s\nException: %r\nTraceback: %r\n",
                             args, None)


def test_request_errors_are_not_logged_as_failed_computations():
    from stockdag.errors import OutsideData, UnknownSymbol

    f = WorkerLogFilter(_worker(Status.running))
    for exc in (UnknownSymbol("ZZZZ", ["AAPL"]), OutsideData("as-of 0002-01-01 is before the data")):
        assert f.filter(_compute_failed(exc)) is False
    assert f.request_errors == 2


def test_request_errors_are_one_line_at_debug():
    from stockdag.errors import UnknownSymbol

    logger = logging.getLogger("distributed.worker")
    level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        rec = _compute_failed(UnknownSymbol("ZZZZ"))
        assert WorkerLogFilter(_worker(Status.running)).filter(rec) is True
    finally:
        logger.setLevel(level)
    assert rec.levelno == logging.DEBUG
    line = rec.getMessage()
    assert "\n" not in line and "Traceback" not in line and "ZZZZ" in line and "C2-abc" in line


def test_other_failed_computations_pass_unchanged():
    from stockdag.errors import DataSourceError

    f = WorkerLogFilter(_worker(Status.running))
    class UnknownSymbol(Exception):  # someone else's class, named like stockdag's
        pass

    for exc in (ValueError("boom"), DataSourceError("yfinance unreachable"), KeyError("UnknownSymbol"), UnknownSymbol("IBM")):
        rec = _compute_failed(exc, noted=False)
        assert f.filter(rec) is True and rec.levelno == logging.ERROR and "Compute Failed" in rec.getMessage()
    assert f.request_errors == 0


def _raise(exc):
    raise exc


class UnknownSymbol(Exception):
    """A user's own exception that happens to share a stockdag error's name."""


def test_a_worker_logs_a_request_error_quietly_and_a_bug_loudly():
    """A stockdag stage's request error is quiet; a bug, and another task's exception named like a stockdag
    error, are logged as distributed logs them (the filter matches stockdag's class, not the name)."""
    import pytest

    from stockdag import errors
    from stockdag.pipeline.trace import run_traced
    from stockdag.run.distributed import DistributedExecutor

    seen: list[logging.LogRecord] = []

    class _Keep(logging.Handler):
        def emit(self, record):
            seen.append(record)

    handler = _Keep(level=logging.DEBUG)
    logger = logging.getLogger("distributed.worker")
    logger.addHandler(handler)
    try:
        with LocalCluster(n_workers=1, processes=False, protocol="tcp://", host="127.0.0.1",
                          dashboard_address="127.0.0.1:0", scheduler_kwargs={"dashboard": False},
                          silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
            DistributedExecutor(client=client, strategy="dask")
            with pytest.raises(errors.UnknownSymbol):
                client.submit(run_traced, "C1", "fetch_prices", _raise, errors.UnknownSymbol("ZZZZ"), pure=False).result()
            with pytest.raises(ZeroDivisionError):
                client.submit(_raise, ZeroDivisionError("a bug"), pure=False).result()
            with pytest.raises(UnknownSymbol):
                client.submit(_raise, UnknownSymbol("YYYY"), pure=False).result()
    finally:
        logger.removeHandler(handler)
    failed = [r.getMessage() for r in seen if "Compute Failed" in r.getMessage()]
    assert len(failed) == 2 and "ZeroDivisionError" in failed[0] and "UnknownSymbol('YYYY')" in failed[1]
    assert not any("ZZZZ" in r.getMessage() for r in seen if r.levelno >= logging.INFO)

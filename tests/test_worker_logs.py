"""A worker's heartbeat lost while a cluster closes is not printed as a traceback (stockdag.run.worker_logs)."""
import logging
import sys

from distributed import Client, LocalCluster
from distributed.comm.core import CommClosedError
from distributed.core import Status

from stockdag.run import worker_logs
from stockdag.run.worker_logs import MESSAGE, HeartbeatFilter


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
    f = HeartbeatFilter(w)
    assert f.filter(_record(CommClosedError("in <TCP (closed)>: Stream is closed"))) is False
    assert f.dropped == 1


def test_one_line_warning_while_the_worker_runs():
    w = _worker(Status.running)
    f = HeartbeatFilter(w)
    rec = _record(CommClosedError("Stream is closed"))
    assert f.filter(rec) is True
    assert rec.levelno == logging.WARNING and rec.exc_info is None
    formatted = logging.Formatter("%(levelname)s %(message)s").format(rec)
    assert "Traceback" not in formatted and "Stream is closed" in formatted and "\n" not in formatted


def test_other_records_pass_unchanged():
    w = _worker(Status.closing)
    f = HeartbeatFilter(w)
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
        filters = [f for f in logging.getLogger("distributed.worker").filters if isinstance(f, HeartbeatFilter)]
        assert filters and filters[-1]._worker() is worker

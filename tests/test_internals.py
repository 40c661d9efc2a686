"""A distributed internal stockdag uses that is missing fails with one line naming it (issue 24 item 21)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from stockdag.run.internals import MissingInternal


def test_auto_granularity_without_the_clients_scheduler_identity_fails_loudly():
    """It once fell back to ``stage`` without a word when ``Client._scheduler_identity`` was not there."""
    from stockdag.run.distributed import DistributedExecutor

    class ClientWithoutIdentity:
        asynchronous = False

    ex = DistributedExecutor.__new__(DistributedExecutor)  # no cluster: granularity_now reads the client only
    ex.client, ex.granularity, ex._in_flight = ClientWithoutIdentity(), "auto", 0
    with pytest.raises(MissingInternal, match=r"has no Client\._scheduler_identity, which stockdag uses") as err:
        ex.granularity_now()
    assert "\n" not in str(err.value) and "2026.8" in str(err.value)


def test_a_worker_without_its_batched_stream_fails_loudly():
    from stockdag.run.batching import WorkerBatching

    class WorkerWithoutStream:
        pass

    with pytest.raises(MissingInternal, match=r"Worker\.batched_stream"):
        WorkerBatching(0.001).setup(WorkerWithoutStream())


@pytest.mark.parametrize("internal", ["_add_frames_header", "convert_stream_closed_error"])
def test_the_delayed_comm_without_a_tcp_internal_fails_in_one_line(internal):
    code = ("import distributed.comm.tcp as t\n"
            f"del t.{internal}\n"
            "from stockdag.run.internals import MissingInternal\n"
            "try:\n"
            "    import stockdag.deploy.delaycomm\n"
            "except MissingInternal as exc:\n"
            "    print(exc)\n"
            "else:\n"
            "    print('imported')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True).stdout
    assert out.strip().splitlines() == [out.strip()] and f"distributed.comm.tcp.{internal}" in out

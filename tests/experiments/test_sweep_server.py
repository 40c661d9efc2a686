"""The sweep's server under test runs in a process of its own, and nothing of it outlives its block on any exit."""
import json
import os
import signal
import subprocess
import sys
import textwrap

import dask
import psutil
import pytest

from stockdag.lab.experiments import SweepParams
from stockdag.lab.experiments.sweep import Configuration, serving

pytestmark = pytest.mark.slow


def _params(tmp_path, **kw):
    return SweepParams(users=[1], out=str(tmp_path), run_id="server", timeout=30, **kw)


def _session(pid: int) -> list[int]:
    """The server and every process it started (its LocalCluster's workers)."""
    return [pid] + [p.pid for p in psutil.Process(pid).children(recursive=True)]


def _alive(pids) -> list[int]:
    out = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:  # a zombie has exited (awaits its reaper)
                out.append(pid)
        except psutil.NoSuchProcess:
            pass
    return out


def _left(pids, patience: float = 60.0) -> list[int]:
    """Which of ``pids`` still run after a kill has had up to ``patience`` s to land (a bound, not a measurement)."""
    import time

    deadline = time.monotonic() + patience
    while _alive(pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return _alive(pids)


def test_an_exception_mid_block_stops_the_server_and_its_workers(tmp_path):
    log = str(tmp_path / "servers" / "w1.log")
    with pytest.raises(RuntimeError, match="a point failed"):
        with serving(Configuration("distributed", 1, "dask"), _params(tmp_path), log) as (url, info, _):
            server = info["server"]
            assert server["how"] == "process" and server["pid"] != os.getpid() and server["log"] == log
            pids = _session(server["pid"])
            assert len(pids) >= 2  # the server and its one worker's process
            raise RuntimeError("a point failed")
    assert _left(pids) == []
    assert "distributed" in open(log).read()  # serve's own output went to the log


def test_a_server_that_cannot_start_names_its_log(tmp_path):
    log, params = str(tmp_path / "servers" / "bad.log"), _params(tmp_path)
    with dask.config.set({"stockdag.data.source": "nope"}):  # inherited by the server, which refuses it
        with pytest.raises(RuntimeError, match=r"exited with 2 .*unknown price source 'nope'.*\(log: .*bad\.log\)"):
            with serving(Configuration("centralized"), params, log):
                pass


SWEEP = textwrap.dedent("""
    import json, sys, time
    from stockdag.lab.experiments import SweepParams
    from stockdag.lab.experiments.sweep import Configuration, serving
    params = SweepParams(users=[1], out=sys.argv[1], run_id="server", timeout=30)
    with serving(Configuration(sys.argv[2], int(sys.argv[3]), sys.argv[4] or None), params, sys.argv[1] + "/s.log") as (url, info, _):
        print(json.dumps(info["server"]), flush=True)
        time.sleep(600)  # a point being measured
""")


@pytest.mark.parametrize("sig,cfg", [(signal.SIGTERM, ("centralized", "1", "")),
                                     (signal.SIGKILL, ("distributed", "1", "dask"))], ids=["sigterm", "sigkill"])
def test_a_killed_sweep_leaves_no_server(tmp_path, sig, cfg):
    """SIGTERM runs the block's teardown; SIGKILL cannot, and the kernel's parent-death signal stops the server."""
    sweep = subprocess.Popen([sys.executable, "-c", SWEEP, str(tmp_path), *cfg], stdout=subprocess.PIPE, text=True)
    try:
        line = sweep.stdout.readline()
        assert line, "the sweep's server did not start"
        server = json.loads(line)
        pids = _session(server["pid"])
        assert len(pids) >= (2 if cfg[0] == "distributed" else 1)
        sweep.send_signal(sig)
        sweep.wait(60)
        assert _left(pids) == []
        if sig == signal.SIGTERM:
            assert sweep.returncode == 128 + sig  # it unwound (SystemExit), not died of the signal
    finally:
        if sweep.poll() is None:
            sweep.kill()
        sweep.wait()

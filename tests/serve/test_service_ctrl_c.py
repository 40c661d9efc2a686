"""Ctrl-C stops `stockdag serve` in every mode cleanly: exit 0, no traceback from it or its child processes.

A terminal sends SIGINT to its whole foreground process group, so the
replicas and Dask worker processes get it too; the test does the same.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

STOCKDAG = str(Path(sys.executable).parent / "stockdag")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.parametrize("args", [["--mode", "centralized"], ["--mode", "replicated", "--replicas", "2"],
                                  ["--mode", "distributed", "--workers", "2"]], ids=lambda a: a[1])
def test_ctrl_c_stops_the_server_without_a_traceback(args):
    port = _free_port()
    proc = subprocess.Popen([STOCKDAG, "serve", "--port", str(port), *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        end = time.monotonic() + 600  # a hang guard, not a speed claim
        while True:
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < end, "the server never answered /health"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGINT)
        rc = proc.wait(120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    err = proc.stderr.read()
    assert rc == 0 and "Traceback" not in err and "KeyboardInterrupt" not in err, err

"""A replicated server whose replica process died replaces its pool (issue 24 item 10).

Before, the broken ProcessPoolExecutor stayed: every /predict answered 503 and /health said ok. The replica
is killed for real (SIGKILL); each step waits for an event (the process gone, /health ok again), not a time.
"""
from __future__ import annotations

import os
import signal
import time

import dask
import httpx
import psutil
import pytest

from stockdag.serve import ServerThread, create_app

SMALL = {"stockdag.models.window": 120, "stockdag.models.error_days": 10, "stockdag.data.min_history": 150,
         "stockdag.data.history_days": 200, "stockdag.data.news_days": 320}

pytestmark = pytest.mark.slow


def _wait_until(predicate, what: str, limit: float = 180.0):
    # waits for an event (not a time band): fails only if it never happens
    end = time.monotonic() + limit
    while not predicate():
        assert time.monotonic() < end, f"never happened: {what}"
        time.sleep(0.05)


def _gone(pid: int) -> bool:
    # not reaped here: the pool's own thread reaps its processes
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _kill_one_replica(backend) -> set[int]:
    before = set(backend.pids)
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    _wait_until(lambda: _gone(victim), "the killed replica is gone")
    return before


def _replaced(url: str) -> float:
    lines = [x for x in httpx.get(f"{url}/metrics").text.splitlines() if x.startswith("stockdag_backend_replaced_total")]
    assert len(lines) == 1, lines
    return float(lines[0].split()[-1])


def test_a_dead_replica_is_reported_then_replaced_and_counted():
    with dask.config.set(SMALL):
        app = create_app("replicated", replicas=2, deadline=120)
    backend = app.state.backend
    with ServerThread(app) as server:
        url = server.url
        assert httpx.get(f"{url}/health").json()["status"] == "ok" and _replaced(url) == 0
        old = _kill_one_replica(backend)
        # /health notices the dead replica (and starts replacing the pool) before any request finds it
        health = httpx.get(f"{url}/health")
        assert health.status_code == 503 and health.json()["status"] == "no workers", health.text
        _wait_until(lambda: httpx.get(f"{url}/health").status_code == 200, "the pool was replaced")
        assert _replaced(url) == 1 and len(backend.pids) == 2 and not backend.pids & old
        r = httpx.get(f"{url}/predict/IBM", params={"as_of": "2012-06-01"}, timeout=120)
        assert r.status_code == 200, r.text

        # a death that a request finds first: that request may lose its work (503, it ran on the dead pool);
        # the next one runs on the new pool
        old = _kill_one_replica(backend)
        first = httpx.get(f"{url}/predict/IBM", params={"as_of": "2012-06-01"}, timeout=120)
        assert first.status_code in (200, 503), first.text
        if first.status_code == 503:
            assert first.json()["error"] == "BackendUnavailable"
            second = httpx.get(f"{url}/predict/IBM", params={"as_of": "2012-06-01"}, timeout=120)
            assert second.status_code == 200, second.text
        assert _replaced(url) == 2 and not backend.pids & old
        assert httpx.get(f"{url}/health").json()["workers"] == 2

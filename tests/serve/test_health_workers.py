"""/health is not ok when no worker can run a request (issue 16 item 1)."""
from __future__ import annotations

import logging

import httpx
from distributed import LocalCluster

from stockdag.serve import ServerThread, create_app


def test_health_without_workers_is_503():
    with LocalCluster(n_workers=0, processes=False, protocol="tcp", host="127.0.0.1", dashboard_address=None,
                      silence_logs=logging.WARNING) as empty:
        with ServerThread(create_app("distributed", scheduler=empty.scheduler_address)) as server:
            r = httpx.get(f"{server.url}/health", timeout=30)
    assert r.status_code == 503
    assert (r.json()["status"], r.json()["workers"]) == ("no workers", 0)


def test_health_of_a_centralized_server_is_ok():
    with ServerThread(create_app("centralized")) as server:
        r = httpx.get(f"{server.url}/health", timeout=30)
    assert r.status_code == 200 and r.json()["status"] == "ok"

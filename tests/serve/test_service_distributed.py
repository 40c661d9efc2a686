"""A live distributed stockdag server (LocalCluster of 2 workers, started here): what it exposes and logs."""
from __future__ import annotations

import ipaddress

import dask
import httpx
import psutil
import pytest

from stockdag.serve import ServerThread, create_app

# the conftest's SMALL settings; repeated because a module-scoped server cannot use its function-scoped fixture
SMALL = {"stockdag.models.window": 120, "stockdag.models.error_days": 10, "stockdag.data.min_history": 150,
         "stockdag.data.history_days": 200, "stockdag.data.news_days": 320}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def distributed_server():
    with dask.config.set(SMALL):
        app = create_app("distributed", workers=2)
    with ServerThread(app) as server:
        yield server


def _listening(process: psutil.Process) -> list[tuple[int, str, int]]:
    out = []
    for p in (process, *process.children(recursive=True)):
        for c in p.net_connections(kind="inet"):
            if c.status == psutil.CONN_LISTEN:
                out.append((p.pid, c.laddr.ip, c.laddr.port))
    return out


def test_distributed_server_listens_on_loopback_only(distributed_server):
    health = httpx.get(f"{distributed_server.url}/health", timeout=30).json()
    assert health["dashboard"]  # the dashboard runs, so its socket is among those listed
    sockets = _listening(psutil.Process())
    ports = {port for _, _, port in sockets}
    dashboard_port = int(health["dashboard"].split(":")[2].split("/")[0])
    assert dashboard_port in ports and distributed_server.port in ports
    exposed = [s for s in sockets if not ipaddress.ip_address(s[1]).is_loopback]
    assert not exposed, f"listening outside loopback: {exposed}"


@pytest.mark.parametrize("as_of, kind", [("0002-01-01", "OutsideData"), ("9999-12-31", "OutsideData"),
                                         ("1990-01-01", "InsufficientHistory"), ("2030-01-01", "OutsideData")])
def test_dates_outside_the_data_are_one_line_422s(distributed_server, as_of, kind):
    # C5 runs beside C2 here, so a date only C5 trips on used to reach the client as a 500
    r = httpx.get(f"{distributed_server.url}/predict/AAPL", params={"as_of": as_of}, timeout=120)
    assert r.status_code == 422, r.text
    assert r.json()["error"] == kind and "\n" not in r.json()["detail"]


def _erred_tasks(app) -> int:
    # the scheduler's transition log: a task a worker raised in (logged there as "Compute Failed"
    # with a traceback) passes through "erred"
    from distributed import Client

    with Client(app.state.backend.cluster.scheduler_address, timeout=30) as c:
        return c.run_on_scheduler(lambda dask_scheduler: sum(t[2] == "erred" for t in dask_scheduler.transition_log))


@pytest.mark.parametrize("path", ["/predict/FB?as_of=2012-09-04", "/predict/AAPL?as_of=1990-01-02",
                                  "/predict/GOOG?as_of=2004-09-01"])
def test_client_errors_are_not_worker_errors(distributed_server, path):
    # an expected request error (FB has ~75 days by 2012-09-04, under the 150 the SMALL settings need; dates before the data) is the client's 422, not a
    # failed task with a traceback in a worker's log
    before = _erred_tasks(distributed_server.app)
    r = httpx.get(distributed_server.url + path, timeout=120)
    assert r.status_code == 422 and r.json()["error"] == "InsufficientHistory"
    assert _erred_tasks(distributed_server.app) == before


def test_the_dashboard_address_is_configurable():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with dask.config.set({**SMALL, "stockdag.dashboard_address": f"127.0.0.1:{port}"}):
        with ServerThread(create_app("distributed", workers=1)) as server:
            health = httpx.get(f"{server.url}/health", timeout=30).json()
            listening = {(ip, p) for _, ip, p in _listening(psutil.Process())}
    assert f"127.0.0.1:{port}" in health["dashboard"] and ("127.0.0.1", port) in listening


def test_stockdag_serve_prints_the_dashboard_url(monkeypatch, capsys):
    """Issue 24 item 29: `stockdag serve` did not say where the Dask dashboard of its cluster is."""
    from stockdag.cli import main

    seen = {}

    def serve_briefly(app, host, port):  # stands in for uvicorn: start the app (its lifespan), ask /health, stop
        with ServerThread(app) as server:
            seen["dashboard"] = httpx.get(f"{server.url}/health", timeout=30).json()["dashboard"]

    monkeypatch.setattr("stockdag.serve.serve", serve_briefly)
    import socket

    with socket.socket() as s:  # a free port, for the command's own bind check
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with dask.config.set(SMALL):
        assert main(["serve", "--mode", "distributed", "--workers", "1", "--port", str(port)]) == 0
    assert seen["dashboard"] and f"stockdag serve: Dask dashboard at {seen['dashboard']}" in capsys.readouterr().err

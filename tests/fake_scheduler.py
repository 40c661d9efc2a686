"""An unstarted distributed Scheduler with N running workers: what placement code sees, without a cluster.

Shared by the placement unit tests and the plugin benchmark (tests/ is on sys.path through its conftest).
"""
from __future__ import annotations

from distributed import Scheduler
from distributed.core import Status
from distributed.scheduler import WorkerState


def fake_scheduler(n_workers: int, tag: str = "test", port_base: int = 41000) -> Scheduler:
    """Close it with ``scheduler.http_server.stop()``: constructing a Scheduler binds a free loopback HTTP port."""
    scheduler = Scheduler(validate=False, dashboard=False, dashboard_address="127.0.0.1:0")
    for i in range(n_workers):
        ws = WorkerState(
            address=f"tcp://127.0.0.1:{port_base + i}", status=Status.running, pid=i, name=i, nthreads=1,
            memory_limit=2**32, local_directory="/tmp", nanny=None, server_id=f"{tag}-{i}", scheduler=scheduler,
        )
        scheduler.workers[ws.address] = ws
        scheduler.running.add(ws)
        scheduler.aliases[ws.name] = ws.address
    return scheduler

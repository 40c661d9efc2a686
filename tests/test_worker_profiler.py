"""Dask's worker profiler is off on the clusters stockdag starts (a cost only distributed runs would pay)."""
import asyncio
import urllib.request

import dask
import pytest

from stockdag.deploy import start
from stockdag.deploy.emulated import plan_machines as emulated_plan
from stockdag.deploy.spec import load_spec
from stockdag.run import DistributedExecutor
from stockdag.run.worker_settings import PROFILER_KEY
from stockdag.serve.backends import DistributedBackend

pytestmark = pytest.mark.slow


def _profiling(dask_worker):
    # the worker's own record: the periodic callback that samples its threads, and the setting it read
    return "profile" in dask_worker.periodic_callbacks, dask.config.get(PROFILER_KEY)


def test_the_executors_cluster_runs_no_profiler_and_its_dashboard_still_answers():
    with DistributedExecutor(n_workers=1, dashboard_address="127.0.0.1:0") as ex:
        assert set(ex.client.run(_profiling).values()) == {(False, False)}
        with urllib.request.urlopen(ex.dashboard_link, timeout=30) as page:  # /status
            assert page.status == 200


def test_the_setting_brings_the_profiler_back():
    with dask.config.set({"stockdag.worker_profiler": True}), DistributedExecutor(n_workers=1) as ex:
        assert set(ex.client.run(_profiling).values()) == {(True, True)}


def test_the_servers_cluster_runs_no_profiler():
    # the cluster `stockdag serve --mode distributed` and the sweep's distributed points start
    async def go():
        backend = DistributedBackend(workers=1, strategy="dask")
        await backend.start()
        try:
            return set((await backend.client.run(_profiling)).values())
        finally:
            await backend.close()
    assert asyncio.run(go()) == {(False, False)}


def test_the_deploy_kinds_start_workers_without_the_profiler():
    spec = {"name": "one", "kind": "local", "worker_groups": [{"name": "g", "count": 1, "threads": 1, "memory_limit": "1GiB"}]}
    with start(spec) as cluster, cluster.client() as client:
        assert set(client.run(_profiling).values()) == {(False, False)}
    machines, _ = emulated_plan(load_spec("emulated-hetero"))
    workers = [m for m in machines if m.role == "worker"]
    assert workers and all("DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False" in m.commands[-1] for m in workers)

"""A cluster stockdag did not start is changed only if the user lets it (``stockdag.configure_cluster``)."""
from __future__ import annotations

import logging

import pytest
from distributed import Client, LocalCluster

import stockdag
from stockdag.errors import InvalidRequest
from stockdag.placement import NAME, register
from stockdag.run import batching, worker_logs
from stockdag.run.distributed import DistributedExecutor

QUIET = {"protocol": "tcp://", "host": "127.0.0.1", "dashboard_address": "127.0.0.1:0",
         "scheduler_kwargs": {"dashboard": False}, "silence_logs": logging.ERROR}


@pytest.fixture
def users_cluster():
    """Someone's own in-process cluster and client."""
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, **QUIET) as cluster, Client(cluster) as client:
        yield cluster, client


def _installed(cluster) -> dict:
    (worker,) = cluster.workers.values()
    return {"placement": NAME in cluster.scheduler.plugins, "batching": batching.NAME in cluster.scheduler.plugins,
            "worker logs": worker_logs.NAME in worker.plugins,
            "stream intervals": sorted({s.interval for s in cluster.scheduler.stream_comms.values()})}


def test_configure_cluster_false_installs_nothing_and_a_request_still_runs(users_cluster, small):
    cluster, client = users_cluster
    before = _installed(cluster)
    assert before["placement"] is False and before["batching"] is False
    result = stockdag.predict("AAPL", "2012-06-01", mode="distributed", client=client, configure_cluster=False)
    assert result.prediction.symbol == "AAPL"
    assert _installed(cluster) == before
    assert all(t.planned_worker is None for t in result.trace)  # nobody planned: Dask placed every stage


def test_the_default_installs_for_every_client_as_documented(users_cluster):
    cluster, client = users_cluster
    DistributedExecutor(client=client)
    after = _installed(cluster)
    assert after["placement"] and after["batching"] and after["worker logs"] and after["stream intervals"] == [0.001]


def test_configure_cluster_false_keeps_the_clusters_own_plugin(users_cluster):
    cluster, client = users_cluster
    register(client, "heft")  # e.g. a scheduler started with --preload stockdag.placement.preload
    plugin = cluster.scheduler.plugins[NAME]
    with _config(False):
        ex = DistributedExecutor(client=client)
    assert ex.strategy == "heft" and cluster.scheduler.plugins[NAME] is plugin
    assert batching.NAME not in cluster.scheduler.plugins


def test_a_named_strategy_without_configure_cluster_is_refused_in_one_line(users_cluster):
    cluster, client = users_cluster
    with pytest.raises(InvalidRequest) as err:
        DistributedExecutor(client=client, strategy="heft", configure_cluster=False)
    assert "\n" not in str(err.value) and "configure_cluster" in str(err.value)
    assert NAME not in cluster.scheduler.plugins


def _config(value):
    import dask

    return dask.config.set({"stockdag.configure_cluster": value})


def test_a_server_configures_the_cluster_it_started_itself():
    """configure_cluster=false is about other people's clusters: serve's own LocalCluster still gets the strategy."""
    import asyncio

    from stockdag.serve.backends import DistributedBackend

    async def run():
        backend = DistributedBackend(workers=1, strategy="heft")
        with _config(False):
            await backend.start()
        try:
            return backend.executor.configure_cluster, await backend.client.run_on_scheduler(
                lambda dask_scheduler: sorted(p for p in dask_scheduler.plugins if p.startswith("stockdag")))
        finally:
            await backend.close()

    configured, plugins = asyncio.run(run())
    assert configured is True and NAME in plugins and batching.NAME in plugins

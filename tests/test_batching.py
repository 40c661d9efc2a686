"""Dask's batched-send intervals come from stockdag.batching (distributed fixes them in code)."""
from __future__ import annotations

import dask
import pytest
from dask.utils import parse_timedelta
from distributed import Client, LocalCluster

from stockdag.run import DistributedExecutor
from stockdag.run.batching import DASK_DEFAULTS, PRESETS, effective, intervals

QUIET = {"protocol": "tcp://", "host": "127.0.0.1", "dashboard_address": "127.0.0.1:0", "scheduler_kwargs": {"dashboard": False}}

FAST = {
    "stockdag.batching.scheduler_to_worker": "1ms",
    "stockdag.batching.scheduler_to_client": "0.5ms",
    "stockdag.batching.worker_to_scheduler": 0.25,  # a bare number is milliseconds
    "stockdag.batching.client_to_scheduler": "3ms",
}


def _stream_intervals(cluster, client):
    s = cluster.scheduler
    return {
        "scheduler_to_worker": {b.interval for b in s.stream_comms.values()},
        "scheduler_to_client": {s.client_comms[client.id].interval},
        "worker_to_scheduler": set(client.run(lambda dask_worker: dask_worker.batched_stream.interval).values()),
        "client_to_scheduler": {client.scheduler_comm.interval},
    }


NONE = {"stockdag.batching": dict.fromkeys(DASK_DEFAULTS)}


def test_config_reads_milliseconds_and_defaults_to_1ms():
    assert intervals() == dict.fromkeys(DASK_DEFAULTS, 0.001)
    with dask.config.set(NONE):
        assert intervals() == dict.fromkeys(DASK_DEFAULTS)
        assert effective() == DASK_DEFAULTS
    with dask.config.set(FAST):
        assert intervals() == {"scheduler_to_worker": 0.001, "scheduler_to_client": 0.0005,
                               "worker_to_scheduler": 0.00025, "client_to_scheduler": 0.003}


def test_executor_sets_every_stream_interval_on_the_cluster():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, **QUIET) as cluster, Client(cluster) as client:
        before = _stream_intervals(cluster, client)
        assert before == {k: {v} for k, v in DASK_DEFAULTS.items()}
        with dask.config.set(FAST):
            DistributedExecutor(client=client, strategy="dask")
        assert _stream_intervals(cluster, client) == {
            "scheduler_to_worker": {0.001}, "scheduler_to_client": {0.0005},
            "worker_to_scheduler": {0.00025}, "client_to_scheduler": {0.003},
        }
        # a worker that joins later gets them too
        cluster.scale(3)
        client.wait_for_workers(3)
        assert _stream_intervals(cluster, client)["scheduler_to_worker"] == {0.001}
        assert _stream_intervals(cluster, client)["worker_to_scheduler"] == {0.00025}


def test_the_presets_are_what_they_say():
    assert {k: parse_timedelta(v) for k, v in PRESETS["dask"].items()} == DASK_DEFAULTS
    with dask.config.set({"stockdag.batching": PRESETS["dask"]}):
        assert effective() == DASK_DEFAULTS
    with dask.config.set({"stockdag.batching": PRESETS["fast"]}):
        assert effective() == dict.fromkeys(DASK_DEFAULTS, 0.001)


def test_nothing_is_installed_when_nothing_is_configured():
    with dask.config.set(NONE), LocalCluster(n_workers=1, processes=False, **QUIET) as cluster, Client(cluster) as client:
        DistributedExecutor(client=client, strategy="dask")
        assert "stockdag-batching" not in cluster.scheduler.plugins


@pytest.mark.parametrize("bad", ["fast", -1])
def test_a_bad_interval_is_one_clear_error(bad):
    from stockdag.errors import InvalidRequest

    with dask.config.set({"stockdag.batching.worker_to_scheduler": bad}), pytest.raises(InvalidRequest, match="stockdag.batching.worker_to_scheduler"):
        intervals()

"""A worker lost in the middle of a request: the plugin re-plans, the request completes.

A strictly restricted task whose worker is gone would wait in ``no-worker``
forever; the plugin's ``remove_worker`` hook re-plans the request's
not-yet-run tasks over the workers left.
"""
from __future__ import annotations

import os
import signal
import time
import uuid

import dask
import pytest
from distributed import Client, Event, LocalCluster, get_task_stream
from placement_helpers import QUIET, SMALL_PIPELINE, request_task

from stockdag.placement import NAME, register


def gate(name: str):
    """Say the gate was reached, then wait until the test opens it."""
    Event(f"{name}-reached").set()
    Event(name).wait()
    return 1


def gated_fork_join(rid: str, width: int = 4):
    with dask.annotate(stockdag={"name": "source", "request": rid}):
        source = dask.delayed(gate, pure=False)(f"gate-{rid}", dask_key_name=f"source-{rid}")
    branches = [request_task(f"branch_{i}", rid, source) for i in range(width)]
    return request_task("join", rid, *branches)


@pytest.fixture
def fresh_cluster():
    """Its own two workers (named 0 and 1): these tests take one away."""
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, **QUIET) as cluster, Client(cluster) as client:
        yield cluster, client


def _names(cluster) -> dict[str, str]:
    return {str(ws.name): address for address, ws in cluster.scheduler.workers.items()}


def _lose_worker_mid_request(cluster, client, strategy, choose_victim, **options):
    register(client, strategy, **options)
    plugin = cluster.scheduler.plugins[NAME]
    rid = uuid.uuid4().hex
    with get_task_stream(client=client) as stream:
        future = client.compute(gated_fork_join(rid), optimize_graph=False)
        Event(f"gate-{rid}-reached", client=client).wait()  # the request is under way
        plan = plugin.plan_for(rid)
        victim = choose_victim(plan, rid)
        # a graceful close still removes the worker: its restricted tasks lose their only worker
        worker = next(w for w in cluster.workers.values() if w.address == victim)
        cluster.sync(worker.close)
        assert victim not in cluster.scheduler.workers
        Event(f"gate-{rid}", client=client).set()
        assert future.result() == 1 + 4 * 2
    ran = {e["key"]: e["worker"] for e in stream.data}
    return plugin, plan, victim, ran, rid


def test_pinned_request_completes_after_its_pinned_worker_is_lost(fresh_cluster):
    cluster, client = fresh_cluster
    pinned = {"source": "0", "branch_0": "1", "branch_1": "1", "branch_2": "0", "branch_3": "1", "join": "1"}
    names = _names(cluster)
    plugin, plan, victim, ran, rid = _lose_worker_mid_request(
        cluster, client, "pinned", lambda plan, rid: names["1"], pinned=pinned
    )
    assert plan[f"join-{rid}"] == names["1"]  # the original plan followed the map
    assert not plugin.errors
    survivor = names["0"]
    assert set(ran.values()) == {survivor}
    assert set(plugin.plan_for(rid).values()) == {survivor}  # the plan now says where they ran
    assert {r["key"] for r in plugin.replans} == {f"branch_{i}-{rid}" for i in (0, 1, 3)} | {f"join-{rid}"}


def test_heft_request_completes_after_a_planned_worker_is_lost(fresh_cluster):
    cluster, client = fresh_cluster

    def other_than_the_gate(plan, rid):
        (victim,) = set(plan.values()) - {plan[f"source-{rid}"]}  # heft spread the fork over both
        return victim

    plugin, plan, victim, ran, rid = _lose_worker_mid_request(cluster, client, "heft", other_than_the_gate)
    assert not plugin.errors
    assert plugin.replans and all(r["old"] == victim for r in plugin.replans if r["old"] is not None)
    assert victim not in set(ran.values())
    assert ran == plugin.plan_for(rid)


def test_a_task_planned_after_the_gate_moves_to_the_survivor(fresh_cluster):
    cluster, client = fresh_cluster
    names = _names(cluster)
    register(client, "pinned", pinned={"source": "0", "join": "1"})
    plugin = cluster.scheduler.plugins[NAME]
    rid = uuid.uuid4().hex
    future = client.compute(gated_fork_join(rid, width=1), optimize_graph=False)
    Event(f"gate-{rid}-reached", client=client).wait()
    one = next(w for w in cluster.workers.values() if w.address == names["1"])
    cluster.sync(one.close)
    # "join" lost its worker and was re-planned onto "0"
    assert plugin.plan_for(rid)[f"join-{rid}"] == names["0"]
    Event(f"gate-{rid}", client=client).set()
    assert future.result() == 3
    assert not plugin.errors


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["pinned", "heft"])
def test_killed_worker_process_mid_stockdag_request(strategy):
    """Real processes, the real pipeline, SIGKILL while a fetch is running."""
    from stockdag.pipeline import build_graph
    from stockdag.pipeline.request import parse_request

    options = {}
    if strategy == "pinned":
        # the fetches on worker "0" (the one killed), everything else on "1"
        stages = ["parse_request", "cache", "make_features", "score_sentiment", "ridge", "random_forest",
                  "lightgbm", "knn", "mlp", "select"]
        options["pinned"] = {**{s: "1" for s in stages}, "fetch_prices": "0", "fetch_news": "0"}
    slow_fetch = {**SMALL_PIPELINE, "stockdag.data.latency.distribution": "constant", "stockdag.data.latency.mean": 1.0}
    with dask.config.set(slow_fetch):
        request = parse_request("AAPL", "2012-06-01")
    rid = request.request_id
    fetch = f"fetch_prices-{rid}"

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, **QUIET) as cluster, Client(cluster) as client:
        register(client, strategy, **options)
        plugin = cluster.scheduler.plugins[NAME]
        future = client.compute(build_graph(request), optimize_graph=False)

        def fetch_worker(dask_scheduler):
            ts = dask_scheduler.tasks.get(fetch)
            return ts.processing_on.address if ts is not None and ts.processing_on is not None else None

        victim = None
        while victim is None:  # bounded by the test timeout; the fetch sleeps 1 s once it starts
            victim = client.run_on_scheduler(fetch_worker)
            if victim is None:
                assert not future.done(), future
                time.sleep(0.02)
        assert plugin.plan_for(rid)[fetch] == victim
        pid = client.run(os.getpid, workers=[victim])[victim]
        os.kill(pid, signal.SIGKILL)

        traced = future.result()
        assert traced.value.symbol == "AAPL"
        assert not plugin.errors
        assert any(r["key"] == fetch and r["old"] == victim for r in plugin.replans)
        assert plugin.plan_for(rid)[fetch] != victim


def _stranded(cluster, rid) -> list[str]:
    """Keys of the request restricted only to workers that are gone (nothing would ever run them)."""
    live = set(cluster.scheduler.workers)
    return sorted(str(k) for k, ts in cluster.scheduler.tasks.items()
                  if rid in str(k) and ts.worker_restrictions and not ts.worker_restrictions & live)


@pytest.mark.parametrize("how", ["register", "register_scheduler_plugin"])
def test_a_replaced_plugin_hands_its_restricted_tasks_to_the_new_one(fresh_cluster, how):
    """The new plugin re-plans the tasks the old one restricted when their worker leaves."""
    from stockdag.placement import PlacementPlugin

    cluster, client = fresh_cluster
    names = _names(cluster)
    pinned = {"source": "0", "branch_0": "1", "branch_1": "1", "branch_2": "0", "branch_3": "1", "join": "1"}
    register(client, "pinned", pinned=pinned)
    rid = uuid.uuid4().hex
    future = client.compute(gated_fork_join(rid), optimize_graph=False)
    Event(f"gate-{rid}-reached", client=client).wait()
    if how == "register":
        register(client, "heft")
    else:  # distributed's own call: start() still sees the old plugin
        with pytest.warns(UserWarning, match="overwriting"):
            client.register_plugin(PlacementPlugin("heft"), name=NAME)
    plugin = cluster.scheduler.plugins[NAME]
    assert plugin.strategy_name == "heft"
    one = next(w for w in cluster.workers.values() if w.address == names["1"])
    cluster.sync(one.close)
    assert _stranded(cluster, rid) == []
    assert {r["key"] for r in plugin.replans} == {f"branch_{i}-{rid}" for i in (0, 1, 3)} | {f"join-{rid}"}
    Event(f"gate-{rid}", client=client).set()
    assert future.result() == 1 + 4 * 2
    assert not plugin.errors


def test_unregister_lifts_the_restrictions_nothing_would_replan(fresh_cluster):
    from stockdag.placement import unregister

    cluster, client = fresh_cluster
    names = _names(cluster)
    register(client, "pinned", pinned={"source": "0", "join": "1"})
    rid = uuid.uuid4().hex
    future = client.compute(gated_fork_join(rid, width=1), optimize_graph=False)
    Event(f"gate-{rid}-reached", client=client).wait()
    assert cluster.scheduler.tasks[f"join-{rid}"].worker_restrictions == {names["1"]}
    assert unregister(client) is True and NAME not in cluster.scheduler.plugins
    assert cluster.scheduler.tasks[f"join-{rid}"].worker_restrictions is None  # Dask decides from now on
    assert cluster.scheduler.tasks[f"source-{rid}"].state == "processing"    # the running one was left alone
    one = next(w for w in cluster.workers.values() if w.address == names["1"])
    cluster.sync(one.close)
    assert _stranded(cluster, rid) == []
    Event(f"gate-{rid}", client=client).set()
    assert future.result() == 3

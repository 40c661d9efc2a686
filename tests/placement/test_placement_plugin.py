"""The plugin on a live LocalCluster: every strict strategy's tasks ran where it planned."""
from __future__ import annotations

import uuid

import dask
import pytest
from distributed import Client, LocalCluster
from placement_helpers import QUIET, SMALL_PIPELINE, chain, quiet, request_task, stockdag_graph

from stockdag.errors import InvalidRequest
from stockdag.placement import NAME, STRATEGIES, PlacementPlugin, Strategy, register

STRICT = [name for name in STRATEGIES if name != "dask"]


@pytest.mark.parametrize("shape", ["chain", "fork-join", "stockdag"])
@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_tasks_ran_on_the_planned_worker(strategy, shape, install, inproc_client, graphs, run_and_record):
    plugin = install(strategy)
    graph, rid = graphs[shape]()
    _, ran = run_and_record(inproc_client, graph)
    plan = plugin.plan_for(rid)

    assert not plugin.errors, plugin.errors[0]["traceback"]
    assert set(plan) == set(ran)  # every task of the request was planned, and ran
    assert all(v == pytest.approx(0.0) for v in plugin.pending().values())  # nothing left unstarted
    if strategy == "dask":
        assert set(plan.values()) == {None}
        assert plugin.stats["restricted"] == 0
    else:
        # the scheduler's own record (its task stream) against the plan
        assert ran == plan
        # and what the executor asks for is the same, read on the scheduler
        assert inproc_client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.plugins[NAME].plan_for(rid)) == plan


def test_stockdag_request_under_a_strict_strategy_matches_the_scheduler_record(install, inproc_client, run_and_record):
    from stockdag.pipeline import STAGES, build_graph
    from stockdag.pipeline.request import parse_request

    plugin = install("round-robin")
    with dask.config.set(SMALL_PIPELINE):
        request = parse_request("AAPL", "2012-06-01")
    traced, ran = run_and_record(inproc_client, build_graph(request))
    plan = plugin.plan_for(request.request_id)
    assert set(plan) == {f"{s.name}-{request.request_id}" for s in STAGES}
    assert ran == plan
    # the stages' own traces (what the executor puts beside planned_worker) agree too
    assert {f"{t.stage}-{request.request_id}": t.worker for t in traced.trace} == plan
    # round-robin on two workers: both used
    assert len(set(plan.values())) == 2


def test_executor_trace_carries_the_planned_worker(inproc_client):
    from stockdag.pipeline.request import parse_request
    from stockdag.run.distributed import DistributedExecutor

    with dask.config.set(SMALL_PIPELINE):
        request = parse_request("AAPL", "2012-06-01")
    executor = DistributedExecutor(client=inproc_client, strategy="heft")
    try:
        result = executor.run(request)
    finally:
        executor.close()  # leaves a client it was given open
        inproc_client.unregister_scheduler_plugin(NAME)
    assert len(result.trace) == 12
    for stage in result.trace:
        assert stage.planned_worker is not None
        assert stage.planned_worker == stage.worker


def inc(x):
    return x + 1


def test_ordinary_dask_work_beside_requests_is_left_to_dask(install, inproc_client, inproc_cluster):
    # Client.submit and Client.map name tasks "<function>-<32 hex>", like a request's keys
    plugin = install("fastest-node")
    own = inproc_client.map(inc, range(4)) + [inproc_client.submit(inc, 10)]
    graph, rid = stockdag_graph()
    request = inproc_client.compute(graph, optimize_graph=False)
    assert all(len(f.key.rsplit("-", 1)[1]) == 32 for f in own)
    assert inproc_client.gather(own) == [1, 2, 3, 4, 11]
    request.result()
    assert list(plugin.plans) == [rid]
    assert plugin.stats["restricted"] == 12
    tasks = inproc_cluster.scheduler.tasks
    assert all(not tasks[f.key].worker_restrictions for f in own)


def test_switching_strategy_switches_it_silently(install, inproc_client, inproc_cluster, recwarn):
    first = install("fastest-node")
    chain_rid = uuid.uuid4().hex
    inproc_client.compute(chain(chain_rid, n=2), optimize_graph=False).result()
    assert first.stats["restricted"] == 2
    second = install("dask")
    assert second is not first and second.strategy_name == "dask"
    rid = uuid.uuid4().hex
    future = inproc_client.compute(chain(rid, n=2), optimize_graph=False)
    future.result()
    assert first.stats["graphs"] == 1  # the old plugin saw nothing more
    assert set(second.plan_for(rid).values()) == {None}
    assert not inproc_cluster.scheduler.tasks[f"s1-{rid}"].worker_restrictions
    assert not [w for w in recwarn if "overwriting" in str(w.message)]


def test_plugin_learns_stage_durations_per_worker(install, inproc_client, graphs, run_and_record):
    plugin = install("round-robin")
    for _ in range(2):
        graph, _ = graphs["stockdag"]()
        run_and_record(inproc_client, graph)
    durations = plugin.costs.snapshot()["durations"]
    # round-robin rotates per request, so each stage ran on both workers ("0" and "1")
    assert {"make_features@0", "make_features@1", "select@0", "select@1"} <= set(durations)
    assert plugin.costs.nbytes("make_features") > 0


def test_plans_are_kept_for_a_bounded_number_of_requests(install, inproc_client):
    plugin = install("round-robin", history=3)
    rids = [uuid.uuid4().hex for _ in range(5)]
    for rid in rids:
        inproc_client.compute(chain(rid, n=2), optimize_graph=False).result()
    assert list(plugin.plans) == rids[2:]
    assert plugin.plan_for(rids[0]) == {}
    assert len(plugin.plan_for(rids[-1])) == 2


def test_forgotten_tasks_leave_no_bookkeeping(install, inproc_client):
    plugin = install("heft")
    future = inproc_client.compute(chain(uuid.uuid4().hex), optimize_graph=False)
    future.result()
    del future
    inproc_client.run_on_scheduler(lambda: None)  # a round trip after the release
    assert not plugin._live
    assert not any(plugin._restricted.values())


def test_user_restrictions_and_existing_tasks_are_left_alone(install, inproc_client, inproc_cluster):
    plugin = install("round-robin")
    by_name = {str(ws.name): addr for addr, ws in inproc_cluster.scheduler.workers.items()}
    w0, w1 = by_name["0"], by_name["1"]
    rid = uuid.uuid4().hex
    with dask.annotate(workers=[w1]):
        first = request_task("first", rid)
    then = request_task("then", rid, first)
    kept = inproc_client.compute(first, optimize_graph=False)
    kept.result()
    # "first" already exists when the second graph arrives: only "then" is new
    inproc_client.compute(then, optimize_graph=False).result()
    assert plugin.plan_for(rid) == {f"then-{rid}": w0}
    assert inproc_cluster.scheduler.tasks[f"first-{rid}"].worker_restrictions == {w1}


class Broken(Strategy):
    """A strategy that fails (for the test of error recording)."""

    name = "broken"

    def place(self, tasks, workers, costs):
        raise RuntimeError("no plan today")


def test_planning_errors_are_recorded_and_dask_places_the_tasks(install, inproc_client, monkeypatch):
    monkeypatch.setitem(STRATEGIES, "broken", Broken)
    plugin = install("broken")
    assert inproc_client.compute(chain(uuid.uuid4().hex, n=3), optimize_graph=False).result() == 3
    assert [e["hook"] for e in plugin.errors] == ["update_graph"]
    assert "no plan today" in plugin.errors[0]["error"]
    assert plugin.summary()["errors"]


def test_loose_plans_set_loose_restrictions(install, inproc_client, inproc_cluster):
    plugin = install("fastest-node", loose=True)
    rid = uuid.uuid4().hex
    future = inproc_client.compute(chain(rid, n=2), optimize_graph=False)
    future.result()
    ts = inproc_cluster.scheduler.tasks[f"s1-{rid}"]
    assert ts.loose_restrictions is True
    assert ts.worker_restrictions == {plugin.plan_for(rid)[f"s1-{rid}"]}


def test_register_rejects_unknown_names_before_touching_the_cluster(inproc_client):
    with pytest.raises(InvalidRequest, match="unknown placement strategy"):
        register(inproc_client, "fastest")
    with pytest.raises(InvalidRequest, match="takes no option"):
        register(inproc_client, "pinned", seed=3)


def test_strategy_name_defaults_to_config():
    with dask.config.set({"stockdag.placement.strategy": "heft"}):
        assert PlacementPlugin().strategy_name == "heft"
    assert PlacementPlugin("random", seed=4).strategy.seed == 4


def test_preload_installs_the_plugin_on_a_scheduler():
    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False,
        **quiet(
            preload=["stockdag.placement.preload"],
            preload_argv=[["--strategy", "pinned", "--strategy-option", "pinned={C3: '0'}"]],
        ),
    ) as cluster, Client(cluster) as client:
        plugin = cluster.scheduler.plugins[NAME]
        assert plugin.strategy_name == "pinned"
        assert plugin.strategy.pinned == {"C3": "0"}
        assert plugin._scheduler is cluster.scheduler  # start() ran
        rid = uuid.uuid4().hex
        client.compute(chain(rid, n=2), optimize_graph=False).result()
        assert set(plugin.plan_for(rid).values()) == set(cluster.scheduler.workers)


def test_trace_carries_the_plan_of_a_preloaded_scheduler():
    # the scheduler chose the strategy; the client asked for none
    from stockdag.pipeline import graph_keys
    from stockdag.pipeline.request import parse_request
    from stockdag.run.distributed import DistributedExecutor

    with dask.config.set(SMALL_PIPELINE):
        request = parse_request("AAPL", "2012-06-01")
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False,
        **quiet(preload=["stockdag.placement.preload"], preload_argv=[["--strategy", "heft"]]),
    ) as cluster, DistributedExecutor(address=cluster.scheduler_address) as executor:
        assert executor.strategy == "heft"  # the scheduler's own: the configured default does not replace it
        result = executor.run(request)
        plan = cluster.scheduler.plugins[NAME].plan_for(request.request_id)
        keys = graph_keys(request.request_id, executor.granularity_now())
    assert set(plan) == set(keys.values())
    assert len(result.trace) == 12
    for stage in result.trace:
        assert stage.planned_worker == plan[keys[stage.id]]
        assert stage.planned_worker == stage.worker


def test_preload_reads_the_strategy_from_config():
    with dask.config.set({"stockdag.placement.strategy": "symbol-affinity"}), LocalCluster(
        n_workers=1, processes=False, **quiet(preload=["stockdag.placement.preload"])
    ) as cluster:
        assert cluster.scheduler.plugins[NAME].strategy_name == "symbol-affinity"


@pytest.fixture(scope="module")
def process_cluster():
    """Two single-threaded worker processes: real comms, real work stealing."""
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, **QUIET) as cluster, Client(cluster) as client:
        yield cluster, client


@pytest.mark.slow
@pytest.mark.parametrize("strategy", STRICT)
def test_stockdag_tasks_ran_on_the_planned_worker_process(strategy, process_cluster, graphs, run_and_record):
    cluster, client = process_cluster
    register(client, strategy)
    try:
        plugin = cluster.scheduler.plugins[NAME]
        graph, rid = graphs["stockdag"]()
        _, ran = run_and_record(client, graph)
        assert not plugin.errors
        assert ran == plugin.plan_for(rid)
        assert len(ran) == 12
    finally:
        client.unregister_scheduler_plugin(NAME)


def test_an_executor_given_no_strategy_installs_the_configured_one_on_a_bare_cluster():
    from stockdag.run.distributed import DistributedExecutor

    with dask.config.set({"stockdag.placement.strategy": "round-robin"}), LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, **quiet()
    ) as cluster, DistributedExecutor(address=cluster.scheduler_address) as executor:
        assert executor.strategy == "round-robin"
        assert cluster.scheduler.plugins[NAME].strategy_name == "round-robin"
        # a strategy named by the caller replaces the cluster's
        named = DistributedExecutor(client=executor.client, strategy="heft")
        assert named.strategy == "heft" and cluster.scheduler.plugins[NAME].strategy_name == "heft"
        # and dask, named, leaves Dask's own placement: no plugin at all
        DistributedExecutor(client=executor.client, strategy="dask")
        assert NAME not in cluster.scheduler.plugins

"""Both executors run the same functions and give identical predictions."""
import asyncio
import collections
import dataclasses

import pytest

import stockdag
from stockdag.errors import InsufficientHistory, UnknownSymbol
from stockdag.pipeline import STAGES
from stockdag.pipeline.request import parse_request
from stockdag.run import CentralizedExecutor, DistributedExecutor

pytestmark = pytest.mark.slow


def _core(result):
    # everything but how the answer was produced (cache state, mode, trace)
    return dataclasses.replace(result.prediction, cache={})


def test_centralized_and_distributed_predictions_are_identical(small, client):
    req = parse_request("GOOG", "2012-10-01")
    central = CentralizedExecutor().run(req)
    dist = DistributedExecutor(client=client, strategy="dask").run(req)
    assert _core(dist) == _core(central)
    assert dist.mode == "distributed" and central.mode == "centralized"
    workers = set(client.scheduler_info()["workers"])
    d = dist.to_dict()
    assert [t["id"] for t in d["trace"]][0] == "C1" and len(d["trace"]) == 12
    assert {t["worker"] for t in d["trace"]} <= workers
    assert all(t["worker"].startswith("local:") for t in central.to_dict()["trace"])
    assert all(t["end"] >= t["start"] for t in d["trace"])


def test_public_predict_json_shape(small, client):
    d = stockdag.predict("aapl", "2012-06-01", mode="distributed", client=client).to_dict()
    assert set(d) >= {"symbol", "as_of", "prediction", "winner", "candidates", "sentiment", "cache", "mode", "trace"}
    assert d["symbol"] == "AAPL" and d["as_of"] == "2012-06-01" and d["mode"] == "distributed"
    assert set(d["prediction"]) == {"last_close", "next_close", "next_return"}
    assert d["winner"] in {c["model"] for c in d["candidates"]} and len(d["candidates"]) == 5
    best = min(d["candidates"], key=lambda c: c["recent_error"])
    assert d["winner"] == best["model"]
    assert {t["id"] for t in d["trace"]} == {s.id for s in STAGES}
    assert set(d["trace"][0]) >= {"id", "stage", "worker", "start", "end"}


def test_many_concurrent_requests_on_one_async_entry_point(small, client):
    ex = DistributedExecutor(client=client, strategy="dask")
    reqs = [parse_request(s, d) for s in ("AAPL", "MSFT") for d in ("2012-05-01", "2012-05-02", "2012-05-03")]

    async def go():
        return await asyncio.gather(*(ex.arun(r) for r in reqs))

    results = asyncio.run(go())
    assert [(r.prediction.symbol, r.prediction.as_of.isoformat()) for r in results] == [
        (r.symbol, r.as_of.isoformat()) for r in reqs
    ]
    assert len({r.request_id for r in results}) == len(reqs)


def test_worker_errors_arrive_as_stockdag_errors(small, client):
    ex = DistributedExecutor(client=client, strategy="dask")
    with pytest.raises(UnknownSymbol, match="available: AAPL"):
        ex.run(parse_request("ZZZZ", "2012-06-01"))
    with pytest.raises(InsufficientHistory):
        ex.run(parse_request("AAPL", "2000-05-01"))


def test_a_dead_worker_does_not_lose_the_request(small):
    import os
    import signal
    import time

    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0") as lc, Client(lc) as c:
        ex = DistributedExecutor(client=c, strategy="dask")
        ex.run(parse_request("AAPL", "2012-06-01"))  # warm both workers' imports
        pids = c.run(os.getpid)
        req = parse_request("IBM", "2012-06-01")
        fut = ex.submit(req)
        victim = None
        deadline = time.monotonic() + 60
        while victim is None and time.monotonic() < deadline:
            busy = {w: keys for w, keys in c.processing().items() if any(req.request_id in str(k) for k in keys)}
            victim = next(iter(busy), None)
            time.sleep(0.005)
        assert victim is not None, "the request never started"
        os.kill(pids[victim], signal.SIGKILL)  # the worker dies mid-request
        traced = fut.result(timeout=120)
        alive = set(c.scheduler_info()["workers"])  # the nanny restarts the killed worker at a new address
        # nothing lost: the answer is the one computed without any failure
        assert dataclasses.replace(traced.value, cache={}) == _core(CentralizedExecutor().run(req))
        # the killed process is gone, and the answer came from workers still in the cluster
        assert pids[victim] not in set(c.run(os.getpid).values()) and victim not in alive
        final = {t.id: t.worker for t in traced.trace}[STAGES[-1].id]
        assert final in alive and final != victim
        # the scheduler re-ran what the killed worker held: some task of this request was processing twice
        story = c.run_on_scheduler(lambda dask_scheduler: [
            (str(k), finish) for k, _start, finish, *_ in dask_scheduler.transition_log if req.request_id in str(k)])
        processing = collections.Counter(k for k, finish in story if finish == "processing")
        assert max(processing.values()) >= 2, processing


@pytest.mark.parametrize("strategy", ["dask", "heft"])
def test_predictions_are_identical_between_executors_and_granularities(small, client, strategy):
    from stockdag.pipeline import GRANULARITIES
    from stockdag.placement import NAME

    req = parse_request("AAPL", "2012-08-01")
    central = CentralizedExecutor().run(req)
    try:
        for granularity in GRANULARITIES:
            ex = DistributedExecutor(client=client, strategy=strategy, granularity=granularity)
            dist = ex.run(dataclasses.replace(req, request_id=f"{granularity}{req.request_id[len(granularity):]}"))
            assert _core(dist) == _core(central), granularity
            assert sorted(t.id for t in dist.trace) == sorted(t.id for t in central.trace)
            workers = set(client.scheduler_info()["workers"])
            assert {t.worker for t in dist.trace} <= workers
            if strategy == "heft":  # every stage of a fused task carries that task's plan
                assert all(t.planned_worker == t.worker for t in dist.trace), granularity
    finally:
        if client.run_on_scheduler(lambda dask_scheduler: NAME in dask_scheduler.plugins):
            client.unregister_scheduler_plugin(NAME)


def test_auto_granularity_follows_the_cluster_threads(small):
    from distributed import Client, LocalCluster

    req = parse_request("AAPL", "2012-08-01")
    central = CentralizedExecutor().run(req)
    for n, expected in ((1, "pipeline-"), (2, "select-")):
        with LocalCluster(n_workers=n, threads_per_worker=1, processes=False, protocol="tcp://", host="127.0.0.1",
                          dashboard_address="127.0.0.1:0") as cluster, Client(cluster) as client:
            ex = DistributedExecutor(client=client, strategy="dask", granularity="auto")
            assert ex.granularity_now() == ("request" if n == 1 else "branch")
            future = ex.submit(dataclasses.replace(req, request_id=f"{n:032x}"))
            assert future.key.startswith(expected)
            assert dataclasses.replace(future.result().value, cache={}) == _core(central)


def _hold(name):
    from distributed import Event

    Event(f"{name}-reached").set()
    Event(name).wait()
    return name


def test_load_granularity_counts_this_clients_requests_in_flight(small):
    from distributed import Client, Event, LocalCluster

    reqs = [parse_request(s, "2012-08-01") for s in ("AAPL", "IBM", "MSFT")]
    central = [CentralizedExecutor().run(r) for r in reqs]
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp://", host="127.0.0.1",
                      dashboard_address="127.0.0.1:0") as cluster, Client(cluster) as client:
        ex = DistributedExecutor(client=client, strategy="dask", granularity="load")
        # both worker threads busy with a task of someone else's, so no request can finish meanwhile
        holds = [client.submit(_hold, f"hold-{i}", workers=[w], pure=False) for i, w in enumerate(cluster.scheduler.workers)]
        for i in range(2):
            Event(f"hold-{i}-reached", client=client).wait()
        futures = [ex.submit(r) for r in reqs]
        assert [f.key.split("-")[0] for f in futures] == ["select", "select", "pipeline"]
        assert ex.granularities == {"branch": 2, "request": 1}
        for i in range(2):
            Event(f"hold-{i}", client=client).set()
        client.gather(holds)
        answers = client.gather(futures)
    assert [dataclasses.replace(a.value, cache={}) for a in answers] == [_core(c) for c in central]


def test_a_one_task_request_is_submitted_as_a_task_with_its_annotation(small, client):
    from stockdag.pipeline import build_graph, request_task

    req = parse_request("IBM", "2012-07-02")
    key, _func, annotations = request_task(req)
    # the delayed graph of the same granularity names the same one task
    assert list(dict(build_graph(req, "request").__dask_graph__())) == [key]
    ex = DistributedExecutor(client=client, strategy="dask", granularity="request")
    calls = collections.Counter()
    real_submit, real_compute = client.submit, client.compute
    client.submit = lambda *a, **k: calls.update(["submit"]) or real_submit(*a, **k)
    client.compute = lambda *a, **k: calls.update(["compute"]) or real_compute(*a, **k)
    try:
        fut = ex.submit(req)
        assert fut.key == key
        traced = fut.result()  # the task is in the scheduler's memory while its future is held
        seen = client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.tasks[key].annotations)
        fut.release()
        ex.submit_one_task = False  # the same request through its delayed graph
        graph = ex.run(dataclasses.replace(req, request_id="g" + req.request_id[1:]))
    finally:
        del client.submit, client.compute
    assert calls == {"submit": 1, "compute": 1}
    assert seen == {"stockdag": annotations}
    assert dataclasses.replace(traced.value, cache={}) == _core(graph)



def test_the_overhead_tools_dask_variant_runs_without_an_earlier_strategys_plugin(small, client):
    from stockdag.lab.overhead import measure
    from stockdag.placement import NAME

    # variants run centralized, heft, dask for the one request: the dask one must not be planned by heft's plugin
    m = measure(("refit",), workers=1, requests=1, batch=1, rounds=0, granularities=("stage",), batchings=("dask",),
                strategies=("heft", "dask"), client=client)
    assert list(m.latency["refit"]) == ["centralized", "stage/dask/heft", "stage/dask/dask"]
    assert not client.run_on_scheduler(lambda dask_scheduler: NAME in dask_scheduler.plugins)


def test_unregister_leaves_dasks_own_placement(client):
    from stockdag.placement import NAME, register, unregister

    register(client, "heft")
    assert unregister(client) is True
    assert not client.run_on_scheduler(lambda dask_scheduler: NAME in dask_scheduler.plugins)
    assert unregister(client) is False

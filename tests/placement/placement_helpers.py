"""Graph shapes and cluster settings shared by the placement tests (the fixtures are in conftest.py)."""
from __future__ import annotations

import uuid

import dask
from distributed import get_task_stream

SMALL_PIPELINE = {
    # keeps a real stockdag request well under a second
    "stockdag.models.window": 120,
    "stockdag.data.min_history": 150,
    "stockdag.data.history_days": 200,
}


@dask.delayed(pure=False)
def step(*inputs):
    return sum(inputs) + 1


def request_task(stage: str, rid: str, *inputs):
    """One task of request ``rid``: key ``<stage>-<rid>`` and the ``stockdag`` annotation the plugin plans by."""
    with dask.annotate(stockdag={"name": stage, "request": rid}):
        return step(*inputs, dask_key_name=f"{stage}-{rid}")


def chain(rid: str, n: int = 5):
    """``s0 -> s1 -> ... -> s{n-1}``, keys ``s<i>-<rid>``, annotated as one request."""
    node = request_task("s0", rid)
    for i in range(1, n):
        node = request_task(f"s{i}", rid, node)
    return node


def fork_join(rid: str, width: int = 4):
    """``source -> branch_0..branch_{width-1} -> join``, keys ``<stage>-<rid>``, annotated as one request."""
    source = request_task("source", rid)
    branches = [request_task(f"branch_{i}", rid, source) for i in range(width)]
    return request_task("join", rid, *branches)


def stockdag_graph(rid: str | None = None):
    """A real stockdag request graph (12 annotated tasks); ``rid`` is ignored (the request makes one)."""
    from stockdag.pipeline import build_graph
    from stockdag.pipeline.request import parse_request

    with dask.config.set(SMALL_PIPELINE):
        request = parse_request("AAPL", "2012-06-01")
    return build_graph(request), request.request_id


#: LocalCluster arguments: loopback TCP (the inproc transport looks up this host's
#: public IP, which the suite's network guard refuses), no dashboard, and the
#: scheduler's HTTP server on a free port
QUIET = {
    "protocol": "tcp://",
    "host": "127.0.0.1",
    "dashboard_address": "127.0.0.1:0",
    "scheduler_kwargs": {"dashboard": False},
}


def quiet(**scheduler_kwargs) -> dict:
    """:data:`QUIET` with more scheduler arguments."""
    return {**QUIET, "scheduler_kwargs": {**QUIET["scheduler_kwargs"], **scheduler_kwargs}}


SHAPES = {
    "chain": lambda: (chain(rid := uuid.uuid4().hex), rid),
    "fork-join": lambda: (fork_join(rid := uuid.uuid4().hex), rid),
    "stockdag": stockdag_graph,
}


def run_and_record(client, graph):
    """Compute ``graph``; return its result and ``{key: worker}`` from the scheduler's
    task stream (the scheduler's own record of where each task ran)."""
    with get_task_stream(client=client) as stream:
        result = client.compute(graph, optimize_graph=False).result()
    return result, {entry["key"]: entry["worker"] for entry in stream.data}

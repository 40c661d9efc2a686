import dataclasses

import dask
import pytest

from stockdag.pipeline import FINAL, STAGES, build_graph, run_stages, task_key
from stockdag.pipeline.request import parse_request


def test_stage_table_names_c1_to_c12_in_dependency_order():
    ids = [s.id for s in STAGES]
    assert sorted(ids, key=lambda i: int(i[1:])) == [f"C{i}" for i in range(1, 13)]
    seen = set()
    for s in STAGES:
        assert set(s.inputs) <= seen, f"{s.id} runs before its inputs"
        seen.add(s.id)
    by_id = {s.id: s for s in STAGES}
    assert by_id["C2"].inputs == ("C1", "C6") and by_id["C5"].inputs == ("C1", "C6")
    assert all(set(by_id[m].inputs) >= {"C3", "C4"} for m in ("C7", "C8", "C9", "C10", "C11"))
    assert {"C7", "C8", "C9", "C10", "C11"} <= set(by_id[FINAL].inputs)


def test_graph_keys_are_unique_per_request_and_annotated(small):
    a, b = parse_request("AAPL", "2012-06-01"), parse_request("AAPL", "2012-06-01")
    ga, gb = build_graph(a), build_graph(b)
    keys_a, keys_b = set(ga.dask.keys()), set(gb.dask.keys())
    assert len(keys_a) == 12 and not keys_a & keys_b
    assert ga.key == task_key(STAGES[-1], a.request_id) == f"select-{a.request_id}"
    annotations = {}
    for layer in ga.dask.layers.values():
        for k in layer:
            annotations[k] = (layer.annotations or {}).get("stockdag")
    assert annotations[f"make_features-{a.request_id}"] == {"stage": "C3", "name": "make_features", "request": a.request_id, "symbol": "AAPL"}
    assert all(v is not None for v in annotations.values())


def test_threaded_dask_and_sequential_give_the_same_answer(small):
    with dask.config.set({"stockdag.cache.backend": "none"}):
        req = parse_request("IBM", "2012-09-14")  # the request carries the cache setting
    assert req.cache_backend == "none"
    seq = run_stages(req)
    (threaded,) = dask.compute(build_graph(req), scheduler="threads", optimize_graph=False)
    # both computed everything from the source: neither answer came from the other's cache
    assert seq.value.cache == threaded.value.cache == {"prices": "miss", "news": "miss"}
    assert threaded.value == seq.value  # every field: winner, next close, all candidates, sentiment
    assert {t.id for t in seq.trace} == {t.id for t in threaded.trace} == {s.id for s in STAGES}


# ---------------------------------------------------------------- granularity
def test_granularities_are_derived_from_the_stage_table():
    from stockdag.pipeline import GRANULARITIES, task_groups

    for g in GRANULARITIES:
        groups = task_groups(g)
        # every stage in exactly one task, and the tasks in table order
        assert [s for grp in groups for s in grp.stages] == sorted(
            STAGES, key=lambda s: [x for grp in groups for x in grp.stages].index(s)
        )
        assert sorted(s.id for grp in groups for s in grp.stages) == sorted(s.id for s in STAGES)
    assert [grp.ids for grp in task_groups("stage")] == [(s.id,) for s in STAGES]
    assert [grp.ids for grp in task_groups("request")] == [tuple(s.id for s in STAGES)]
    # each chain of the stage graph becomes one task; the five models stay apart
    assert [grp.code for grp in task_groups("branch")] == [
        "C1+C6", "C2+C3", "C5+C4", "C7", "C8", "C9", "C10", "C11", "C12",
    ]


def test_unknown_granularity_is_an_invalid_request():
    from stockdag.errors import InvalidRequest

    with pytest.raises(InvalidRequest, match="unknown granularity 'task'; choose one of: stage, branch, request, auto"):
        build_graph(parse_request("AAPL", "2012-06-01"), "task")


@pytest.mark.parametrize("granularity", ["branch", "request"])
def test_every_granularity_gives_the_same_answer_and_traces_every_stage(small, granularity):
    from stockdag.pipeline import graph_keys, task_groups

    req = parse_request("IBM", "2012-09-14")
    seq = run_stages(req)
    graph = build_graph(req, granularity)
    assert len(graph.dask) == len(task_groups(granularity))
    assert set(graph.dask.keys()) == set(graph_keys(req.request_id, granularity).values())
    annotations = {k: (layer.annotations or {}).get("stockdag") for layer in graph.dask.layers.values() for k in layer}
    assert all(a["request"] == req.request_id and a["symbol"] == "IBM" for a in annotations.values())
    (fused,) = dask.compute(graph, scheduler="threads", optimize_graph=False)
    # the same answer; only the cache differs (the sequential run filled it)
    assert dataclasses.replace(fused.value, cache={}) == dataclasses.replace(seq.value, cache={})
    assert fused.value.cache == {"prices": "hit", "news": "hit"} and seq.value.cache == {"prices": "miss", "news": "miss"}
    # each stage keeps its own trace: id, worker, start, end, in the order they ran
    assert sorted(t.id for t in fused.trace) == sorted(s.id for s in STAGES)
    by_id = {t.id: t for t in fused.trace}
    for s in STAGES:
        assert all(by_id[i].end <= by_id[s.id].start for i in s.inputs)


def test_granularity_comes_from_config(small):
    req = parse_request("IBM", "2012-09-14")
    with dask.config.set({"stockdag.pipeline.granularity": "request"}):
        assert len(build_graph(req).dask) == 1
    with dask.config.set({"stockdag.pipeline.granularity": "stage"}):
        assert len(build_graph(req).dask) == 12
    assert len(build_graph(req, "auto").dask) == 12  # no cluster known: one task a stage


def test_auto_granularity_fuses_everything_on_one_thread_only():
    from stockdag.pipeline import resolve_granularity

    assert resolve_granularity("auto", 1) == "request"
    assert resolve_granularity("auto", 2) == "branch"
    assert resolve_granularity("auto", None) == "stage"  # nothing known about the cluster
    assert resolve_granularity("stage", 1) == "stage"  # an explicit choice is kept


def test_load_granularity_stops_spreading_when_every_thread_is_busy():
    from stockdag.pipeline import resolve_granularity

    assert resolve_granularity("load", 2, 0) == resolve_granularity("load", 2, 1) == "branch"
    assert resolve_granularity("load", 2, 2) == resolve_granularity("load", 2, 5) == "request"
    assert resolve_granularity("load", 1, 0) == "request"
    assert resolve_granularity("load", None, 9) == "stage"
    assert resolve_granularity("auto", 2, 9) == "branch"  # auto ignores the load

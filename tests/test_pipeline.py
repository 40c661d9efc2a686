import dask
import pytest

from stockdag.pipeline import FINAL, STAGES, build_graph, run_stages, task_key
from stockdag.request import parse_request


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

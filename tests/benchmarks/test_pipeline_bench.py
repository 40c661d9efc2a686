"""Per-stage costs under both profiles, and one request centralized vs distributed.

These measure; they assert nothing about time, only that what they timed gave the right answer
(each stage its reference output, each request its prediction). ``make bench`` runs them timed;
the test command runs each once with timing disabled. Timed, at the default (full-size) settings: the
costs the experiments see; run once untimed, for their answers alone, on conftest's small windows. The
cache is off so C2/C5 fetch.
"""
from __future__ import annotations

import dataclasses

import dask
import pytest
from dask.base import tokenize
from distributed import as_completed

from stockdag.domain.models import REGISTRY
from stockdag.lab.demo import request_mix
from stockdag.lab.train import train
from stockdag.pipeline import STAGES, stage_table
from stockdag.pipeline.request import parse_request
from stockdag.pipeline.spec import DEFAULT, STEPS, PipelineSpec
from stockdag.pipeline.trace import Traced, run_traced
from stockdag.run import CentralizedExecutor, DistributedExecutor

pytestmark = pytest.mark.slow

#: every registered model and every extra step: the stages beyond the default table are timed in it
EVERYTHING = PipelineSpec(name="everything", models=tuple(m.name for m in REGISTRY), steps=tuple(STEPS))
STAGE_CASES = [(DEFAULT, s) for s in STAGES] + [
    (EVERYTHING, s) for s in stage_table(EVERYTHING) if s.id not in {d.id for d in STAGES}]


@pytest.fixture(scope="module")
def store(tmp_path_factory, sized):
    folder = str(tmp_path_factory.mktemp("models"))
    with dask.config.set(sized):
        train(["AAPL"], "2010-12-31", folder)
        train(["AAPL"], "2010-12-31", folder, pipeline=EVERYTHING)
    return folder


@pytest.fixture(autouse=True)
def no_cache(store, sized):
    # every request carries these settings (parse_request), so the cluster's workers compute with them too
    with dask.config.set({**sized, "stockdag.cache.backend": "none", "stockdag.models.store": store}):
        yield


def _stage_inputs(profile: str, spec: PipelineSpec = DEFAULT) -> dict[str, tuple[list, object]]:
    """Each stage's input values and output, from one centralized run of AAPL 2012-06-01."""
    request = parse_request("AAPL", "2012-06-01", profile=profile, pipeline=spec)
    done: dict[str, Traced] = {}
    inputs: dict[str, tuple[list, object]] = {}
    for stage in stage_table(spec):
        args = [done[i].value for i in stage.inputs] if stage.inputs else [request]
        done[stage.id] = run_traced(stage.id, stage.name, stage.func, *args)
        inputs[stage.id] = (args, done[stage.id].value)
    return inputs


def _core(result):
    # everything but how the answer was produced (cache state, mode, trace)
    return dataclasses.replace(result.prediction, cache={})


_INPUTS: dict[str, dict] = {}


@pytest.mark.parametrize("profile", ["refit", "pretrained"])
@pytest.mark.parametrize("spec, stage", STAGE_CASES, ids=[f"{s.id}-{s.name}" for _, s in STAGE_CASES])
def test_stage_cost(benchmark, spec, stage, profile):
    if (profile, spec.name) not in _INPUTS:
        _INPUTS[profile, spec.name] = _stage_inputs(profile, spec)
    benchmark.group = f"stage cost ({profile})"
    benchmark.extra_info.update(stage=stage.id, profile=profile, pipeline=spec.name)
    args, expected = _INPUTS[profile, spec.name][stage.id]
    out = benchmark(stage.func, *args)
    assert type(out) is type(expected) and tokenize(out) == tokenize(expected)  # the same output, frames included


@pytest.mark.parametrize("mode", ["centralized", "distributed"])
def test_one_request(benchmark, mode, client):
    benchmark.group = "one request (refit), 1 in flight"
    ex = CentralizedExecutor() if mode == "centralized" else DistributedExecutor(client=client, strategy="dask")
    req = parse_request("MSFT", "2012-06-01")
    first = ex.run(req)  # warm-up: imports and first fits on the workers
    result = benchmark(ex.run, req)
    assert result.mode == mode and _core(result) == _core(first)
    assert _core(result) == _core(CentralizedExecutor().run(req))  # both modes: the same prediction


@pytest.mark.parametrize("mode", ["centralized", "distributed"])
def test_sixteen_in_flight(benchmark, mode, client):
    benchmark.group = "16 requests (refit), 16 in flight"
    reqs = request_mix(16, seed=1)
    if mode == "centralized":
        ex = CentralizedExecutor()

        def batch():  # the centralized server runs one request at a time
            return [ex.run(r).prediction for r in reqs]
    else:
        ex = DistributedExecutor(client=client, strategy="dask")
        client.gather([ex.submit(r) for r in reqs[:4]])  # warm-up

        def batch():
            futures = [ex.submit(r) for r in reqs]
            for fut in as_completed(futures):
                fut.result()  # raises if a request failed
            return [fut.result().value for fut in futures]

    predictions = benchmark.pedantic(batch, rounds=3, iterations=1, warmup_rounds=0)
    # every request answered, each for its own symbol and date, as the centralized executor answers it
    assert [(p.symbol, p.as_of) for p in predictions] == [(r.symbol, r.as_of) for r in reqs]
    reference = CentralizedExecutor()
    for r, p in list(zip(reqs, predictions))[:2]:
        assert dataclasses.replace(p, cache={}) == _core(reference.run(r))

"""A live centralized stockdag server (uvicorn on 127.0.0.1, started here) answers correctly.

Small model windows (conftest ``SMALL``) keep a refit request well under a
second; ``create_app`` snapshots them, so the server keeps them.
"""
from __future__ import annotations

import asyncio
import json
import os

import dask
import httpx
import pytest

from stockdag.bench import BenchConfig, RequestMix, probe_stockdag, run
from stockdag.cli import main
from stockdag.pipeline import stage_table
from stockdag.pipeline_spec import DEFAULT
from stockdag.serve import ServerThread, create_app

# the conftest's SMALL settings; repeated because a module-scoped server cannot use its function-scoped fixture
SMALL = {"stockdag.models.window": 120, "stockdag.models.error_days": 10, "stockdag.data.min_history": 150,
         "stockdag.data.history_days": 200, "stockdag.data.news_days": 320}

STAGES = {s.id for s in stage_table(DEFAULT)}  # the default pipeline's, from its owner


@pytest.fixture(scope="module")
def live():
    with dask.config.set(SMALL):
        app = create_app("centralized")
    with ServerThread(app) as server:
        yield server.url


def test_predict_200_with_trace(live):
    r = httpx.get(f"{live}/predict/aapl", params={"as_of": "2012-06-01"}, timeout=60)
    assert r.status_code == 200
    body = r.json()
    assert body["symbol"] == "AAPL" and body["as_of"] == "2012-06-01" and body["mode"] == "centralized"
    assert {t["id"] for t in body["trace"]} == STAGES
    assert body["winner"] in {c["model"] for c in body["candidates"]}


@pytest.mark.parametrize("path, status, error", [
    ("/predict/ZZZZ", 404, "UnknownSymbol"),
    ("/predict/AAPL?as_of=2012-13-45", 422, "InvalidRequest"),
    ("/predict/$$$", 422, "InvalidRequest"),
    ("/predict/AAPL?as_of=2030-01-01", 422, "InsufficientHistory"),
    ("/predict/AAPL?as_of=1990-01-01", 422, "InsufficientHistory"),
])
def test_bad_input_maps_to_status(live, path, status, error):
    r = httpx.get(live + path, timeout=60)
    assert r.status_code == status
    body = r.json()
    assert body["error"] == error and "Traceback" not in r.text
    if status == 404:
        assert "AAPL" in body["available"] and "AAPL" in body["detail"]


def test_health_symbols_metrics_docs(live):
    health = httpx.get(f"{live}/health").json()
    assert health["service"] == "stockdag" and health["mode"] == "centralized" and health["workers"] == 1
    assert "AAPL" in httpx.get(f"{live}/symbols").json()["symbols"]
    httpx.get(f"{live}/predict/ZZZZ")
    metrics = httpx.get(f"{live}/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert 'stockdag_http_requests_total{endpoint="/predict/{symbol}",status="404"}' in text
    assert "stockdag_http_request_duration_seconds_bucket" in text and "stockdag_http_in_flight" in text
    assert "/predict/{symbol}" in httpx.get(f"{live}/openapi.json").json()["paths"]
    assert httpx.get(f"{live}/docs").status_code == 200


def test_bench_probes_a_stockdag_server_and_sends_the_mix(live):
    symbols = asyncio.run(probe_stockdag(live))
    assert symbols and "AAPL" in symbols
    mix = RequestMix(["AAPL", "IBM"], "2012-06-01", "2012-06-08", seed=0)
    result = run(BenchConfig(live, users=1, requests=3, mix=mix, timeout=60))
    assert result.summary.ok == 3
    assert result.records["path"].str.startswith("/predict/").all()
    assert {t["id"] for t in json.loads(result.records["trace"].iloc[0])} == STAGES


def test_admission_control_and_health_under_load():
    # one request admitted at a time and a 60 ms deadline: of 4 concurrent requests, one is admitted
    # (and runs past its deadline: 504), the others are refused at once (503 + Retry-After), and
    # /health answers while the pipeline runs
    with dask.config.set(SMALL):
        app = create_app("centralized", max_in_flight=1, deadline=0.06, retry_after=2)

    async def load(url):
        async with httpx.AsyncClient(base_url=url, timeout=60) as c:
            preds = [c.get(f"/predict/{s}", params={"as_of": "2012-06-01"}) for s in ("AAPL", "IBM", "MSFT", "GOOG")]
            *answers, health = await asyncio.gather(*preds, c.get("/health"))
            return answers, health

    with ServerThread(app) as server:
        answers, health = asyncio.run(load(server.url))
        after = httpx.get(f"{server.url}/health").json()
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [503, 503, 503, 504]
    assert all(a.headers["retry-after"] == "2" for a in answers if a.status_code == 503)
    assert health.status_code == 200 and after["in_flight"] == 0


def test_serve_rejects_unknown_mode_and_strategy(capsys):
    assert main(["serve", "--mode", "distributed", "--strategy", "no-such-strategy", "--port", "1"]) == 2
    assert "unknown strategy" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("mode, kwargs", [("replicated", {"replicas": 2}), ("distributed", {"workers": 2})])
def test_other_modes_serve_the_same_answer(live, mode, kwargs):
    answer = ("symbol", "as_of", "profile", "source", "prediction", "winner", "candidates", "sentiment")
    ref = httpx.get(f"{live}/predict/IBM", params={"as_of": "2012-06-01"}, timeout=120)
    assert ref.status_code == 200 and ref.json()["mode"] == "centralized"
    with dask.config.set(SMALL):
        app = create_app(mode, **kwargs)
    with ServerThread(app) as server:
        r = httpx.get(f"{server.url}/predict/IBM", params={"as_of": "2012-06-01"}, timeout=120)
        health = httpx.get(f"{server.url}/health").json()
        missing = httpx.get(f"{server.url}/predict/ZZZZ", timeout=60)
    assert r.status_code == 200 and r.json()["mode"] == ("centralized" if mode == "replicated" else "distributed")
    # the same answer as the centralized server: prediction, winner and every candidate's numbers
    assert {k: r.json()[k] for k in answer} == {k: ref.json()[k] for k in answer}
    assert {t["id"] for t in r.json()["trace"]} == STAGES
    assert health["mode"] == mode and health["workers"] == 2
    assert missing.status_code == 404
    if mode == "distributed":
        assert health["dashboard"] and health["strategy"] == "dask"


@pytest.mark.slow
def test_distributed_server_places_tasks_with_a_strategy():
    # an asynchronous client registers the placement plugin in DistributedExecutor.start()
    with dask.config.set(SMALL):
        app = create_app("distributed", workers=2, strategy="round-robin")
    with ServerThread(app) as server:
        body = httpx.get(f"{server.url}/predict/MSFT", params={"as_of": "2012-06-01"}, timeout=120).json()
        health = httpx.get(f"{server.url}/health").json()
    assert health["strategy"] == "round-robin"
    planned = {t["id"]: t["planned_worker"] for t in body["trace"]}
    assert all(planned.values()), planned
    assert all(t["planned_worker"] == t["worker"] for t in body["trace"])
    assert len({t["worker"] for t in body["trace"]}) == 2  # round-robin spreads one request's stages


@pytest.mark.parametrize("mode, kwargs", [("centralized", {}), ("replicated", {"replicas": 1}),
                                          ("distributed", {"workers": 1})])
def test_a_server_started_with_a_spec_answers_with_its_stages_ensemble_and_interval(mode, kwargs):
    from stockdag.pipeline_spec import load_pipeline

    deep = load_pipeline(os.path.join(os.path.dirname(__file__), "..", "..", "experiments", "pipelines", "deep.yaml"))
    with dask.config.set({**SMALL, "stockdag.pipeline.spec": deep.to_dict()}):
        app = create_app(mode, **kwargs)
    # the configuration is restored: the server's snapshot, not the process, carries the spec
    assert dask.config.get("stockdag.pipeline.spec") is None
    with ServerThread(app) as server:
        body = httpx.get(f"{server.url}/predict/AAPL", params={"as_of": "2012-06-01"}, timeout=60).json()
    assert {t["id"] for t in body["trace"]} == {s.id for s in stage_table(deep)}
    assert body["pipeline"] == "deep" and [c["model"] for c in body["candidates"]] == list(deep.models)
    iv = body["interval"]
    assert iv["level"] == deep.interval_level and iv["lower"] < body["prediction"]["next_return"] < iv["upper"]
    assert abs(sum(body["ensemble"]["weights"].values()) - 1) < 1e-9

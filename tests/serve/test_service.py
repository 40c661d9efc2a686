"""A live centralized stockdag server (uvicorn on 127.0.0.1, started here) answers correctly.

Small model windows (conftest ``SMALL``) keep a refit request well under a
second; ``create_app`` snapshots them, so the server keeps them.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import os

import dask
import httpx
import pytest

from stockdag.cli import main
from stockdag.lab.bench import BenchConfig, RequestMix, probe_stockdag, run
from stockdag.pipeline import stage_table
from stockdag.pipeline.spec import DEFAULT
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
    ("/predict/AAPL?as_of=2030-01-01", 422, "OutsideData"),
    ("/predict/AAPL?as_of=1990-01-01", 422, "InsufficientHistory"),
    ("/predict/AAPL?as_of=0002-01-01", 422, "OutsideData"),
    ("/predict/AAPL?as_of=9999-12-31", 422, "OutsideData"),
])
def test_bad_input_maps_to_status(live, path, status, error):
    r = httpx.get(live + path, timeout=60)
    assert r.status_code == status
    body = r.json()
    assert body["error"] == error and "Traceback" not in r.text
    if status == 404:
        assert "AAPL" in body["available"] and "AAPL" in body["detail"]


@pytest.mark.parametrize("path, named", [
    ("/predict/AAPL?asof=2012-06-01", ["asof"]),
    ("/predict/AAPL?as_of=2012-06-01&profile=pretrained", ["profile"]),
    ("/predict/AAPL?x=1&y=2", ["x", "y"]),
    ("/symbols?profile=pretrained", ["profile"]),
    ("/health?verbose=1", ["verbose"]),
])
def test_unknown_query_parameters_are_422s_naming_them(live, path, named):
    # a typo (asof) used to answer 200 for the last day of data, and ?profile= was silently ignored
    r = httpx.get(live + path, timeout=60)
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["error"] == "InvalidRequest" and all(repr(n) in body["detail"] for n in named), body


def test_symbols_give_each_symbols_valid_as_of_range(live):
    body = httpx.get(f"{live}/symbols").json()
    assert body["profile"] == "refit" and set(body["as_of"]) == set(body["symbols"])
    aapl = body["as_of"]["AAPL"]
    assert aapl["first"] < "2012-06-01" <= aapl["last"] == "2013-03-01"
    before = (dt.date.fromisoformat(aapl["first"]) - dt.timedelta(days=1)).isoformat()
    early = httpx.get(f"{live}/predict/AAPL", params={"as_of": before}, timeout=60)
    assert early.status_code == 422 and aapl["first"] in early.json()["detail"]
    if body["as_of"]["FB"] is None:  # 196 days of prices, fewer than min_history
        fb = httpx.get(f"{live}/predict/FB", params={"as_of": "2013-01-02"}, timeout=60)
        assert fb.status_code == 422 and "/symbols" in fb.json()["detail"]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_api_docs_load_every_asset_from_the_server_itself(live, page):
    # offline (or behind a firewall) a page that loads swagger-ui or redoc from a CDN is blank
    import re

    html = httpx.get(live + page).text
    refs = re.findall(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""", html)
    assert refs and not [r for r in refs if re.match(r"(https?:)?//", r)], refs
    assets = [r for r in refs if r.endswith((".js", ".css", ".png"))]
    assert assets and all(httpx.get(live + a).status_code == 200 for a in assets), assets


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
    ranges = httpx.get(f"{live}/symbols").json()["as_of"]
    assert symbols == ranges  # the default mix (stockdag bench, the web app) draws within them
    for path in RequestMix(symbols, "2000-01-03", "2013-03-01", seed=0).paths(500):
        sym, date = path.removeprefix("/predict/").split("?as_of=")
        assert ranges[sym] and ranges[sym]["first"] <= date <= ranges[sym]["last"]
    mix = RequestMix(["AAPL", "IBM"], "2012-06-01", "2012-06-08", seed=0)
    result = run(BenchConfig(live, users=1, requests=3, mix=mix, timeout=60))
    assert result.summary.ok == 3
    assert result.records["path"].str.startswith("/predict/").all()
    assert {t["id"] for t in json.loads(result.records["trace"].iloc[0])} == STAGES


def _gate_the_pipeline(monkeypatch):
    """Hold every centralized pipeline run at a gate: returns (gate, started); the run proceeds once gate is set."""
    import threading

    import stockdag.serve.backends as backends

    gate, started, real = threading.Event(), threading.Event(), backends._run_whole

    def gated(request):
        started.set()
        assert gate.wait(120), "the test never opened the gate"
        return real(request)

    monkeypatch.setattr(backends, "_run_whole", gated)
    return gate, started


def test_admission_control_and_health_under_load(monkeypatch):
    # one request admitted at a time: of 4 concurrent requests, one is admitted (and, held by a gate, runs
    # past its deadline: 504), the others are refused at once (503 + Retry-After), and /health answers
    # while the pipeline runs; the gate (not a 60 ms window) keeps the admitted work running throughout
    gate, started = _gate_the_pipeline(monkeypatch)
    with dask.config.set(SMALL):
        app = create_app("centralized", max_in_flight=1, deadline=0.5, retry_after=2)

    async def load(url):
        async with httpx.AsyncClient(base_url=url, timeout=60) as c:
            preds = [asyncio.create_task(c.get(f"/predict/{s}", params={"as_of": "2012-06-01"}))
                     for s in ("AAPL", "IBM", "MSFT", "GOOG")]
            while not started.is_set():  # an event, not a time: the admitted request's pipeline is running
                await asyncio.sleep(0.01)
            health = await c.get("/health")
            return await asyncio.gather(*preds), health

    with ServerThread(app) as server:
        answers, health = asyncio.run(load(server.url))
        assert httpx.get(f"{server.url}/health").json()["in_flight"] == 1  # the 504's work still counts
        gate.set()
        _wait_until(lambda: httpx.get(f"{server.url}/health").json()["in_flight"] == 0, "the admitted work ended")
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [503, 503, 503, 504]
    assert all(a.headers["retry-after"] == "2" for a in answers if a.status_code == 503)
    assert health.status_code == 200 and health.json()["in_flight"] == 1
    assert app.state.admission.admitted == 1 and app.state.admission.released == 1


def test_serve_rejects_unknown_mode_and_strategy(capsys):
    assert main(["serve", "--mode", "distributed", "--strategy", "no-such-strategy", "--port", "1"]) == 2
    assert "unknown placement strategy" in capsys.readouterr().err


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
        assert health["dashboard"] and health["strategy"] == "adaptive"  # the configured default


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
    from stockdag.pipeline.spec import load_pipeline

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


def _wait_until(predicate, what: str, limit: float = 120.0):
    # waits for an event (not a time band): fails only if it never happens
    import time

    end = time.monotonic() + limit
    while not predicate():
        assert time.monotonic() < end, f"never happened: {what}"
        time.sleep(0.02)


def test_admission_counts_work_that_outlives_its_504(monkeypatch):
    # the pipeline thread cannot be stopped: after the client's 504 its work still runs, so it must still
    # count, and a second request is refused (503) until that work ends; proven with a gate, not timings
    gate, started = _gate_the_pipeline(monkeypatch)
    with dask.config.set(SMALL):
        app = create_app("centralized", max_in_flight=1, deadline=0.1)
    with ServerThread(app) as server:
        url = server.url
        first = httpx.get(f"{url}/predict/AAPL", params={"as_of": "2012-06-01"}, timeout=60)
        assert first.status_code == 504 and started.is_set()
        assert httpx.get(f"{url}/health").json()["in_flight"] == 1  # the work, not the (finished) handler
        assert "stockdag_http_in_flight 1.0" in httpx.get(f"{url}/metrics").text
        second = httpx.get(f"{url}/predict/IBM", params={"as_of": "2012-06-01"}, timeout=60)
        assert second.status_code == 503, second.text
        gate.set()
        _wait_until(lambda: httpx.get(f"{url}/health").json()["in_flight"] == 0, "the first request's work ended")
    assert app.state.admission.admitted == 1 and app.state.admission.released == 1


@pytest.mark.slow
def test_replicated_admission_counts_work_that_outlives_its_504():
    # a replica process cannot be stopped either; 3 s of emulated fetch latency keep its work running
    # long after the 0.3 s deadline, and the count follows the work, not the handler
    cfg = {**SMALL, "stockdag.data.latency.distribution": "constant", "stockdag.data.latency.mean": 3.0,
           "stockdag.cache.backend": "none"}
    with dask.config.set(cfg):
        app = create_app("replicated", replicas=1, max_in_flight=1, deadline=0.3)
    with ServerThread(app) as server:
        url = server.url
        assert httpx.get(f"{url}/predict/AAPL", params={"as_of": "2012-06-01"}, timeout=60).status_code == 504
        assert httpx.get(f"{url}/predict/IBM", params={"as_of": "2012-06-01"}, timeout=60).status_code == 503
        _wait_until(lambda: httpx.get(f"{url}/health").json()["in_flight"] == 0, "the replica's work ended")
    assert app.state.admission.admitted == 1 and app.state.admission.released == 1

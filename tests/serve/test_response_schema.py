"""The server's response_model (PredictionJSON, owned by stockdag.pipeline.result) validates what /predict sends."""
from __future__ import annotations

import dask
import httpx
import pytest

import stockdag.serve.backends as backends
from stockdag.serve import ServerThread, create_app

# the conftest's SMALL settings; repeated because a module-scoped server cannot use its function-scoped fixture
SMALL = {"stockdag.models.window": 120, "stockdag.models.error_days": 10, "stockdag.data.min_history": 150,
         "stockdag.data.history_days": 200, "stockdag.data.news_days": 320}

BODY = {"symbol": "AAPL", "as_of": "2012-06-01", "profile": "refit", "source": "bundled", "mode": "centralized",
        "request_id": "r1", "prediction": {"last_close": 100.0, "next_close": float("nan"), "next_return": float("inf")},
        "winner": "a", "candidates": [{"model": "a", "prediction": 0.01, "recent_error": float("nan"), "train_rows": 3}],
        "sentiment": {}, "cache": {}, "trace": [], "pipeline": "default"}


@pytest.fixture(scope="module")
def answer():
    """Serve whatever body the test puts in ``bodies[0]`` as the backend's answer."""
    bodies = [BODY]
    patch = pytest.MonkeyPatch()
    patch.setattr(backends, "_run_whole", lambda request: bodies[0])
    with dask.config.set(SMALL):
        app = create_app("centralized")
    try:
        with ServerThread(app) as server:
            def get(body):
                bodies[0] = body
                return httpx.get(f"{server.url}/predict/AAPL", params={"as_of": "2012-06-01"}, timeout=60)
            yield get
    finally:
        patch.undo()


def test_nan_and_infinities_are_sent_as_null(answer):
    r = answer(BODY)
    assert r.status_code == 200
    body = r.json()
    assert body["prediction"] == {"last_close": 100.0, "next_close": None, "next_return": None}
    assert body["candidates"][0]["recent_error"] is None
    assert "ensemble" not in body and "requested_as_of" not in body  # absent optional keys stay absent


@pytest.mark.parametrize("broken", [
    {k: v for k, v in BODY.items() if k != "winner"},  # a key of the schema missing
    BODY | {"candidates": [{"model": "a"}]},  # a nested object incomplete
    BODY | {"trace": "C1"},  # a wrong type
])
def test_a_body_that_breaks_the_schema_is_a_500_not_sent(answer, broken):
    r = answer(broken)
    assert r.status_code == 500 and r.json()["error"] == "InternalError"

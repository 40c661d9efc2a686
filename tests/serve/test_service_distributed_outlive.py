"""The distributed backend's work that outlives its request's 504 keeps its place in the admission count
(issue 24 item 11): proven with a ``distributed.Event`` gate the request's graph waits on, not a time."""
from __future__ import annotations

import time

import dask
import httpx
import pytest

import stockdag.run.distributed as run_distributed
from stockdag.serve import ServerThread, create_app

SMALL = {"stockdag.models.window": 120, "stockdag.models.error_days": 10, "stockdag.data.min_history": 150,
         "stockdag.data.history_days": 200, "stockdag.data.news_days": 320}
GATE = "stockdag-test-outlive-gate"

pytestmark = pytest.mark.slow


def _wait_until(predicate, what: str, limit: float = 120.0):
    # waits for an event (not a time band): fails only if it never happens
    end = time.monotonic() + limit
    while not predicate():
        assert time.monotonic() < end, f"never happened: {what}"
        time.sleep(0.05)


def test_work_past_its_504_counts_until_it_ends(monkeypatch):
    real = run_distributed.build_graph

    def gated_graph(request, granularity):
        def after_the_gate(prediction):  # local, so cloudpickle ships it by value to the workers
            from distributed import Event

            assert Event("stockdag-test-outlive-gate").wait(120), "the test never opened the gate"
            return prediction

        return dask.delayed(after_the_gate, pure=False)(real(request, granularity))

    monkeypatch.setattr(run_distributed, "build_graph", gated_graph)
    with dask.config.set({**SMALL, "stockdag.pipeline.granularity": "stage"}):
        app = create_app("distributed", workers=1, max_in_flight=1, deadline=0.5, retry_after=1)
    with ServerThread(app) as server:
        first = httpx.get(f"{server.url}/predict/AAPL", params={"as_of": "2012-06-01"}, timeout=120)
        # the gate is shut: the request cannot have finished, so its answer is the deadline's
        assert first.status_code == 504, first.text
        assert httpx.get(f"{server.url}/health").json()["in_flight"] == 1  # its work still counts
        refused = httpx.get(f"{server.url}/predict/IBM", params={"as_of": "2012-06-01"}, timeout=120)
        assert refused.status_code == 503 and refused.json()["error"] == "Overloaded"
        from distributed import Client, Event

        with Client(app.state.backend.cluster.scheduler_address, timeout=60) as client:
            Event(GATE, client=client).set()
            _wait_until(lambda: httpx.get(f"{server.url}/health").json()["in_flight"] == 0, "the outliving work ended")
            assert not app.state.backend.executor._outliving  # its future was let go once done
    assert app.state.admission.admitted == 1 and app.state.admission.released == 1

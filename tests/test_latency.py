"""The emulated fetch latency of the offline sources (a remote data API stand-in)."""
import dask
import pytest

import stockdag
from stockdag.pipeline import emulated_delay
from stockdag.pipeline.request import Latency


def test_no_latency_by_default():
    assert emulated_delay(Latency(), "k") == 0.0


@pytest.mark.parametrize("lat, lo, hi", [
    (Latency("constant", 0.01), 0.01, 0.01),
    (Latency("uniform", 0.02, 0.01), 0.01, 0.03),
])
def test_draws_stay_in_their_distribution(lat, lo, hi):
    for _ in range(5):
        assert lo <= emulated_delay(lat, "k") <= hi


def test_lognormal_draws_are_positive():
    assert all(emulated_delay(Latency("lognormal", 0.002, 0.5), "k") > 0 for _ in range(5))


def test_latency_is_paid_on_a_miss_only(small, monkeypatch):
    import stockdag.pipeline.stages as pipeline

    slept = []
    monkeypatch.setattr(pipeline.time, "sleep", slept.append)  # record the emulated delays instead of waiting
    with dask.config.set({"stockdag.data.latency": {"distribution": "constant", "mean": 0.05, "spread": 0.0, "seed": 0}}):
        miss = stockdag.predict("AAPL", "2012-06-01").to_dict()
        assert slept == [0.05, 0.05]  # prices and news, each fetched from the source once
        hit = stockdag.predict("AAPL", "2012-06-01").to_dict()
    assert miss["cache"] == {"prices": "miss", "news": "miss"}
    assert hit["cache"] == {"prices": "hit", "news": "hit"}
    assert slept == [0.05, 0.05]  # a cache hit pays no fetch latency


def test_same_seed_request_and_stage_draw_the_same_delay(monkeypatch):
    import stockdag.pipeline.stages as pipeline

    monkeypatch.setattr(pipeline.time, "sleep", lambda s: None)  # the draw is the point, not the wait
    lat = Latency("lognormal", 0.05, 0.5, seed=7)
    first = [emulated_delay(lat, k) for k in ("prices|AAPL|2012-06-01", "news|AAPL|2012-06-01")]
    again = [emulated_delay(lat, k) for k in ("prices|AAPL|2012-06-01", "news|AAPL|2012-06-01")]
    assert first == again  # no clock in the seed: a rerun pays the same delays
    assert first[0] != first[1]  # the stage (and request) are in the seed
    assert emulated_delay(Latency("lognormal", 0.05, 0.5, seed=8), "prices|AAPL|2012-06-01") != first[0]

"""The emulated fetch latency of the offline sources (a remote data API stand-in)."""
import dask
import pytest

import stockdag
from stockdag.pipeline import emulated_delay
from stockdag.pipeline.request import Latency


def test_no_latency_by_default():
    assert emulated_delay(Latency(), "k") == 0.0


@pytest.fixture
def no_sleep(monkeypatch):
    """Record the emulated delays instead of sleeping them."""
    import stockdag.pipeline.stages as stages

    slept = []
    monkeypatch.setattr(stages.time, "sleep", slept.append)
    return slept


# a draw is seeded by (seed, key): five keys (five requests' fetches) are five draws; one key five times is one
KEYS = [f"prices|bundled|AAPL|2012-06-0{i}|200" for i in range(1, 6)]


@pytest.mark.parametrize("lat, lo, hi, distinct", [
    (Latency("constant", 0.01), 0.01, 0.01, 1),
    (Latency("uniform", 0.02, 0.01), 0.01, 0.03, 5),
])
def test_draws_stay_in_their_distribution(no_sleep, lat, lo, hi, distinct):
    draws = [emulated_delay(lat, k) for k in KEYS]
    assert all(lo <= d <= hi for d in draws) and len(set(draws)) == distinct, draws
    assert no_sleep == draws  # each draw is what the stage sleeps


def test_lognormal_draws_are_positive(no_sleep):
    draws = [emulated_delay(Latency("lognormal", 0.002, 0.5), k) for k in KEYS]
    assert all(d > 0 for d in draws) and len(set(draws)) == 5, draws


def test_a_draw_is_repeatable_per_seed_and_key(no_sleep):
    # a rerun pays the same delays (so runs compare); another seed draws others
    lat = Latency("uniform", 0.02, 0.01, seed=0)
    assert [emulated_delay(lat, k) for k in KEYS] == [emulated_delay(lat, k) for k in KEYS]
    assert [emulated_delay(lat, k) for k in KEYS] != [emulated_delay(Latency("uniform", 0.02, 0.01, seed=1), k) for k in KEYS]


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

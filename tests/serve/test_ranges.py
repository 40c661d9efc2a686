"""Each symbol's valid as-of range (``/symbols``): the pure rule, and its edges against the real pipeline."""
from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from stockdag import config
from stockdag.domain.data.prices import BundledPrices
from stockdag.errors import InsufficientHistory
from stockdag.pipeline import run_stages
from stockdag.pipeline.request import parse_request
from stockdag.run.ranges import first_valid, symbol_ranges

DAYS = [dt.date(2020, 1, 1) + dt.timedelta(days=i) for i in range(10)]


@pytest.mark.parametrize("min_history, enough_from, not_before, expected", [
    (1, 0, None, 0),
    (3, 0, None, 2),            # min_history rows up to the date
    (3, 6, None, 6),            # feature rows decide
    (3, 0, DAYS[7], 7),         # a pretrained store's train_end decides
    (11, 0, None, None),        # fewer rows than min_history: no date
    (1, 10, None, None),        # features never enough
])
def test_first_valid(min_history, enough_from, not_before, expected):
    asked = []

    def enough(i):
        asked.append(i)
        return i >= enough_from

    assert first_valid(DAYS, min_history, enough, not_before) == expected
    assert len(asked) <= 5  # bisected, not scanned


def _previous_trading_day(symbol: str, day: str) -> str:
    dates = BundledPrices().history(symbol, None, 0)["close"].index
    i = list(pd.DatetimeIndex(dates).date).index(dt.date.fromisoformat(day))
    return pd.DatetimeIndex(dates)[i - 1].date().isoformat()


@pytest.mark.parametrize("symbol", ["AAPL", "FB"])
def test_the_first_date_of_the_range_is_answered_and_the_day_before_is_a_422(small, symbol):
    source = BundledPrices()
    ranges = symbol_ranges(source, [symbol], config.snapshot())
    first, last = ranges[symbol]["first"], ranges[symbol]["last"]
    assert last == "2013-03-01"
    assert run_stages(parse_request(symbol, first)).value.as_of.isoformat() == first
    with pytest.raises(InsufficientHistory):
        run_stages(parse_request(symbol, _previous_trading_day(symbol, first)))


def test_fb_has_no_range_with_the_default_history():
    # 196 trading days of bundled FB prices against min_history 300: no date can be answered
    assert symbol_ranges(BundledPrices(), ["FB", "IBM"], config.snapshot())["FB"] is None


def test_pretrained_range_starts_after_the_training_window(small, tmp_path):
    import dask

    from stockdag.lab.train import train

    store = train(["AAPL"], "2011-06-30", str(tmp_path / "models"), window=120)
    with dask.config.set({"stockdag.profile": "pretrained", "stockdag.models.store": store}):
        ranges = symbol_ranges(BundledPrices(), ["AAPL", "IBM"], config.snapshot())
        first = ranges["AAPL"]["first"]
        assert ranges["IBM"] is None  # no stored models for IBM
        assert first > "2011-06-30"
        assert run_stages(parse_request("AAPL", first)).value.as_of.isoformat() == first
        with pytest.raises(InsufficientHistory):
            run_stages(parse_request("AAPL", _previous_trading_day("AAPL", first)))


def test_a_pretrained_server_without_models_says_how_to_fix_it(small, tmp_path):
    # the range check answers before any work is submitted, with the error the stages would raise
    import dask
    import httpx

    from stockdag.serve import ServerThread, create_app

    with dask.config.set({"stockdag.profile": "pretrained", "stockdag.models.store": str(tmp_path / "none")}):
        app = create_app("centralized")
        with ServerThread(app) as server:
            r = httpx.get(f"{server.url}/predict/AAPL", params={"as_of": "2012-06-01"}, timeout=60)
            fb = httpx.get(f"{server.url}/predict/FB", timeout=60)
    assert r.status_code == 503 and r.json()["error"] == "ModelStoreError" and "stockdag train" in r.json()["detail"]
    assert fb.status_code == 503


def test_a_pretrained_server_with_a_market_step_spec_answers_end_to_end(small, tmp_path):
    # ranges read the default meta.json, not the spec's meta@market.json: every symbol was unanswerable
    import os

    import dask
    import httpx

    from stockdag.lab.train import train
    from stockdag.pipeline.spec import load_pipeline
    from stockdag.serve import ServerThread, create_app

    deep = load_pipeline(os.path.join(os.path.dirname(__file__), "..", "..", "experiments", "pipelines", "deep.yaml"))
    assert "market" in deep.steps
    store = train(["AAPL"], "2011-06-30", str(tmp_path / "models"), window=120, pipeline=deep)
    with dask.config.set({"stockdag.profile": "pretrained", "stockdag.models.store": store,
                          "stockdag.pipeline.spec": deep.to_dict()}):
        app = create_app("centralized")
    with ServerThread(app) as server:
        ranges = httpx.get(f"{server.url}/symbols", timeout=60).json()["as_of"]
        assert ranges["AAPL"] is not None and ranges["AAPL"]["first"] > "2011-06-30", ranges["AAPL"]
        r = httpx.get(f"{server.url}/predict/AAPL", params={"as_of": "2012-06-01"}, timeout=120)
    assert r.status_code == 200, r.text
    assert r.json()["profile"] == "pretrained" and r.json()["pipeline"] == "deep"

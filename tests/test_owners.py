"""Issue 15: each fact has one owner, and every other place derives it from the owner.

Each test reads a fact from its owner and checks that a user of it (the CLI's
choices, the server's backends, the sweep's validation, ...) holds exactly that.
"""
from __future__ import annotations

import argparse

import pytest

from stockdag.cli import build_parser


def _choices(argv_prefix: list[str], option: str):
    """The choices argparse allows for ``option`` of the (sub)command ``argv_prefix``."""
    parser = build_parser()
    for name in argv_prefix:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    action = next(a for a in parser._actions if option in a.option_strings)
    return action.choices


# ---------------------------------------------------------------- serving modes
def test_serving_modes_have_one_owner():
    from stockdag.lab.experiments import sweep
    from stockdag.pipeline import modes
    from stockdag.serve.backends import BACKENDS

    assert tuple(BACKENDS) == modes.SERVING_MODES
    assert tuple(_choices(["serve"], "--mode")) == modes.SERVING_MODES
    assert tuple(_choices(["predict"], "--mode")) == modes.PREDICT_MODES
    assert sweep.MODES is modes.SERVING_MODES


def test_an_unknown_mode_names_the_owner_s_modes():
    import stockdag
    from stockdag.errors import InvalidRequest
    from stockdag.pipeline.modes import PREDICT_MODES, SERVING_MODES
    from stockdag.serve import create_app

    with pytest.raises(InvalidRequest, match=f"choose one of: {', '.join(PREDICT_MODES)}$"):
        stockdag.predict("AAPL", "2012-06-01", mode="replicated")
    with pytest.raises(InvalidRequest, match=f"choose one of: {', '.join(SERVING_MODES)}$"):
        create_app("nope")


# ---------------------------------------------------------------- placement strategies
def test_the_cli_strategy_choices_come_from_the_registry():
    from stockdag.cli.options import strategies, strategy
    from stockdag.placement import STRATEGIES

    assert strategies("all") == tuple(STRATEGIES)
    assert [strategy(name) for name in STRATEGIES] == list(STRATEGIES)
    with pytest.raises(argparse.ArgumentTypeError, match=f"choose one of: {', '.join(STRATEGIES)}$"):
        strategy("hfet")


def test_a_cluster_spec_and_a_sweep_check_strategies_with_the_registry():
    from stockdag.deploy.spec import SpecError, parse_spec
    from stockdag.lab.experiments import SweepParams
    from stockdag.placement import STRATEGIES

    names = ", ".join(STRATEGIES)
    group = {"name": "g", "count": 1, "threads": 1, "memory_limit": "1GiB"}
    with pytest.raises(SpecError, match=f"choose one of: {names}$"):
        parse_spec({"kind": "local", "worker_groups": [group], "strategy": "hfet"})
    with pytest.raises(ValueError, match=f"choose one of: {names}$"):
        SweepParams(strategy=["hfet"], run_id="t")


# ---------------------------------------------------------------- symbols
def _write_prices(folder, symbol, start, days):
    import numpy as np
    import pandas as pd

    dates = pd.bdate_range(start, periods=days)
    close = 100 + np.arange(days, dtype=float)
    pd.DataFrame({"date": dates, "open": close, "high": close, "low": close, "close": close,
                  "volume": 1000.0}).to_csv(folder / f"{symbol}.csv", index=False)


def test_default_symbols_are_the_source_s_own_with_enough_history(tmp_path):
    from stockdag.domain.data.symbols import symbols_with_history

    _write_prices(tmp_path, "OLD", "2008-01-01", 800)
    _write_prices(tmp_path, "NEW", "2010-06-01", 100)
    assert symbols_with_history("2010-12-31", 250, "csv", str(tmp_path)) == ["OLD"]
    assert symbols_with_history("2010-12-31", 50, "csv", str(tmp_path)) == ["NEW", "OLD"]


def test_the_bundled_defaults_are_unchanged():
    """train's and evaluate's defaults were a typed list; derived from the bundled source they are the same."""
    import datetime as dt

    from stockdag.domain.data.symbols import symbols_with_history

    assert symbols_with_history(dt.date(2010, 12, 31), 250, "bundled") == ["AAPL", "GOOG", "IBM", "MSFT"]
    assert symbols_with_history(dt.date(2010, 12, 31), 500, "bundled") == ["AAPL", "GOOG", "IBM", "MSFT"]


def test_a_source_that_cannot_list_symbols_asks_for_them(tmp_path):
    from stockdag.domain.data.symbols import symbols_with_history
    from stockdag.errors import InvalidRequest

    with pytest.raises(InvalidRequest, match="the csv source cannot list its symbols: name them"):
        symbols_with_history("2010-12-31", 250, "csv", str(tmp_path))
    _write_prices(tmp_path, "NEW", "2010-06-01", 100)
    with pytest.raises(InvalidRequest, match="no symbol of the csv source has 250 days"):
        symbols_with_history("2010-12-31", 250, "csv", str(tmp_path))


def test_train_and_evaluate_have_no_typed_symbol_default():
    assert _default(["train"], "--symbols") is None
    assert _default(["evaluate"], "--symbols") is None


def _default(argv_prefix, option):
    parser = build_parser()
    for name in argv_prefix:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    return next(a for a in parser._actions if option in a.option_strings).default


def test_no_symbol_list_is_typed_in_the_package():
    """The bundled tickers appear in the package only as the data they are (and in docstrings), never as a typed list."""
    import pathlib
    import re

    import stockdag

    typed = re.compile(r"""["']AAPL["']\s*,\s*["'](GOOG|IBM|MSFT)["']""")
    hits = [str(p) for p in pathlib.Path(stockdag.__file__).parent.rglob("*.py") if typed.search(p.read_text())]
    assert hits == []


# ---------------------------------------------------------------- bench vocabulary
def test_bench_vocabulary_has_one_owner():
    import stockdag.lab.bench as bench
    from stockdag.lab.bench import loadgen, mix, vocabulary

    assert (bench.ARRIVALS, bench.MIXES, bench.LOOPS) == (vocabulary.ARRIVALS, vocabulary.MIXES, vocabulary.LOOPS)
    assert loadgen.ARRIVALS is vocabulary.ARRIVALS and mix.DISTRIBUTIONS is vocabulary.MIXES
    assert tuple(_choices(["bench"], "--arrivals")) == vocabulary.ARRIVALS
    assert tuple(_choices(["bench"], "--mix")) == vocabulary.MIXES
    for arrivals in vocabulary.ARRIVALS:
        assert bench.BenchConfig("http://127.0.0.1:1", rate=1, arrivals=arrivals).loop in vocabulary.LOOPS
    assert bench.BenchConfig("http://127.0.0.1:1", users=1).loop in vocabulary.LOOPS


def test_the_vocabulary_is_read_without_loading_the_load_generator():
    """The CLI builds its parser from the vocabulary: importing it must not import aiohttp, pandas and the rest."""
    import subprocess
    import sys

    code = ("import sys; import stockdag.lab.bench as b; b.ARRIVALS; "
            "assert 'stockdag.lab.bench.loadgen' not in sys.modules, 'loadgen imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------- machine facts
def test_the_demo_records_the_machine_facts_of_the_one_collector():
    from stockdag.lab.demo import machine_facts
    from stockdag.lab.experiments import facts

    demo = machine_facts()
    assert set(facts.machine(measure_capacity=False)) <= set(demo)
    assert demo["memory_gib"] > 0 and "memory_gb" not in demo


def test_no_second_key_for_memory_in_the_package():
    import pathlib

    import stockdag

    hits = [str(p) for p in pathlib.Path(stockdag.__file__).parent.rglob("*.py") if "memory_gb'" in p.read_text()
            or 'memory_gb"' in p.read_text()]
    assert hits == []


# ---------------------------------------------------------------- cache backends: one {name: class} map
def test_a_cache_backend_is_one_class_in_the_map(monkeypatch):
    from stockdag.domain.data import cache

    class Counting(cache.LRUCache):
        name = "counting"
        options = ("size", "url")

        def __init__(self, size: int, url: str):
            super().__init__(size)
            self.url = url

    monkeypatch.setitem(cache.BACKENDS, Counting.name, Counting)
    made = cache.get_cache("counting", size=3, url="x://y")
    assert type(made) is Counting and made is cache.get_cache("counting", size=3, url="x://y")
    assert made is not cache.get_cache("counting", size=3, url="x://z")  # a setting it names is part of its identity
    assert cache.get_cache("lru", size=3, url="x://y") is cache.get_cache("lru", size=3, url="x://z")  # one it does not, is not

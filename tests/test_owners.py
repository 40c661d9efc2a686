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
    from stockdag import modes
    from stockdag.experiments import sweep
    from stockdag.serve.backends import BACKENDS

    assert tuple(BACKENDS) == modes.SERVING_MODES
    assert tuple(_choices(["serve"], "--mode")) == modes.SERVING_MODES
    assert tuple(_choices(["predict"], "--mode")) == modes.PREDICT_MODES
    assert sweep.MODES is modes.SERVING_MODES


def test_an_unknown_mode_names_the_owner_s_modes():
    import stockdag
    from stockdag.errors import InvalidRequest
    from stockdag.modes import PREDICT_MODES, SERVING_MODES
    from stockdag.serve import create_app

    with pytest.raises(InvalidRequest, match=f"choose one of: {', '.join(PREDICT_MODES)}$"):
        stockdag.predict("AAPL", "2012-06-01", mode="replicated")
    with pytest.raises(InvalidRequest, match=f"choose one of: {', '.join(SERVING_MODES)}$"):
        create_app("nope")


# ---------------------------------------------------------------- placement strategies
def test_the_cli_strategy_choices_come_from_the_registry():
    from stockdag.cli_options import strategies, strategy
    from stockdag.placement import STRATEGIES

    assert strategies("all") == tuple(STRATEGIES)
    assert [strategy(name) for name in STRATEGIES] == list(STRATEGIES)
    with pytest.raises(argparse.ArgumentTypeError, match=f"choose one of: {', '.join(STRATEGIES)}$"):
        strategy("hfet")


def test_a_cluster_spec_and_a_sweep_check_strategies_with_the_registry():
    from stockdag.deploy.spec import SpecError, parse_spec
    from stockdag.experiments import SweepParams
    from stockdag.placement import STRATEGIES

    names = ", ".join(STRATEGIES)
    group = {"name": "g", "count": 1, "threads": 1, "memory_limit": "1GiB"}
    with pytest.raises(SpecError, match=f"choose one of: {names}$"):
        parse_spec({"kind": "local", "worker_groups": [group], "strategy": "hfet"})
    with pytest.raises(ValueError, match=f"choose one of: {names}$"):
        SweepParams(strategy=["hfet"], run_id="t")

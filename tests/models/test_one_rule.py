"""Issue 15: train and evaluate use the pipeline's own rule and front end, not copies of them."""
from __future__ import annotations

import ast
import datetime as dt
import pathlib
import sys

import pytest

import stockdag
import stockdag.lab.evaluate
import stockdag.pipeline.stages
from stockdag.lab.evaluate import walk_forward
from stockdag.lab.train import train

SHORT = dict(window=120, step=20, models=("ridge", "knn"))


def test_evaluate_selects_with_c12_s_rule(monkeypatch):
    c12 = sys.modules["stockdag.domain.models.select"]
    assert stockdag.lab.evaluate.winner_index is c12.winner_index
    # change the rule: the last model always wins; the walk-forward selector must follow
    monkeypatch.setattr(stockdag.lab.evaluate, "winner_index", lambda errors: len(errors) - 1)
    daily = walk_forward("IBM", dt.date(2012, 1, 3), dt.date(2012, 2, 28), **SHORT)
    assert set(daily["selector_model"]) == {"knn"}
    assert (daily["selector"] == daily["knn"]).all()


def test_c12_rule_picks_the_lowest_error_and_the_earliest_on_ties():
    from stockdag.domain.models import winner_index

    assert winner_index([0.3, 0.1, 0.1]) == 1
    assert winner_index([float("inf")] * 3) == 0
    with pytest.raises(ValueError):
        winner_index([])


@pytest.fixture
def counted_front_end(monkeypatch):
    """Count the calls of the front end's stage functions (C2, C5, C3, C4)."""
    calls = {}
    for name in ("fetch_prices_stage", "fetch_news_stage", "make_features_stage", "score_sentiment_stage"):
        original = getattr(stockdag.pipeline.stages, name)

        def counted(*args, _original=original, _name=name, **kwargs):
            calls[_name] = calls.get(_name, 0) + 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(stockdag.pipeline.stages, name, counted)
    return calls


def test_evaluate_builds_its_rows_with_the_stage_functions(counted_front_end):
    walk_forward("IBM", dt.date(2012, 1, 3), dt.date(2012, 1, 31), **SHORT)
    assert counted_front_end == dict.fromkeys(counted_front_end, 1) and len(counted_front_end) == 4


def test_train_builds_its_rows_with_the_stage_functions(counted_front_end, tmp_path):
    train(["IBM", "MSFT"], "2011-06-30", str(tmp_path), window=120, pipeline={"name": "one", "models": ["ridge"]})
    assert counted_front_end == dict.fromkeys(counted_front_end, 2) and len(counted_front_end) == 4


def test_no_private_model_function_is_imported_across_modules():
    """_fit and _predict were imported by evaluate.py and models/train.py; the public fit_model/predict_model replace them."""
    root = pathlib.Path(stockdag.__file__).parent
    hits = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[-1] in ("compete", "select", "registry", "store"):
                hits += [f"{path.relative_to(root)}: {a.name}" for a in node.names if a.name.startswith("_")]
    assert hits == []

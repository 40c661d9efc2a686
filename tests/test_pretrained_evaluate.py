import dask
import numpy as np
import pytest

import stockdag
from stockdag.errors import InsufficientHistory, ModelStoreError
from stockdag.evaluate import evaluate
from stockdag.models.train import train
from stockdag.pipeline_spec import DEFAULT


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    train(["AAPL"], "2011-06-30", str(folder), window=120)
    return str(folder)


def test_pretrained_profile_uses_the_store(small, store):
    with dask.config.set({"stockdag.models.store": store}):
        d = stockdag.predict("AAPL", "2012-01-03", profile="pretrained").to_dict()
    assert d["profile"] == "pretrained" and len(d["candidates"]) == len(DEFAULT.models)
    assert all(np.isfinite(c["prediction"]) for c in d["candidates"])


def test_pretrained_refuses_to_score_on_its_training_days(small, store):
    with dask.config.set({"stockdag.models.store": store}), pytest.raises(InsufficientHistory, match="fitted on data up to 2011-06-30"):
        stockdag.predict("AAPL", "2011-07-05", profile="pretrained")


def test_missing_store_says_how_to_fix_it(small, tmp_path):
    with dask.config.set({"stockdag.models.store": str(tmp_path)}), pytest.raises(ModelStoreError, match="stockdag train"):
        stockdag.predict("MSFT", "2012-01-03", profile="pretrained")


def test_walk_forward_evaluation_reports_models_selector_and_naive():
    ev = evaluate(["IBM"], "2012-01-01", "2012-03-31", window=120, step=20, models=("ridge", "knn"))
    table = ev.table
    assert list(table.index[:3]) == ["ridge", "knn", "selector"]
    assert table.index[-1].startswith("naive")
    assert ((table["direction_accuracy"] >= 0) & (table["direction_accuracy"] <= 1)).all()
    assert (table["mae"] > 0).all() and (table["days"] == len(ev.daily)).all()
    assert ev.daily.index.min().date().isoformat() >= "2012-01-01"
    # the selector only ever repeats what one of the models predicted that day
    assert ((ev.daily["selector"] == ev.daily["ridge"]) | (ev.daily["selector"] == ev.daily["knn"])).all()

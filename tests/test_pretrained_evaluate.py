import dask
import numpy as np
import pytest

import stockdag
from stockdag.errors import InsufficientHistory, ModelStoreError
from stockdag.lab.evaluate import evaluate
from stockdag.lab.train import train
from stockdag.pipeline.spec import DEFAULT


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


def test_symbols_names_the_pretrained_range_and_its_first_day_predicts(small, store, capsys):
    """Issue 24 item 29: `stockdag symbols` had no --profile, so the pretrained as-of range could not be looked up."""
    import datetime as dt
    import re

    from stockdag.cli import main

    with dask.config.set({"stockdag.models.store": store}):
        assert main(["symbols", "--profile", "pretrained"]) == 0
        aapl = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("AAPL"))
        first = re.search(r"pretrained as-of (\S+) ", aapl).group(1)
        assert dt.date.fromisoformat(first) > dt.date(2011, 6, 30)  # after the models' training end
        assert main(["predict", "AAPL", "--as-of", first, "--profile", "pretrained"]) == 0
        capsys.readouterr()
        before = (dt.date.fromisoformat(first) - dt.timedelta(days=1)).isoformat()
        assert main(["predict", "AAPL", "--as-of", before, "--profile", "pretrained"]) == 2
        assert "stockdag symbols --profile pretrained" in capsys.readouterr().err  # the refusal says where the first date is


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


DEEP = __import__("os").path.join(__import__("os").path.dirname(__file__), "..", "experiments", "pipelines", "deep.yaml")


def test_evaluate_deep_scores_winner_takes_all_ensemble_naive_and_interval_coverage():
    from stockdag.domain.models.combine import conformal_halfwidth, ensemble_weights
    from stockdag.lab.evaluate import coverage
    from stockdag.pipeline.spec import load_pipeline

    spec = load_pipeline(DEEP)
    ev = evaluate(["IBM"], "2012-01-01", "2012-04-30", window=120, step=20, error_days=10, pipeline=spec)
    rows = set(ev.table.index)
    assert {"selector", "ensemble", *spec.models} <= rows and any(r.startswith("naive") for r in rows)
    d = ev.daily
    # day 15: the ensemble and the interval use only the errors of days 5..14 (walk-forward, no look-ahead)
    t = 15
    err = (d[list(spec.models)].sub(d["actual"], axis=0)).abs().to_numpy()
    w = ensemble_weights(err[t - 10:t].mean(axis=0))
    assert d["ensemble"].iloc[t] == pytest.approx(float(w @ d[list(spec.models)].iloc[t].to_numpy()))
    chosen = list(spec.models).index(d["selector_model"].iloc[t])
    assert d["interval_halfwidth"].iloc[t] == pytest.approx(conformal_halfwidth(err[t - 10:t, chosen], spec.interval_level))
    cov = ev.coverage
    inside = (d["actual"] - d["selector"]).abs() <= d["interval_halfwidth"]
    finite = np.isfinite(d["interval_halfwidth"])
    assert cov == coverage(d, 0.9) and cov["level"] == 0.9 and cov["days"] == finite.sum() > 50
    assert cov["coverage"] == pytest.approx(inside[finite].mean())


def test_cli_evaluate_deep_prints_accuracy_of_each_rule_and_the_coverage(capsys):
    import json

    from stockdag.cli import main

    assert main(["evaluate", "--pipeline", DEEP, "--symbols", "IBM", "--start", "2012-03-01", "--end", "2012-04-30",
                 "--window", "120", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    models = {r["model"] for r in out["metrics"]}
    assert {"selector", "ensemble"} <= models and any(m.startswith("naive") for m in models)
    assert out["interval"]["level"] == 0.9 and 0 <= out["interval"]["coverage"] <= 1


def test_cli_evaluate_too_early_a_start_is_one_line_and_exit_code_2(capsys):
    # IBM's bundled prices start in 2000: a first fit before 2000-06-01 has 43 usable rows (it printed a traceback)
    from stockdag.cli import main

    assert main(["evaluate", "--symbols", "IBM", "--start", "2000-06-01", "--end", "2001-06-30", "--json"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("stockdag: error: IBM:") and "or later" in err[0], err

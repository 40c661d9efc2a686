"""Pipeline specs: validation by name, the shipped specs, and the spec travelling with each request."""
import json
import os
import pickle

import pytest

from stockdag.cli import main
from stockdag.domain.models import MODELS, REGISTRY, fit_predict
from stockdag.pipeline import stage_table
from stockdag.pipeline.request import parse_request
from stockdag.pipeline.spec import DEFAULT, STEPS, PipelineSpecError, load_pipeline
from stockdag.run import CentralizedExecutor

ROOT = os.path.join(os.path.dirname(__file__), "..")
PIPELINES = os.path.join(ROOT, "experiments", "pipelines")


def spec_path(name):
    return os.path.join(PIPELINES, f"{name}.yaml")


def test_default_yaml_is_the_default_spec_and_the_other_shipped_specs_validate():
    assert load_pipeline(spec_path("default")) == DEFAULT == load_pipeline(None)
    assert DEFAULT.models == tuple(m.name for m in MODELS)
    wide = load_pipeline(spec_path("wide"))
    assert len(wide.models) >= 10 and not wide.steps
    assert load_pipeline(spec_path("deep")).steps == tuple(STEPS)


@pytest.mark.parametrize("text, named", [
    ("models: [ridge, xgboost]", "unknown model 'xgboost'"),
    ("model: [ridge]", "unknown key 'model'"),
    ("steps: [market, hedging]", "unknown step 'hedging'"),
    ("models: [ridge, ridge]", "model 'ridge' is listed twice"),
    ("models: []", "non-empty list"),
    ("interval_level: 1.5", "interval_level"),
    ("- just a list", "expected a mapping"),
    ("models: [ridge", "unreadable"),
])
def test_a_bad_spec_is_one_line_naming_what_is_wrong(tmp_path, text, named):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(PipelineSpecError, match=named) as info:
        load_pipeline(str(path))
    assert "\n" not in info.value.message and str(path) in info.value.message


@pytest.mark.parametrize("command", [["predict", "AAPL"], ["demo"], ["serve"], ["train"], ["evaluate"]])
def test_cli_unknown_model_exits_2_with_one_line(tmp_path, capsys, command):
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\nmodels: [ridge, xgboost]\n")
    assert main([*command, "--pipeline", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown model 'xgboost'" in err and "Traceback" not in err


def test_each_model_keeps_its_stage_id_in_every_spec():
    ids = {m.name: m.id for m in REGISTRY}
    for name in ("default", "wide", "deep"):
        table = stage_table(load_pipeline(spec_path(name)))
        for s in table:
            if s.name in ids:
                assert s.id == ids[s.name]
        assert len({s.id for s in table}) == len(table)


def test_default_yaml_predicts_exactly_what_the_five_models_predict(small):
    from stockdag.domain.data.news import get_news_source
    from stockdag.domain.data.prices import get_price_source
    from stockdag.domain.features import make_features
    from stockdag.domain.sentiment import score_sentiment

    req = parse_request("AAPL", "2012-06-01", pipeline=spec_path("default"))
    result = CentralizedExecutor().run(req)
    plain = CentralizedExecutor().run(parse_request("AAPL", "2012-06-01")).prediction
    assert (result.prediction.candidates, result.prediction.winner, result.prediction.next_close) == (
        plain.candidates, plain.winner, plain.next_close)
    # the same candidates computed without the stage table, model by model
    prices = get_price_source("bundled").fetch("AAPL", req.as_of, req.history_days, req.min_history)
    news = get_news_source("bundled").fetch("AAPL", req.as_of, req.news_days)
    features, sentiment = make_features(prices), score_sentiment(news)
    direct = tuple(fit_predict(m.name, features, sentiment, req.window, req.error_days) for m in MODELS)
    assert result.prediction.candidates == direct
    assert sorted(t.id for t in result.trace) == sorted(s.id for s in stage_table(DEFAULT))


@pytest.mark.parametrize("name, granularity", [("wide", "stage"), ("deep", "branch")])
def test_the_spec_travels_in_the_request_not_in_the_workers_configuration(small, client, name, granularity):
    """Workers have no stockdag.pipeline.spec of their own: the request carries the spec."""
    from stockdag.run import DistributedExecutor

    wide = load_pipeline(spec_path(name))
    req = parse_request("AAPL", "2012-06-01", pipeline=wide)
    assert pickle.loads(pickle.dumps(req)).pipeline == wide
    assert client.run(lambda: __import__("dask").config.get("stockdag.pipeline.spec")) == {
        w: None for w in client.scheduler_info()["workers"]}
    central = CentralizedExecutor().run(req)
    with DistributedExecutor(client=client, granularity=granularity) as ex:
        dist = ex.run(req)
    assert len(dist.prediction.candidates) == len(wide.models) >= (10 if name == "wide" else 5)
    assert dist.prediction.candidates == central.prediction.candidates
    assert (dist.prediction.ensemble, dist.prediction.interval) == (central.prediction.ensemble, central.prediction.interval)
    assert dist.prediction.next_return == central.prediction.next_return
    assert {t.id for t in dist.trace} == {s.id for s in stage_table(wide)}
    assert {t.worker for t in dist.trace} <= set(client.scheduler_info()["workers"])  # it ran on the workers


@pytest.mark.parametrize("name", ["wide", "deep"])
def test_train_and_pretrained_profile_work_for_any_spec(small, tmp_path, name):
    from stockdag.lab.train import train

    spec = load_pipeline(spec_path(name))
    store = train(["AAPL"], "2011-06-30", str(tmp_path), window=120, pipeline=spec)
    req = parse_request("AAPL", "2012-06-01", profile="pretrained", pipeline=spec)
    import dask

    with dask.config.set({"stockdag.models.store": store}):
        req = parse_request("AAPL", "2012-06-01", profile="pretrained", pipeline=spec)
        result = CentralizedExecutor().run(req)
    assert [c.model for c in result.prediction.candidates] == list(spec.models)
    assert all(c.train_rows == 0 for c in result.prediction.candidates)  # loaded, not refitted


def test_pretrained_models_of_another_feature_set_are_not_used(small, tmp_path):
    """Models trained without the market factors do not serve a spec with them (one clear error)."""
    import dask

    from stockdag.errors import ModelStoreError
    from stockdag.lab.train import train

    store = train(["AAPL"], "2011-06-30", str(tmp_path), window=120)
    with dask.config.set({"stockdag.models.store": store}):
        req = parse_request("AAPL", "2012-06-01", profile="pretrained", pipeline=spec_path("deep"))
        with pytest.raises(ModelStoreError, match="stockdag train"):
            CentralizedExecutor().run(req)


# ------------------------------------------------------------ item 2: the stage list comes from the spec
def _ids(name):
    return [s.id for s in stage_table(load_pipeline(spec_path(name)))]


@pytest.mark.parametrize("name", ["default", "wide", "deep"])
def test_tools_without_a_spec_recover_the_pipeline_from_traced_ids(name):
    from stockdag.pipeline import order_stage_ids, spec_for_ids

    spec = load_pipeline(spec_path(name))
    ids = _ids(name)
    def edges(table):
        return {(s.id, s.name, frozenset(s.inputs)) for s in table}  # models in registry order: same edges

    assert edges(stage_table(spec_for_ids(ids))) == edges(stage_table(spec))
    assert order_stage_ids(reversed(ids)) == [s.id for s in stage_table(spec_for_ids(ids))]


def test_critical_path_and_width_follow_the_pipeline_of_the_costs():
    from stockdag.lab.experiments.analysis import critical_path, parallel_width
    from stockdag.lab.overhead import critical_path as overhead_cp  # the overhead tool's import of the one owner

    wide, deep = _ids("wide"), _ids("deep")
    assert parallel_width(wide) == len(load_pipeline(spec_path("wide")).models)
    assert parallel_width() == len(DEFAULT.models)
    costs = {i: 1.0 for i in deep}
    costs["C13"] = 50.0  # the market branch dominates
    seconds, path = critical_path(costs)
    assert path[:3] == ["C1", "C13", "C14"] and path[-3:] == ["C12", "C15", "C16"]
    assert seconds == overhead_cp(costs).seconds == 50.0 + 6  # C1, C13, C14, a model, C12, C15, C16


def test_live_stage_means_list_the_extra_stages_in_table_order():
    from stockdag.lab.webapp.runs import LiveStats

    stats = LiveStats()
    stats._stage_n.update({i: 1 for i in reversed(_ids("deep"))})
    stats._stage_sum.update({i: 0.001 for i in _ids("deep")})
    assert stats.stage_means()["id"] == _ids("deep")


# ------------------------------------------------------------ the sweep: pipeline as a recorded dimension
def test_a_spec_is_found_by_name_in_experiments_pipelines():
    assert load_pipeline("wide") == load_pipeline(spec_path("wide"))
    assert len(load_pipeline("width/w20").models) == 20
    with pytest.raises(PipelineSpecError, match="'nosuch'.*no such file|nosuch: no such file"):
        load_pipeline("nosuch")


def test_sweep_runs_every_configuration_with_every_pipeline_and_rejects_a_bad_one(tmp_path):
    from stockdag.lab.experiments.sweep import SweepParams

    p = SweepParams(mode=["centralized", "distributed"], workers=[2], pipeline=["wide", "deep"], run_id="t")
    assert [(c.mode, c.pipeline) for c in p.configurations_list()] == [
        ("centralized", "wide"), ("distributed", "wide"), ("centralized", "deep"), ("distributed", "deep")]
    assert len({c.slug for c in p.configurations_list()}) == 4  # one results file each
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: [xgboost]")
    with pytest.raises(PipelineSpecError, match="unknown model 'xgboost'"):
        SweepParams(pipeline=[str(bad)], run_id="t")


def test_width_params_cover_the_widths_with_and_without_the_extra_steps():
    from stockdag.lab.experiments.sweep import SweepParams

    p = SweepParams.from_yaml(os.path.join(ROOT, "experiments", "params", "width.yaml"), run_id="t")
    specs = {c.pipeline: load_pipeline(c.pipeline) for c in p.configurations_list()}
    assert sorted({len(s.models) for s in specs.values()}) == [1, 2, 5, 10, 20]
    for width in (1, 2, 5, 10, 20):
        assert sorted(s.steps for s in specs.values() if len(s.models) == width) == [(), tuple(STEPS)]
    assert {c._label() for c in p.configurations_list()} == {"centralized", "replicated x2", "distributed w2 adaptive"}


def _trace(spec, seconds_per_model):
    t, out = 0.0, []
    for s in stage_table(spec):
        d = seconds_per_model if s.name in spec.models else 0.01
        out.append({"id": s.id, "stage": s.name, "worker": "w", "start": t, "end": t + d})
        t += d
    return json.dumps(out)


def test_width_table_compares_each_pipeline_with_its_own_centralized_run_and_limits(tmp_path):
    import pandas as pd

    from stockdag.lab.experiments.analysis import RunData, width_table
    from stockdag.lab.experiments.plots import width_speedup

    specs = {"width/w01": load_pipeline("width/w01"), "width/w05": load_pipeline("width/w05")}
    labels = {(m, p): f"{m} [{p.split('/')[-1]}]" for m in ("centralized", "distributed w2 dask") for p in specs}
    config = {"configurations": [{"label": lab, "pipeline": p} for (m, p), lab in labels.items()],
              "pipelines": {p: s.to_dict() for p, s in specs.items()}, "machine": {"cores": 2}}
    # centralized: 1 and 5 req/s-worth of work; distributed doubles throughput of w05 only
    tput = {("centralized", "width/w01"): 4.0, ("distributed w2 dask", "width/w01"): 4.0,
            ("centralized", "width/w05"): 1.0, ("distributed w2 dask", "width/w05"): 2.0}
    summary = pd.DataFrame([
        {"label": labels[k], "mode": k[0].split()[0], "workers": 1 if k[0] == "centralized" else 2,
         "strategy": None if k[0] == "centralized" else "dask", "loop": "closed", "load": load, "repeat": 0,
         "offered_rate": float("nan"), "throughput": v if load == 4 else v / 2, "p50_ms": 1000 / v,
         "p99_ms": 2000 / v, "max_ms": 2500 / v, "errors": 0}
        for k, v in tput.items() for load in (1.0, 4.0)])
    records = pd.DataFrame([{"label": labels[("centralized", p)], "load": 1.0, "status": 200,
                             "trace": _trace(s, 0.1)} for p, s in specs.items()])
    table = width_table(RunData(str(tmp_path), config, summary, records)).set_index("label")
    w5 = table.loc[labels[("distributed w2 dask", "width/w05")]]
    assert (w5["models"], w5["throughput_speedup"], w5["latency_speedup"]) == (5, 2.0, 2.0)
    assert table.loc[labels[("distributed w2 dask", "width/w01")], "throughput_speedup"] == 1.0
    # each pipeline's own critical-path bound: one model cannot run side by side with anything, five can
    assert w5["latency_speedup_bound"] > 3 > table.loc[labels[("centralized", "width/w01")], "latency_speedup_bound"]
    width_speedup(table.reset_index(), str(tmp_path / "width.png"))
    assert (tmp_path / "width.png").stat().st_size > 0


def test_a_spec_file_is_read_once_until_it_changes(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("models: [ridge]")
    assert load_pipeline(str(path)).models == ("ridge",)
    path.write_text("models: [knn]")
    os.utime(path, (1, 1))  # another modification time: read again
    assert load_pipeline(str(path)).models == ("knn",)

"""A configuration names how its server runs (issue 23 item 2): both kinds interleaved in one sweep, told apart."""
import dataclasses
import json
import os

import dask
import pytest

from stockdag.cli import main
from stockdag.errors import InvalidRequest
from stockdag.lab.experiments import SweepParams, build, run_sweep
from stockdag.lab.experiments.sweep import Configuration, check_resume

SMALL = {"stockdag.models.window": 120, "stockdag.models.error_days": 10, "stockdag.data.min_history": 150,
         "stockdag.data.history_days": 200, "stockdag.data.news_days": 320}
BOTH = [{"mode": "centralized", "server": "thread"}, {"mode": "centralized", "server": "process"}]


def _params(tmp_path, **kw):
    return SweepParams(**{"configurations": BOTH, "rates": None, "users": [1], "symbols": ["AAPL"], "out": str(tmp_path),
                          "run_id": "r", **kw})


def test_a_configuration_names_its_server_in_its_label(tmp_path):
    params = _params(tmp_path, configurations=[*BOTH, {"mode": "centralized"}])
    configs = params.configurations_list()
    assert [c.label for c in configs] == ["centralized [thread]", "centralized [process]", "centralized"]
    assert [c.served(params) for c in configs] == ["thread", "process", "process"]  # unnamed: the sweep's own
    assert [c.served(dataclasses.replace(params, server="thread")) for c in configs][2] == "thread"
    assert len({p.slug for p in params.points()}) == 3  # their points and server logs are filed apart


def test_an_unknown_server_is_refused_in_one_line(tmp_path, capsys):
    with pytest.raises(ValueError, match=r"^unknown server 'forked'; choose from process, thread$"):
        Configuration("centralized", server="forked")
    with pytest.raises(ValueError, match=r"^unknown server 'forked'; choose from process, thread$"):
        _params(tmp_path, configurations=[{"mode": "centralized", "server": "forked"}])  # before anything starts
    (tmp_path / "p.yaml").write_text("configurations: [{mode: centralized, server: forked}]\nusers: [1]\nsymbols: [AAPL]\n")
    assert main(["sweep", str(tmp_path / "p.yaml"), "--run-id", "r", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err == "stockdag: error: unknown server 'forked'; choose from process, thread\n"
    assert not (tmp_path / "out" / "r").exists()  # nothing was started or written


def test_a_run_is_not_resumed_with_a_configuration_served_another_way(tmp_path):
    params = _params(tmp_path)
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"params": json.loads(json.dumps(dataclasses.asdict(params), default=str))}))
    check_resume(str(cfg), params)
    other = _params(tmp_path, configurations=[BOTH[0], {"mode": "centralized", "server": "thread"}])
    with pytest.raises(InvalidRequest, match=r"was started with other parameters \(configurations;"):
        check_resume(str(cfg), other)


@pytest.mark.slow
def test_one_sweep_serves_each_configuration_the_way_it_names(tmp_path):
    """From the record: the thread configuration's points were served by this process, the process one's by another."""
    params = _params(tmp_path, users=[1], duration=1.0, warmup=0.3, min_requests=3, timeout=30)
    with dask.config.set(SMALL):
        folder = run_sweep(params, progress=False)
    cfg = json.load(open(os.path.join(folder, "config.json")))
    assert [(c["label"], c["server"]) for c in cfg["configurations"]] == [("centralized [thread]", "thread"),
                                                                          ("centralized [process]", "process")]
    assert set(cfg["server"]["kinds"]) == {"thread", "process"}
    metas = {m["config"]["label"]: m for m in (json.load(open(os.path.join(folder, "points", n)))
                                                for n in os.listdir(os.path.join(folder, "points")) if n.endswith(".json"))}
    thread, process = metas["centralized [thread]"]["server"], metas["centralized [process]"]["server"]
    assert thread == {"how": "thread", "pid": os.getpid()}
    assert process["how"] == "process" and process["pid"] != os.getpid()
    assert os.path.basename(process["log"]) == "centralized-process--r0.log" and os.path.getsize(process["log"]) > 0
    assert os.listdir(os.path.join(folder, "servers")) == ["centralized-process--r0.log"]  # thread: no server of its own
    assert all(m["summary"]["ok"] > 0 for m in metas.values())
    build(folder)
    text = open(os.path.join(folder, "REPORT.md")).read()
    assert "## The server in a process of its own against in the sweep's process" in text
    assert "- centralized [process] against centralized [thread]: p50 at the lowest load (closed loop 1 user) " in text

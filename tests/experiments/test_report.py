"""REPORT.md from a run folder: computed, drawn and written in separate steps, on small synthetic runs.

The run folders here are written the way the sweep writes them (``config.json``,
``points/<point>.json`` and ``.parquet``) with made-up but consistent records, so
every expected number is known: no service runs.
"""
from __future__ import annotations

import json
import os

import pandas as pd
import pytest

from stockdag.lab.experiments import report
from stockdag.pipeline import stage_table
from stockdag.pipeline.spec import load_pipeline

MODEL_S = 0.05  # seconds a model stage takes in the traces


def _trace(spec) -> str:
    t, out = 0.0, []
    for s in stage_table(spec):
        d = MODEL_S if s.name in spec.models else 0.005
        out.append({"id": s.id, "stage": s.name, "worker": "w-0", "start": t, "end": t + d})
        t += d
    return json.dumps(out)


def _records(n: int, latency: float, trace: str) -> pd.DataFrame:
    """``n`` successful requests, one after another within a 10 s window (throughput n / 10 req/s)."""
    rows = []
    for i in range(n):
        t = i * 10.0 / n
        rows.append({"index": i, "path": "/predict/AAPL?as_of=2012-06-01", "intended": t, "sent": t, "end": t + latency,
                     "status": 200, "error": "", "latency": latency, "service_time": latency, "warmup": False,
                     "trace": trace})
    return pd.DataFrame(rows)


def write_run(folder, points, *, cluster: str | None = None, server: str | None = "uvicorn, TCP_NODELAY",
              capacity: dict[str, float] | None = None) -> str:
    """A run folder of ``points``: ``[(configuration, n requests, latency s, recorded cluster kind or None)]``.

    ``capacity``: ``{label: parallel capacity of its block}``; given, every point gets a probe (others 1.9x).
    """
    os.makedirs(folder / "points")
    pipelines = sorted({c["pipeline"] for c, *_ in points if c.get("pipeline")})
    configurations = []
    for c, n, latency, kind in points:
        spec = load_pipeline(c.get("pipeline"))
        tag = (f" [{c['server']}]" if c.get("server") else "") + (f" [{c['pipeline'].split('/')[-1]}]" if c.get("pipeline") else "")
        label = ("centralized" if c["mode"] == "centralized" else f"distributed w{c['workers']} {c['strategy']}") + tag
        config = {"mode": c["mode"], "workers": c.get("workers", 1), "strategy": c.get("strategy"), "cluster": cluster,
                  "granularity": None, "pipeline": c.get("pipeline"), "server": c.get("server"), "label": label}
        configurations.append(config)
        slug = label.replace(" ", "-").replace("[", "").replace("]", "") + "--users1--r0"
        _records(n, latency, _trace(spec)).to_parquet(folder / "points" / f"{slug}.parquet", index=False)
        meta = {"point": slug, "config": config, "loop": "closed", "load": 1.0, "repeat": 0,
                "summary": {"url": "http://127.0.0.1:1", "loop": "closed", "rate": None, "users": 1, "arrivals": None,
                            "duration": 10.0, "warmup": 0.0, "timeout": 30.0},
                "cluster": {"cluster": {"kind": kind, "name": "x"}} if kind else {}}
        if c.get("server"):  # how the sweep records the server of a configuration that names one
            meta["server"] = {"how": c["server"], "pid": 1}
        if capacity is not None:
            meta["probe"] = {"before_s": 0.02, "after_s": 0.02, "speed_s": 0.02, "capacity": capacity.get(label, 1.9)}
        (folder / "points" / f"{slug}.json").write_text(json.dumps(meta))
    config = {
        "run_id": folder.name, "started": "2026-11-30T00:00:00",
        "params": {"profile": "refit", "cache": "lru", "mix": "uniform", "symbols": ["AAPL"], "start": "2012-01-01",
                   "end": "2012-12-31", "duration": 10.0, "warmup": 0.0, "repeats": 1, "rates": None, "users": [1],
                   "cluster": cluster},
        "versions": {"dask": "x", "python": "3"}, "git": {"commit": "abc"},
        "machine": {"cores": 2, "parallel_capacity": 2.0, "cpu_model": "test", "memory_gib": 1, "load_average": 0},
        "configurations": configurations, "pipelines": {p: load_pipeline(p).to_dict() for p in pipelines},
    }
    if server is not None:  # None: a run recorded before the sweep noted its server (Nagle's algorithm still on)
        config["server"] = server
    (folder / "config.json").write_text(json.dumps(config))
    return str(folder)


CENTRAL = {"mode": "centralized"}
DIST = {"mode": "distributed", "workers": 2, "strategy": "dask"}


@pytest.fixture
def width_run(tmp_path):
    """Two widths: with 1 model distributing changes nothing; with 5 it doubles throughput and halves latency."""
    return write_run(tmp_path / "width-run", [
        ({**CENTRAL, "pipeline": "width/w01"}, 40, 0.10, None),
        ({**DIST, "pipeline": "width/w01"}, 40, 0.10, "local"),
        ({**CENTRAL, "pipeline": "width/w05"}, 10, 0.50, None),
        ({**DIST, "pipeline": "width/w05"}, 20, 0.25, "local"),
    ])


def test_a_run_that_swept_pipelines_gets_the_width_table_and_chart(width_run):
    numbers = report.build(width_run)
    width = numbers["width"].set_index("label")
    w5 = width.loc["distributed w2 dask [w05]"]
    assert (w5["models"], w5["throughput_speedup"], w5["latency_speedup"]) == (5, pytest.approx(2.0), pytest.approx(2.0, rel=1e-3))  # latencies: HDR histogram
    assert width.loc["distributed w2 dask [w01]", "throughput_speedup"] == pytest.approx(1.0)

    text = open(os.path.join(width_run, "REPORT.md")).read()
    assert "## Width: speed-up vs the number of competing models" in text
    assert "- distributed w2 dask without extra steps: throughput pays from 5 models (2.00x)." in text
    assert "- distributed w2 dask without extra steps: latency pays from 5 models (2.00x)." in text
    assert "| width/w05 | 5 | - | distributed w2 dask [w05] | 2.00 |" in text
    assert f"![{report.CHARTS['width_speedup.png'].caption}](charts/width_speedup.png)" in text
    assert os.path.getsize(os.path.join(width_run, "charts", "width_speedup.png")) > 0
    assert len(pd.read_csv(os.path.join(width_run, "width.csv"))) == 4


def test_a_width_ratio_measured_with_half_the_machine_is_left_out_of_the_width_answer(tmp_path):
    """Issue 23 item 7: the width run quoted its half-machine block; its sentences now rest only on whole blocks."""
    folder = write_run(tmp_path / "width-flagged", [
        ({**CENTRAL, "pipeline": "width/w01"}, 40, 0.10, None),
        ({**DIST, "pipeline": "width/w01"}, 40, 0.10, "local"),
        ({**CENTRAL, "pipeline": "width/w05"}, 10, 0.50, None),
        ({**DIST, "pipeline": "width/w05"}, 20, 0.25, "local"),
    ], capacity={"distributed w2 dask [w05]": 0.96})
    data = report.compute(folder)
    flags = data.width.set_index("label")["flagged"]
    assert flags.to_dict() == {"centralized [w01]": "", "distributed w2 dask [w01]": "", "centralized [w05]": "",
                               "distributed w2 dask [w05]": "its own points"}
    text = report.markdown(data, [])
    assert "distributed w2 dask without extra steps: throughput does not pay up to 1 model (best 1.00x)." in text
    assert "pays from 5 models" not in text
    assert ("Left out of the sentences above, measured on a slowed machine or with less parallel capacity than the "
            "rest (Measurement conditions): distributed w2 dask [w05] (its own points; throughput 2.00x, latency "
            "2.00x). This run claims nothing from them.") in text
    assert "| width/w05 | 5 | - | distributed w2 dask [w05] | 2.00 |" in text and "| its own points |" in text
    slowed_base = write_run(tmp_path / "width-base", [
        ({**CENTRAL, "pipeline": "width/w01"}, 40, 0.10, None), ({**DIST, "pipeline": "width/w01"}, 40, 0.10, "local"),
        ({**CENTRAL, "pipeline": "width/w05"}, 10, 0.50, None), ({**DIST, "pipeline": "width/w05"}, 20, 0.25, "local"),
    ], capacity={"centralized [w05]": 0.96})
    flags = report.compute(slowed_base).width.set_index("label")["flagged"]
    assert flags["distributed w2 dask [w05]"] == "its baseline's" and flags["centralized [w05]"] == "its own points"


def test_a_run_of_one_pipeline_has_no_width_section_and_no_stale_width_chart(tmp_path):
    folder = write_run(tmp_path / "one", [(CENTRAL, 20, 0.2, None), (DIST, 30, 0.15, "local")])
    os.makedirs(os.path.join(folder, "charts"))
    open(os.path.join(folder, "charts", "width_speedup.png"), "wb").close()  # left by an earlier build
    report.build(folder)
    text = open(os.path.join(folder, "REPORT.md")).read()
    assert "## Width" not in text and "width_speedup.png" not in text
    assert not os.path.exists(os.path.join(folder, "charts", "width_speedup.png"))


def test_every_chart_drawn_is_listed_once_from_the_registry(tmp_path):
    data = report.compute(write_run(tmp_path / "r", [(CENTRAL, 20, 0.2, None), (DIST, 30, 0.15, None)]))
    drawn = report.draw(data, str(tmp_path / "charts"))
    assert set(drawn) <= set(report.CHARTS) and "speedup.png" in drawn and "width_speedup.png" not in drawn
    assert "throughput.png" not in drawn  # open-loop points only; this run is closed-loop
    assert sorted(os.listdir(tmp_path / "charts")) == sorted(drawn + [report.INTERACTIVE])
    text = report.markdown(data, drawn)
    assert all(text.count(f"(charts/{name})") == 1 for name in drawn)


@pytest.mark.parametrize("cluster, kind, caveat", [
    ("experiments/clusters/emulated-hetero.yaml", "local", False),  # the path says emulated, the run did not run there
    ("specs/hetero.yaml", "emulated", True),                        # the recorded deployment did
])
def test_the_emulated_caveat_follows_the_recorded_cluster_kind_not_the_path(tmp_path, cluster, kind, caveat):
    folder = write_run(tmp_path / "r", [(CENTRAL, 20, 0.2, None), ({**DIST, "cluster": cluster}, 30, 0.15, kind)],
                       cluster=cluster)
    data = report.compute(folder)
    assert data.kinds == {kind}
    assert ("- Emulated cluster: worker CPU shares are cgroup quotas" in report.markdown(data, [])) is caveat


def test_width_answer_compares_with_replication_and_reads_the_limits():
    import pandas as pd

    from stockdag.lab.experiments.report import width_answer

    rows = []
    for models, work, cp, c_tp in ((1, 0.06, 0.05, 17.0), (20, 2.4, 0.6, 0.4)):
        pipe = f"width/w{models:02d}"
        common = {"pipeline": pipe, "models": models, "steps": "", "critical_path_s": cp, "total_work_s": work,
                  "latency_speedup_bound": work / cp, "throughput_speedup_bound": 2.0}
        rows += [
            {**common, "label": f"centralized [{pipe}]", "mode": "centralized", "workers": 1, "max_throughput": c_tp,
             "throughput_speedup": 1.0, "latency_speedup": 1.0},
            {**common, "label": f"replicated x2 [{pipe}]", "mode": "replicated", "workers": 2,
             "max_throughput": c_tp * (2.2 if models == 1 else 1.8), "throughput_speedup": 2.2 if models == 1 else 1.8,
             "latency_speedup": 1.0},
            {**common, "label": f"distributed w2 adaptive [{pipe}]", "mode": "distributed", "workers": 2,
             "max_throughput": c_tp * 1.4 if models == 1 else c_tp * 1.8, "throughput_speedup": 1.4 if models == 1 else 1.8,
             "latency_speedup": 0.9 if models == 1 else 1.7},
        ]
    text = "\n".join(width_answer(pd.DataFrame(rows)))
    assert "distributed w2 adaptive without extra steps: latency pays from 20 models (1.70x)" in text
    assert "Throughput, distributed over replicated x2 (without extra steps): 0.64x at 1 model, 1.00x at 20 models." in text
    assert "allows a latency speed-up of 1.20x at 1 model and up to 4.00x at 20 models" in text
    assert "best measured is 1.70x (distributed w2 adaptive [width/w20])" in text
    assert ("Measured above its throughput bound: replicated x2 [width/w01] 2.20x > 2.00x. The bound divides the "
            "effective cores by the stage work measured in the centralized server; the stages of these configurations "
            "did not run faster than there") in text  # no stage times: no cause is claimed
    frame = pd.DataFrame(rows).assign(stage_time_ratio=[1.0, 0.9, 1.0, 1.0, 1.0, 1.0])
    assert ("measured in the centralized server; replicated x2 [width/w01]'s stages took 0.90x that time, so its own "
            "bound is higher by as much.") in "\n".join(width_answer(frame))


@pytest.mark.parametrize("server, caveat", [(None, True), ("uvicorn, TCP_NODELAY", False)])
def test_a_run_served_with_nagle_on_says_so_in_its_report_and_the_index(tmp_path, server, caveat):
    results = tmp_path / "results"
    folder = write_run(results / "r", [(CENTRAL, 20, 0.2, None), (DIST, 30, 0.15, None)], server=server)
    data = report.compute(folder)
    assert (report.NAGLE in report.markdown(data, [])) is caveat
    index = open(report.build_index(str(results))).read()
    assert ("Nagle's delay" in index) is caveat


@pytest.mark.parametrize("server, how", [(None, "thread"), ("in-process uvicorn; TCP_NODELAY", "thread"),
                                         ({"how": "thread", "tcp_nodelay": True}, "thread"),
                                         ({"how": "process", "tcp_nodelay": True}, "process")])
def test_the_report_says_where_the_server_under_test_ran(tmp_path, server, how):
    folder = write_run(tmp_path / "r", [(CENTRAL, 20, 0.2, None), (DIST, 30, 0.15, None)], server=server)
    text = report.markdown(report.compute(folder), [])
    assert report.SERVED[how] in text
    assert [s for s in report.SERVED.values() if s in text] == [report.SERVED[how]]


def test_a_run_that_served_configurations_both_ways_compares_each_with_its_twin(tmp_path):
    """Issue 23 item 2: process and thread servers in one run appear apart, each compared with its own kind."""
    folder = write_run(tmp_path / "r", [({**CENTRAL, "server": "process"}, 20, 0.20, None),
                                        ({**DIST, "server": "process"}, 30, 0.15, "local"),
                                        ({**CENTRAL, "server": "thread"}, 20, 0.25, None),
                                        ({**DIST, "server": "thread"}, 24, 0.18, "local")],
                       server={"how": "process", "tcp_nodelay": True, "kinds": {"process": "in its own process",
                                                                              "thread": "in the sweep's"}})
    text = report.markdown(report.compute(folder), [])
    section = text.split("## The server in a process of its own against in the sweep's process\n")[1].split("\n## ")[0]
    lines = [ln for ln in section.splitlines() if ln.startswith("- ")]
    assert lines == [
        "- centralized [process] against centralized [thread]: p50 at the lowest load (closed loop 1 user) 200 against "
        "250 ms (0.80x); throughput at the highest load (closed loop 1 user) 2.00 against 2.00 req/s (1.00x); stage "
        "time at the lowest load 285 against 285 ms (1.00x).",
        "- distributed w2 dask [process] against distributed w2 dask [thread]: p50 at the lowest load (closed loop 1 "
        "user) 150 against 180 ms (0.83x); throughput at the highest load (closed loop 1 user) 3.00 against 2.40 req/s "
        "(1.25x); stage time at the lowest load 285 against 285 ms (1.00x).",
        "- In a process of its own, 2 of 2 had the lower p50 and 1 of 2 had the higher throughput (point estimates: "
        "it takes 3 repeats to judge a difference)."]
    # against centralized, each configuration meets the baseline served its own way, never the other kind's
    against = [ln for ln in text.splitlines() if ln.startswith("- Against centralized [")]
    assert against and all(("[thread]" in ln) != ("[process]" in ln) for ln in against)
    assert ("- The servers under test ran in two ways, interleaved in this run (as each point recorded): process, in "
            "its own process: centralized [process], distributed w2 dask [process]; thread, in the sweep's: "
            "centralized [thread], distributed w2 dask [thread].") in text
    assert not [s for s in report.SERVED.values() if s in text]  # no sentence claims one kind for the whole run
    # the answer is of the configurations served as the first-listed baseline was, the others named, not mixed in
    assert ("- Of the configurations served `process` (centralized [process], distributed w2 dask [process]); the "
            "others (centralized [thread], distributed w2 dask [thread]) are compared with their twins in") in text
    assert "- Centralized baseline: 2.00 req/s at best, p50 200 ms at the lowest load." in text
    assert "- Strategies by best throughput: distributed w2 dask [process] 3.00 req/s." in text


def test_a_run_served_one_way_has_no_twin_section(tmp_path):
    folder = write_run(tmp_path / "r", [(CENTRAL, 20, 0.2, None), (DIST, 30, 0.15, None)],
                       server={"how": "process", "tcp_nodelay": True})
    assert "in a process of its own against" not in report.markdown(report.compute(folder), [])


def test_strategies_served_the_other_way_are_ranked_apart(tmp_path):
    heft = {**DIST, "strategy": "heft"}
    folder = write_run(tmp_path / "r", [({**CENTRAL, "server": "process"}, 20, 0.20, None),
                                        ({**DIST, "server": "process"}, 30, 0.15, "local"),
                                        ({**heft, "server": "process"}, 25, 0.16, "local"),
                                        ({**DIST, "server": "thread"}, 24, 0.18, "local")])
    lines = report.strategy_lines(report.compute(folder).run)
    ranked = [ln for ln in lines if ": best " in ln]
    assert ranked and all(ln.startswith("cluster `embedded LocalCluster`, 2 workers, server process, ") for ln in ranked)
    assert not [ln for ln in ranked if "[thread]" in ln]  # alone in its kind: nothing to rank it against

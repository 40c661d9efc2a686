"""A tiny real sweep: servers, load, records, resumption, report — from the folder alone."""
import json
import os
import re
import shutil

import dask
import pandas as pd
import pytest

from stockdag.cli import main
from stockdag.deploy.emulated import cgroup_layout
from stockdag.deploy.netns import BLOCK
from stockdag.lab.experiments import SweepParams, build, build_index, run_sweep
from stockdag.lab.experiments.sweep import serving
from stockdag.pipeline import STAGES

pytestmark = pytest.mark.slow

SMALL = {"stockdag.models.window": 120, "stockdag.models.error_days": 10, "stockdag.data.min_history": 150,
         "stockdag.data.history_days": 200, "stockdag.data.news_days": 320}


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    params = SweepParams(mode=["centralized", "distributed"], workers=[1], strategy=["round-robin"], rates=[3.0],
                         users=[2], duration=1.5, warmup=0.5, min_requests=6, out=str(out), run_id="tiny", timeout=30)
    with dask.config.set(SMALL):
        folder = run_sweep(params, progress=False)
    return folder


def test_layout_and_records(run_folder):
    cfg = json.load(open(os.path.join(run_folder, "config.json")))
    assert cfg["params"]["rates"] == [3.0] and cfg["machine"]["cores"] == os.cpu_count()
    assert cfg["versions"]["dask"] and "commit" in cfg["git"] and cfg["machine"]["parallel_capacity"] > 0
    assert cfg["worker_settings"] == {"distributed.worker.profile.enabled": False}  # no profiler tax on one side
    summary = pd.read_csv(os.path.join(run_folder, "summary.csv"))
    assert set(summary["label"]) == {"centralized", "distributed w1 round-robin"}
    assert len(summary) == 4 and (summary["ok"] > 0).all()
    # each point's cache hit rates, from the responses' own cache outcomes
    assert summary["prices_hit_rate"].between(0, 1).all() and summary["news_hit_rate"].between(0, 1).all()
    assert (summary["requests"] >= 6).all()  # 1.5 s at 3 req/s is 4.5 requests: the point went on to min_requests
    assert sorted(cfg["order"][0]) == sorted(set(summary["label"]))  # the seeded order of the one repeat
    # each server ran as a user runs it, in a process of its own (not the load generator's), its log kept
    assert cfg["server"]["how"] == "process"
    metas = [json.load(open(os.path.join(run_folder, "points", n)))
             for n in os.listdir(os.path.join(run_folder, "points")) if n.endswith(".json")]
    assert {m["server"]["how"] for m in metas} == {"process"}
    assert all(m["server"]["pid"] != os.getpid() and os.path.getsize(m["server"]["log"]) > 0 for m in metas)
    assert {os.path.basename(m["server"]["log"]) for m in metas} == set(os.listdir(os.path.join(run_folder, "servers")))
    for name in os.listdir(os.path.join(run_folder, "points")):
        if name.endswith(".json"):
            probe = json.load(open(os.path.join(run_folder, "points", name)))["probe"]
            assert probe["speed_s"] > 0 and probe["capacity"] > 0 and probe["block"] in (0, 1)
    rec = pd.read_parquet(os.path.join(run_folder, "points", "centralized--rate3--r0.parquet"))
    assert rec["warmup"].any() and (~rec["warmup"]).any()
    trace = json.loads(rec.loc[rec["status"] == 200, "trace"].iloc[0])
    assert {t["id"] for t in trace} == {s.id for s in STAGES}


def test_resumes_only_missing_points(run_folder):
    points = os.path.join(run_folder, "points")
    done = {f: os.path.getmtime(os.path.join(points, f)) for f in os.listdir(points)}
    os.remove(os.path.join(points, "centralized--users2--r0.json"))
    params = SweepParams(**{**json.load(open(os.path.join(run_folder, "config.json")))["params"]})
    with dask.config.set(SMALL):
        run_sweep(params, progress=False)
    after = {f: os.path.getmtime(os.path.join(points, f)) for f in os.listdir(points)}
    changed = {f for f in after if after[f] != done.get(f)}
    assert changed == {"centralized--users2--r0.json", "centralized--users2--r0.parquet"}


def test_report_is_rebuilt_from_the_folder(run_folder, capsys):
    numbers = build(run_folder)
    lim = numbers["limits"]
    assert lim["critical_path_s"] < lim["total_work_s"] and lim["critical_path"][0] == "C1"
    for chart in ("latency_cdf.png", "throughput.png", "p99.png", "speedup.png", "gantt.png", "stages.png", "charts.html"):
        assert os.path.getsize(os.path.join(run_folder, "charts", chart)) > 1000, chart
    report = open(os.path.join(run_folder, "REPORT.md")).read()
    assert "## Answer on this machine" in report and "Centralized baseline" in report
    assert "CPU-speed probe over 4 points" in report and "ran in a seeded random order" in report
    assert main(["report", os.path.dirname(run_folder)]) == 0
    index = open(os.path.join(os.path.dirname(run_folder), "REPORT.md")).read()
    assert "[tiny](tiny/REPORT.md)" in index
    assert build_index(os.path.dirname(run_folder)).endswith("REPORT.md")


def test_a_sweep_on_a_cluster_spec(tmp_path):
    params = SweepParams(mode=["distributed"], strategy=["pinned"], cluster="experiments/clusters/local-2.yaml",
                         rates=[2.0], duration=1.0, warmup=0.3, min_requests=3, out=str(tmp_path), run_id="spec", timeout=30)
    with dask.config.set(SMALL):
        folder = run_sweep(params, progress=False)
    meta = json.load(open(os.path.join(folder, "points", "distributed-w2-pinned-local-2--rate2--r0.json")))
    assert meta["cluster"]["cluster"]["name"] == "local-2"
    assert meta["summary"]["ok"] > 0
    rec = pd.read_parquet(os.path.join(folder, "points", "distributed-w2-pinned-local-2--rate2--r0.parquet"))
    trace = json.loads(rec.loc[rec["status"] == 200, "trace"].iloc[0])
    assert all(t["planned_worker"] == t["worker"] for t in trace)  # the spec's workers ran what pinned planned


def test_batching_is_a_configuration_dimension(monkeypatch):
    from stockdag import serve
    from stockdag.lab.experiments.sweep import Configuration, serving
    from stockdag.run.batching import PRESETS

    params = SweepParams(configurations=[{"mode": "distributed", "workers": 1, "strategy": "dask", "batching": "dask"},
                                         {"mode": "distributed", "workers": 1, "strategy": "dask"}],
                         users=[1], out="/tmp", run_id="x", server="thread")  # the fake app lives in this process
    labels = [c.label for c in params.configurations_list()]
    assert labels == ["distributed w1 dask batching=dask", "distributed w1 dask"]
    with pytest.raises(ValueError, match="unknown batching 'slow'"):
        Configuration("distributed", 1, "dask", batching="slow")

    seen = {}

    def fake_app(*args, **kwargs):  # what the server's executor would read when it starts
        seen["batching"] = dict(dask.config.get("stockdag.batching"))

        async def app(scope, receive, send):
            if scope["type"] == "lifespan":
                while (await receive())["type"] != "lifespan.shutdown":
                    await send({"type": "lifespan.startup.complete"})
                await send({"type": "lifespan.shutdown.complete"})

        return app

    monkeypatch.setattr(serve, "create_app", fake_app)
    configured = dict(dask.config.get("stockdag.batching"))
    with serving(params.configurations_list()[0], params):
        pass
    assert seen["batching"] == PRESETS["dask"]
    assert dict(dask.config.get("stockdag.batching")) == configured  # only for that server's lifetime


# -- issue 21: on a testbed the baselines run on its machines, and every point records what each machine used
TESTBED1 = "experiments/clusters/testbed-1.yaml"
needs_testbed = pytest.mark.skipif(
    not (os.geteuid() == 0 and shutil.which("ip") and cgroup_layout() is not None and os.path.exists("/proc/self/ns/net")),
    reason="needs root, iproute2, the cgroup CPU controller and network namespaces")
# this process speaks to the testbed's machines (the bench client, /health): its block, and nothing wider
reaches_the_testbed = pytest.mark.allow_hosts(["127.0.0.1", "::1", "localhost", str(BLOCK)])


def _lives_in(pid: int, machine: dict) -> None:
    """From the kernel's records: process ``pid`` is in ``machine``'s network namespace and CPU cgroup."""
    ns = os.stat(f"/proc/{pid}/ns/net").st_ino
    assert ns == os.stat(f"/run/netns/{machine['netns']}").st_ino != os.stat("/proc/self/ns/net").st_ino
    with open(f"/proc/{pid}/cgroup") as f:
        cpu_line = next(line for line in f if re.match(r"^\d+:([\w,]*,)?cpu(,[\w,]*)?:", line))
    assert cpu_line.rstrip().endswith(machine["cgroup"].split("/sys/fs/cgroup/cpu", 1)[1])


@needs_testbed
@reaches_the_testbed
def test_the_centralized_baseline_on_a_testbed_runs_on_a_machine_of_the_spec(tmp_path):
    """The centralized server process in the testbed's `server` machine's namespace and cgroup (its 0.25 CPU quota,
    a worker's), answering at that machine's address from this host over the bridge."""
    import urllib.request

    mode = "centralized"
    params = SweepParams(mode=[mode], workers=[1], cluster=TESTBED1, rates=[1.0], symbols=["AAPL"], out=str(tmp_path),
                         run_id="tb")
    [cfg] = params.configurations_list()
    assert cfg.cluster == params.cluster and cfg.label == "centralized @testbed-1"
    with dask.config.set(SMALL), serving(cfg, params) as (url, info, testbed):
        machines, server = info["cluster"]["machines"], info["server"]
        front = machines[server["machine"]]
        assert server["machine"] == "server" and front["cpu_share"] == machines["m-0"]["cpu_share"]
        assert url == f"http://{front['address']}:8000"
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(url + "/health", timeout=30) as r:
            assert json.load(r)["mode"] == mode
        _lives_in(server["pid"], front)
        with open(os.path.join(front["cgroup"], "cpu.cfs_quota_us")) as f:
            assert int(f.read()) == 1000  # 0.25 CPU of a 4 ms period: held again once the server answered


@needs_testbed
@reaches_the_testbed
def test_a_testbed_point_records_what_each_machine_used(tmp_path):
    """A real point of the centralized baseline on testbed-1: its record holds every machine's cgroup counters and
    the host's idle CPU; the server machine, which served the requests, used CPU time; the summary carries the starved
    column."""
    params = SweepParams(mode=["centralized"], cluster=TESTBED1, rates=[2.0], duration=1.0, warmup=0.3, min_requests=3,
                         symbols=["AAPL"], out=str(tmp_path), run_id="tbpoint", timeout=30)
    with dask.config.set(SMALL):
        folder = run_sweep(params, progress=False)
    meta = json.load(open(os.path.join(folder, "points", "centralized-testbed-1--rate2--r0.json")))
    cpu = meta["cpu"]
    assert set(cpu["machines"]) == {"scheduler", "server", "m-0"} and cpu["wall_s"] > 0
    m0 = cpu["machines"]["server"]
    assert m0["cpu_s"] > 0 and m0["periods"] > 0 and m0["share"] == 0.25
    assert {"throttled", "throttled_s", "active_s", "starved"} <= set(m0) and 0 <= cpu["host_idle_cpus"] <= cpu["host_cores"]
    summary = pd.read_csv(os.path.join(folder, "summary.csv"), keep_default_na=False)
    assert summary.loc[0, "starved"] == " ".join(cpu["starved"])

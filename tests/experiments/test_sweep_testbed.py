"""The sweep on the testbed: servers on its machines, per-point CPU records, and the parameter files of issue 22.

Most tests build configurations and command lines only. The one marked ``slow`` starts a testbed of one machine
and proves from the kernel's records (the server's network namespace and cgroup, the cgroup's CPU counter) that
the centralized server ran on the testbed's machine, not in this process.
"""
from __future__ import annotations

import glob
import os

import pytest

from stockdag.lab.experiments import sweep
from stockdag.lab.experiments.sweep import Configuration, SweepParams, serving

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
TB = "experiments/clusters/testbed-{}.yaml"


def params(**kw) -> SweepParams:
    return SweepParams(users=[1], rates=None, symbols=["AAPL"], profile="pretrained", **kw)


def test_a_server_on_a_testbed_machine_is_named_by_its_cluster_and_machine():
    assert Configuration("centralized", cluster=TB.format("hetero"), machine="big-0").label == "centralized @testbed-hetero on big-0"
    assert Configuration("centralized", cluster=TB.format(1)).label == "centralized @testbed-1"
    assert Configuration("centralized").label == "centralized"  # the labels of committed runs do not change
    mapped = Configuration("distributed", 5, "pinned", TB.format(5), pinned={"C7": "m-0"})
    assert mapped.label == "distributed w5 pinned mapped @testbed-5" != Configuration("distributed", 5, "pinned", TB.format(5)).label
    with pytest.raises(ValueError, match="needs a testbed cluster"):
        Configuration("centralized", machine="big-0")
    with pytest.raises(ValueError, match="with strategy: pinned"):
        Configuration("distributed", 2, "heft", TB.format(2), pinned={"C7": "m-0"})


@pytest.mark.parametrize("cfg, message", [
    (Configuration("replicated", 2, cluster=TB.format(2)), "replicas would share one testbed machine"),
    (Configuration("centralized", cluster="experiments/clusters/emulated-hetero.yaml"), "only a testbed cluster has machines"),
    (Configuration("centralized", cluster=TB.format("hetero"), machine="huge-0"),
     "no machine 'huge-0' in experiments/clusters/testbed-hetero.yaml; machines: scheduler, server, big-0, std-0, slow-0"),
    (Configuration("distributed", 2, "dask", "experiments/clusters/emulated-hetero.yaml", machine="fast-0"),
     "machine applies to a testbed cluster only"),
])
def test_a_server_the_testbed_cannot_place_fairly_is_refused_before_anything_starts(cfg, message):
    with pytest.raises(ValueError, match=message), serving(cfg, params()):
        pass


def test_the_testbed_server_binds_its_machine_address_and_reaches_the_scheduler_only_when_distributed():
    p = params(timeout=60.0)
    central = sweep.testbed_argv(Configuration("centralized", cluster=TB.format(1)), p, "198.18.0.3", "tcp://198.18.0.2:8786")
    assert central[3:6] == ["serve", "--mode", "centralized"] and "--scheduler" not in central
    assert central[central.index("--host") + 1] == "198.18.0.3" and central[central.index("--deadline") + 1] == "60"
    dist = sweep.testbed_argv(Configuration("distributed", 2, "heft", TB.format(2)), p, "198.18.0.3", "tcp://198.18.0.2:8786")
    assert dist[dist.index("--scheduler") + 1] == "tcp://198.18.0.2:8786" and dist[dist.index("--strategy") + 1] == "heft"


FILES = sorted(glob.glob(os.path.join(ROOT, "experiments", "params", "test-cases-testbed-*.yaml")))
#: a companion of a test-case file: its run's 1-machine stage graph at a granularity with per-task overheads
TASKS = [f for f in FILES if f.endswith("-tasks.yaml")]
FILES = [f for f in FILES if f not in TASKS]


@pytest.mark.parametrize("path", TASKS, ids=os.path.basename)
def test_a_companion_file_holds_the_1_machine_stage_graph_the_calibration_needs(path, tmp_path):
    p = SweepParams.from_yaml(path, out=str(tmp_path))
    configs = p.configurations_list()
    assert configs and all(c.mode == "distributed" and c.workers == 1 and c.granularity == "branch" for c in configs)
    assert p.repeats >= 3 and p.min_requests >= 30 and p.users[0] == 1


@pytest.mark.parametrize("path", FILES, ids=os.path.basename)
def test_each_testbed_parameter_file_measures_what_issue_22_asks(path, tmp_path):
    p = SweepParams.from_yaml(path, out=str(tmp_path))
    configs = p.configurations_list()
    labels = [c.label for c in configs]
    assert len(set(labels)) == len(labels)
    assert p.repeats >= 3 and p.min_requests >= 30 and p.users[0] == 1 and p.rates is None
    assert len({tuple(c.label for c in o) for o in p.order()}) == p.repeats  # each repeat its own order
    assert [c for c in configs if c.mode == "centralized"] and all(c.cluster for c in configs)
    assert not [c for c in configs if c.mode == "replicated"]  # replicas on the testbed are its worker machines
    groups = {(c.cluster, c.workers) for c in configs if c.mode == "distributed" and c.workers > 1}
    for cluster, n in groups:
        here = {c.strategy for c in configs if (c.cluster, c.workers) == (cluster, n) and not c.granularity}
        assert "random" in here, f"{cluster} x{n}: no random control"
    top = max(groups, key=lambda g: g[1])  # whole requests on the most machines: the replicated baseline there
    assert [c for c in configs if (c.cluster, c.workers, c.granularity) == (*top, "request")]
    if path.endswith("pretrained.yaml"):
        from stockdag.placement.registry import STRATEGIES

        assert sorted(n for _, n in groups) == [2, 3, 5]
        for cluster, n in groups:  # every strategy where machines are fewest (2) and one a model (5); the control at 3
            want = set(STRATEGIES) if n != 3 else {"dask", "random", "heft", "adaptive"}
            assert {c.strategy for c in configs if (c.cluster, c.workers) == (cluster, n)} == want
        (literal,) = [c for c in configs if c.pinned]
        assert literal.workers == 5 and sorted(literal.pinned.values()) == [f"m-{i}" for i in range(5)]
    if path.endswith("hetero.yaml"):
        machines = [c.machine for c in configs if c.mode == "centralized"]
        assert machines == ["std-0", "big-0"]  # a slow machine first (the calibration's), and the fast one


try:
    from stockdag.deploy.emulated import cgroup_layout
    from stockdag.deploy.netns import BLOCK

    CAN = os.geteuid() == 0 and cgroup_layout() is not None and os.path.exists("/proc/self/ns/net")
except ImportError:  # pragma: no cover
    CAN, BLOCK = False, "198.18.0.0/15"


@pytest.mark.slow
@pytest.mark.skipif(not CAN, reason="needs root, the cgroup CPU controller and network namespaces")
@pytest.mark.allow_hosts(["127.0.0.1", "::1", "localhost", str(BLOCK)])
def test_the_centralized_server_runs_in_the_testbed_machine_and_is_gone_after_its_block(small_settings):
    import dask
    import httpx

    cfg = Configuration("centralized", cluster=os.path.join(ROOT, TB.format(1)))
    with dask.config.set(small_settings), serving(cfg, params(cache="none")) as (url, info, testbed):
        server = info["server"]
        assert server["how"] == "testbed" and server["machine"] == "server"
        pid = server["pid"]
        here = os.stat("/proc/self/ns/net").st_ino
        assert os.stat(f"/proc/{pid}/ns/net").st_ino != here  # its own network namespace
        machine = info["cluster"]["machines"]["server"]
        with open(f"/proc/{pid}/cgroup") as f:
            cgroups = f.read()
        assert machine["cgroup"].split("/sys/fs/cgroup/")[-1].split("/", 1)[-1] in cgroups  # under its quota
        assert url.startswith(f"http://{machine['address']}:")
        before = testbed.cpu_snapshot()
        with httpx.Client(trust_env=False, timeout=120) as client:
            assert client.get(url + "/predict/AAPL", params={"as_of": "2012-06-01"}).status_code == 200
        after = testbed.cpu_snapshot()
        used = after["machines"]["server"]["usage_ns"] - before["machines"]["server"]["usage_ns"]
        assert used > 0  # the request's work was counted on the server machine's cgroup
    assert not os.path.exists(f"/proc/{pid}")

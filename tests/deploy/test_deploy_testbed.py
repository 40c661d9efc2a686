"""kind testbed: machines as network namespaces, proved from the kernel's own records.

One ``stockdag cluster up`` of ``experiments/clusters/testbed-5.yaml`` is shared
by the tests of this module (started once; the last test takes it down and
counts what is left). No test times anything: a worker's namespace is its
``/proc/PID/ns/net`` inode, its quota its cgroup's files, the link cap the
qdisc's own statistics.
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from stockdag.deploy import EmulationUnavailable, load_spec, plan, start
from stockdag.deploy.emulated import cgroup_layout
from stockdag.deploy.netns import BLOCK, ip
from stockdag.deploy.schema import SpecError
from stockdag.deploy.service import _alive

SPEC5 = os.path.join(os.path.dirname(__file__), "..", "..", "experiments", "clusters", "testbed-5.yaml")
SPEC1 = os.path.join(os.path.dirname(__file__), "..", "..", "experiments", "clusters", "testbed-1.yaml")
CAN = os.geteuid() == 0 and cgroup_layout() is not None and os.path.exists("/proc/self/ns/net")
needs_testbed = pytest.mark.skipif(not CAN, reason="needs root, the cgroup CPU controller and network namespaces")
# the test process itself speaks to the testbed (a Dask client, a socket): its block, and nothing wider
reaches_the_testbed = pytest.mark.allow_hosts(["127.0.0.1", "::1", "localhost", str(BLOCK)])


def resources() -> dict[str, set]:
    """Every testbed thing on this host: namespaces, veths, bridges, tbf qdiscs, cgroups, processes."""
    netns = {line.split()[0] for line in ip("netns", "list").stdout.splitlines() if line.startswith("stockdag-")}
    links = ip("-o", "link", "show").stdout
    veths = set(re.findall(r"^\d+: (sdv-[0-9a-f]{8}-\d+)", links, re.MULTILINE))
    bridges = set(re.findall(r"^\d+: (sdb-[0-9a-f]{8})", links, re.MULTILINE))
    qdiscs = {line for line in ip("tc", "qdisc", "show").stdout.splitlines() if "tbf" in line and " dev sd" in line}
    cgroups = set()
    for hier in ("cpu", "cpuacct"):
        root = f"/sys/fs/cgroup/{hier}/stockdag"
        for d, _, _ in os.walk(root):
            cgroups.add(d)
    procs = set()
    here = os.stat("/proc/self/ns/net").st_ino
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            elsewhere = os.stat(f"/proc/{pid}/ns/net").st_ino != here  # even in a namespace already deleted
        except OSError:
            continue
        if elsewhere or "--host 198.18." in cmd or "netns exec stockdag-" in cmd:
            procs.add(int(pid))
    return {"netns": netns, "veths": veths, "bridges": bridges, "qdiscs": qdiscs, "cgroups": cgroups, "processes": procs}


def _settle(before: dict, timeout: float = 30.0) -> dict:
    """What is left beyond ``before``, once processes had time to be reaped."""
    deadline = time.monotonic() + timeout
    while True:
        now = resources()
        extra = {k: now[k] - before[k] for k in now if now[k] - before[k]}
        if not extra or time.monotonic() > deadline:
            return extra
        time.sleep(0.2)


def _env(state_dir, small) -> dict:
    return {**os.environ, "DASK_STOCKDAG__DEPLOY__STATE_DIR": str(state_dir),
            **{"DASK_" + k.upper().replace(".", "__"): str(v) for k, v in small.items()}}


def _stockdag(env, *args, timeout=600) -> str:
    proc = subprocess.run([sys.executable, "-m", "stockdag.cli", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


# -- specs and plans: nothing started
def test_plan_lists_every_machine_with_its_address_cpu_and_link():
    text = plan(SPEC5).text()
    names = ["scheduler", "server"] + [f"m-{i}" for i in range(5)]
    for i, name in enumerate(names):
        assert re.search(rf"^\w+ {name} on 198\.18\.\d+\.{2 + i}, 0\.25 CPU, link 1gbit:$", text, re.MULTILINE), name
    assert "7 machines hold 1.75 of this host's" in text and "compare ratios" in text
    het = plan("testbed-hetero").text()
    assert re.search(r"big-0 on 198\.18\.\d+\.4, 0\.5 CPU, link 1gbit:", het)
    assert re.search(r"slow-0 on 198\.18\.\d+\.6, 0\.25 CPU, link 10mbit, \+20 ms:", het)


@pytest.mark.parametrize("name", ["testbed-1", "testbed-2", "testbed-3", "testbed-5", "testbed-hetero"])
def test_committed_specs_load_with_every_worker_a_stated_share(name):
    spec = load_spec(name)
    assert spec.kind == "testbed" and all(g.cpu_share and g.bandwidth for g in spec.worker_groups)


@pytest.mark.parametrize("change, message", [
    ({"cpu_share": None}, "cpu_share is required"),
    ({"cpu_share": 0.2}, "below the kernel's 1000 us minimum"),
    ({"bandwidth": "fast"}, "bandwidth: expected a tc rate"),
])
def test_bad_machines_are_refused_with_one_line(change, message):
    group = {"name": "m", "count": 1, "cpu_share": 0.25, **change}
    with pytest.raises(SpecError, match=message):
        plan({"kind": "testbed", "worker_groups": [group]})


def test_a_subnet_outside_the_testbed_block_is_refused():
    with pytest.raises(SpecError, match="198.18.0.0/15"):
        load_spec({"kind": "testbed", "worker_groups": [{"name": "m", "cpu_share": 0.25}],
                   "testbed": {"subnet": "10.0.0.0/24"}})


def test_without_root_one_line_says_what_is_missing(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(EmulationUnavailable, match="need root to make network namespaces") as info:
        with start("testbed-1"):
            pytest.fail("started without root")
    assert "\n" not in info.value.message


def test_without_iproute2_one_line_says_what_is_missing(monkeypatch):
    import shutil

    monkeypatch.setattr(shutil, "which", lambda tool: None)
    with pytest.raises(EmulationUnavailable, match="iproute2's ip and tc"):
        with start("testbed-1"):
            pytest.fail("started without ip")


# -- one testbed of 5 workers from `cluster up`, shared by the tests below
@pytest.fixture(scope="module")
def up5(tmp_path_factory, small_settings):
    """`stockdag cluster up testbed-5` in a private state folder: (env, text `up` printed, the cluster's state)."""
    if not CAN:
        pytest.skip("needs root, the cgroup CPU controller and network namespaces")
    env = _env(tmp_path_factory.mktemp("clusters"), small_settings)
    before = resources()
    out = _stockdag(env, "cluster", "up", SPEC5)
    [info] = json.loads(_stockdag(env, "cluster", "status", "--json"))
    try:
        yield {"env": env, "out": out, "info": info, "before": before}
    finally:
        if info["alive"]:
            subprocess.run([sys.executable, "-m", "stockdag.cli", "cluster", "down", "--all"], env=env, timeout=120)


@pytest.mark.slow
def test_up_prints_the_scheduler_address_on_the_testbed(up5):
    info = up5["info"]
    assert re.search(rf"^  scheduler: {re.escape(info['scheduler'])}$", up5["out"], re.MULTILINE)
    assert info["scheduler"].startswith(f"delaytcp://{info['machines']['scheduler']['address']}:")
    assert info["scale"]["machines"] == 7 and info["scale"]["cpus"] == 1.75
    assert info["scale"]["cgroup_period_us"] == 4000


@pytest.mark.slow
@reaches_the_testbed
def test_each_worker_lives_in_its_machine_namespace_and_cgroup_at_its_address(up5):
    from distributed import Client

    machines = up5["info"]["machines"]
    with Client(up5["info"]["scheduler"], timeout=60) as client:
        workers = client.scheduler_info(n_workers=-1)["workers"]
        pids = client.run(os.getpid)
    assert sorted(w["name"] for w in workers.values()) == [f"m-{i}" for i in range(5)]
    for addr, w in workers.items():
        m = machines[w["name"]]
        assert addr.split("://")[1].rsplit(":", 1)[0] == m["address"]  # the scheduler sees it at its address
        pid = pids[addr]
        ns = os.stat(f"/proc/{pid}/ns/net").st_ino
        assert ns == os.stat(f"/run/netns/{m['netns']}").st_ino != os.stat("/proc/self/ns/net").st_ino
        with open(f"/proc/{pid}/cgroup") as f:
            cpu_line = next(line for line in f if re.match(r"^\d+:([\w,]*,)?cpu(,[\w,]*)?:", line))
        assert cpu_line.rstrip().endswith(m["cgroup"].split("/sys/fs/cgroup/cpu", 1)[1])
        with open(os.path.join(m["cgroup"], "cpu.cfs_quota_us")) as f, open(os.path.join(m["cgroup"], "cpu.cfs_period_us")) as g:
            assert (int(f.read()), int(g.read())) == (1000, 4000)  # 0.25 CPU
        # its nanny (the worker's parent) is held by the same machine
        with open(os.path.join(m["cgroup"], "cgroup.procs")) as f:
            held = {int(x) for x in f}
        import psutil

        assert {pid, psutil.Process(pid).ppid()} <= held


@pytest.mark.slow
@reaches_the_testbed
def test_the_link_cap_is_installed_and_shapes_traffic(up5):
    """40 MB sent to a machine above its 1gbit rate: its qdisc counted the bytes and held packets back."""
    m = up5["info"]["machines"]["m-0"]
    veth = m["veth"]

    def stats(*where):
        out = ip("tc", "-s", *where, "qdisc", "show", "dev", veth if not where else "eth0").stdout
        sent, over = re.search(r"Sent (\d+) bytes .*overlimits (\d+)", out, re.DOTALL).groups()
        assert "tbf" in out and "rate 1Gbit" in out
        return int(sent), int(over)

    sink = subprocess.Popen(["ip", "netns", "exec", m["netns"], sys.executable, "-c", SINK, m["address"]],
                            stdout=subprocess.PIPE, text=True)
    try:
        port = int(sink.stdout.readline())
        sent0, over0 = stats()
        with socket.create_connection((m["address"], port), timeout=30) as s:
            s.sendall(b"x" * (40 << 20))
        assert int(sink.communicate(timeout=60)[0]) == 40 << 20
        sent1, over1 = stats()
    finally:
        sink.kill()
        sink.wait()
    assert sent1 - sent0 >= 40 << 20 and over1 > over0
    stats("-n", m["netns"])  # the machine's own side has its cap too


SINK = """
import socket, sys
s = socket.socket()
s.bind((sys.argv[1], 0))
s.listen(1)
print(s.getsockname()[1], flush=True)
c, _ = s.accept()
n = 0
while (b := c.recv(1 << 20)):
    n += len(b)
print(n)
"""


@pytest.mark.slow
@reaches_the_testbed
def test_each_machine_cgroup_counts_its_cpu_time_and_holds_it_to_its_quota(up5):
    """m-0 spins for 0.3 s of CPU: its machine's cgroup counted that time and throttled it (0.25 CPU); the
    other workers' cgroups were not charged for it. Counters only: cpu.stat and cpuacct.usage."""
    from distributed import Client

    from stockdag.deploy.testbed import cpu_snapshot, cpu_usage, machine_cgroups

    def spin(seconds: float) -> None:  # nested: pickled by value, the worker needs not import this module
        start = time.thread_time()
        while time.thread_time() - start < seconds:
            pass

    cgroups = machine_cgroups(up5["info"])
    with Client(up5["info"]["scheduler"], timeout=60) as client:
        [addr] = [a for a, w in client.scheduler_info(n_workers=-1)["workers"].items() if w["name"] == "m-0"]
        before = cpu_snapshot(cgroups)
        client.run(spin, 0.3, workers=[addr])
        after = cpu_snapshot(cgroups)
    used = cpu_usage(before, after)
    m0 = used["machines"]["m-0"]
    assert m0["cpu_s"] >= 0.3 and m0["throttled"] >= 1 and m0["throttled_s"] > 0 and m0["share"] == 0.25
    assert all(used["machines"][f"m-{i}"]["cpu_s"] < 0.3 for i in range(1, 5))
    assert isinstance(used["starved"], list) and used["host_cores"] == os.cpu_count()


@pytest.mark.slow
def test_predict_on_the_testbed_gives_the_centralized_prediction(up5):
    env = up5["env"]
    request = ("predict", "AAPL", "--as-of", "2012-06-01", "--json")
    central = json.loads(_stockdag(env, *request))
    dist = json.loads(_stockdag(env, *request, "--mode", "distributed", "--scheduler", up5["info"]["scheduler"]))
    assert dist["mode"] == "distributed" and central["mode"] == "centralized"
    assert dist["prediction"] == central["prediction"] and dist["winner"] == central["winner"]
    machines = {m["address"] for m in up5["info"]["machines"].values()}
    assert {t["worker"].split("://")[1].rsplit(":", 1)[0] for t in dist["trace"]} <= machines


@pytest.mark.slow
def test_down_leaves_no_namespace_veth_bridge_qdisc_cgroup_or_process(up5):
    """Last of the shared cluster's tests: it takes the cluster down."""
    info = up5["info"]
    assert resources()["netns"] >= {m["netns"] for m in info["machines"].values()}
    out = _stockdag(up5["env"], "cluster", "down", info["cluster_id"])
    info["alive"] = False
    assert f"stopped {info['cluster_id']}" in out
    assert _settle(up5["before"]) == {}
    assert not any(_alive(p) for p in info["processes"].values())


# -- exits that are not `down`
@pytest.mark.slow
def test_sigint_in_the_middle_of_up_leaves_nothing(tmp_path, small):
    env = _env(tmp_path, small)
    before = resources()
    up = subprocess.Popen([sys.executable, "-m", "stockdag.cli", "cluster", "up", SPEC1], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (resources()["netns"] - before["netns"]):  # the testbed is being made
        assert up.poll() is None and time.monotonic() < deadline, up.stderr.read() if up.poll() is not None else "timeout"
        time.sleep(0.05)
    up.send_signal(signal.SIGINT)
    _, err = up.communicate(timeout=120)
    assert up.returncode == 130 and "interrupted" in err
    assert _settle(before) == {}
    assert os.listdir(tmp_path) == []  # no state file, no log of a cluster that never came up


@pytest.mark.slow
def test_a_killed_cluster_process_is_reaped_by_down(tmp_path, small):
    """A crashed run: the process holding the testbed is SIGKILLed (no teardown ran); `down` removes its leftovers."""
    env = _env(tmp_path, small)
    before = resources()
    _stockdag(env, "cluster", "up", SPEC1)
    [info] = json.loads(_stockdag(env, "cluster", "status", "--json"))
    os.kill(info["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 30
    while _alive(info["pid"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert resources()["netns"] - before["netns"]  # the kill left the machines behind
    assert "DEAD" in _stockdag(env, "cluster", "status")
    _stockdag(env, "cluster", "down", info["cluster_id"])
    assert _settle(before) == {}

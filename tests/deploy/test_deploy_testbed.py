"""kind testbed: machines as network namespaces, proved from the kernel's own records.

One ``stockdag cluster up`` of ``experiments/clusters/testbed-5.yaml`` is shared
by the tests of this module (started once; the last test takes it down and
counts what is left). No test times anything: a worker's namespace is its
``/proc/PID/ns/net`` inode, its quota its cgroup's files, the link cap the
qdisc's own statistics.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid

import pytest
from testbed_helpers import resources, settle

from stockdag.deploy import EmulationUnavailable, load_spec, plan, start
from stockdag.deploy.emulated import cgroup_layout
from stockdag.deploy.netns import BLOCK, ip, short
from stockdag.deploy.schema import SpecError
from stockdag.deploy.service import _alive

SPEC5 = os.path.join(os.path.dirname(__file__), "..", "..", "experiments", "clusters", "testbed-5.yaml")
SPEC1 = os.path.join(os.path.dirname(__file__), "..", "..", "experiments", "clusters", "testbed-1.yaml")
CAN = os.geteuid() == 0 and cgroup_layout() is not None and os.path.exists("/proc/self/ns/net")
needs_testbed = pytest.mark.skipif(not CAN, reason="needs root, the cgroup CPU controller and network namespaces")
# the test process itself speaks to the testbed (a Dask client, a socket): its block, and nothing wider
reaches_the_testbed = pytest.mark.allow_hosts(["127.0.0.1", "::1", "localhost", str(BLOCK)])


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


def test_the_plan_starts_every_worker_with_the_profiler_setting():
    # the testbed started its workers with Dask's default (profiler on) while the run recorded it off (issue 22)
    import dask

    for enabled in (False, True):
        with dask.config.set({"stockdag.worker_profiler": enabled}):
            rows = plan(SPEC5).machines
        workers = [m for m in rows if m.role == "worker"]
        assert len(workers) == 5
        assert all(f"DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED={enabled} " in m.commands[-1] for m in workers)
        assert not any("PROFILE__ENABLED" in m.commands[-1] for m in rows if m.role != "worker")


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


# -- the starved rule, on counters written here (no clock: the interval is the snapshots' own "time")
def _snapshot(t: float, host_idle_s: float, **machines) -> dict:
    """A :func:`cpu_snapshot` at ``t`` s: ``machine=(cpu s, quota periods, throttled periods)``, 0.25 CPU / 4 ms each."""
    return {"time": t, "host": {"idle_s": host_idle_s, "total_s": 2 * t, "cores": 2},
            "machines": {n: {"usage_ns": int(cpu * 1e9), "nr_periods": periods, "nr_throttled": throttled,
                             "throttled_time": throttled * 3_000_000, "share": 0.25, "period_us": 4000}
                         for n, (cpu, periods, throttled) in machines.items()}}


def test_a_busy_machine_under_its_quota_on_a_host_without_idle_cpu_is_starved():
    from stockdag.deploy.testbed import cpu_usage

    zero = _snapshot(0.0, 0.0, fed=(0, 0, 0), starved=(0, 0, 0), idle=(0, 0, 0))
    # 10 s = 2500 periods of 4 ms; a 0.25-CPU machine busy throughout may use 2.5 s
    used = cpu_usage(zero, _snapshot(10.0, 0.5, fed=(2.45, 2500, 2400), starved=(1.0, 2500, 0), idle=(0.02, 30, 0)))
    assert used["starved"] == ["starved"] and used["host_idle_cpus"] == pytest.approx(0.05)
    m = used["machines"]
    assert m["starved"]["cpu_s"] == pytest.approx(1.0) and m["starved"]["active_s"] == pytest.approx(10.0)
    assert m["fed"]["throttled"] == 2400 and m["fed"]["throttled_s"] == pytest.approx(7.2) and not m["fed"]["starved"]
    assert not m["idle"]["starved"]  # a machine with no work uses little of its quota, and that is no starvation
    assert used["rule"] == {"busy": 0.5, "starved_use": 0.75, "starved_idle": 0.1}
    # the same machine beside idle host CPU was waiting on something else (its link, the scheduler): not starved
    assert cpu_usage(zero, _snapshot(10.0, 5.0, fed=(2.45, 2500, 2400), starved=(1.0, 2500, 0), idle=(0, 0, 0)))["starved"] == []


# -- one testbed of 5 workers from `cluster up`, shared by the tests below
@pytest.fixture(scope="module")
def up5(tmp_path_factory, small_settings):
    """`stockdag cluster up testbed-5` in a private state folder: (env, text `up` printed, the cluster's state)."""
    if not CAN:
        pytest.skip("needs root, the cgroup CPU controller and network namespaces")
    env = _env(tmp_path_factory.mktemp("clusters"), small_settings)
    out = _stockdag(env, "cluster", "up", SPEC5)
    [info] = json.loads(_stockdag(env, "cluster", "status", "--json"))
    try:
        yield {"env": env, "out": out, "info": info}
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
    held = resources(info["cluster_id"])
    assert held["netns"] == {m["netns"] for m in info["machines"].values()} and held["processes"] and held["cgroups"]
    out = _stockdag(up5["env"], "cluster", "down", info["cluster_id"])
    info["alive"] = False
    assert f"stopped {info['cluster_id']}" in out
    assert settle(info["cluster_id"]) == {}
    assert not any(_alive(p) for p in info["processes"].values())


# -- exits that are not `down`
def _ledger_of_child(parent: int) -> dict | None:
    """The ledger of the testbed a child of ``parent`` (the detached process `cluster up` started) is making."""
    import psutil

    from stockdag import config

    d = config.get("deploy.testbed.ledger_dir")
    for fn in os.listdir(d) if os.path.isdir(d) else ():
        try:
            with open(os.path.join(d, fn)) as f:
                data = json.load(f)
            if psutil.Process(int(data["pid"])).ppid() == parent:
                return data
        except (OSError, ValueError, KeyError, psutil.NoSuchProcess):
            continue
    return None


@pytest.mark.slow
def _sigint_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_sigint_in_the_middle_of_up_leaves_nothing(tmp_path, small):
    env = _env(tmp_path, small)
    # as from a terminal: SIGINT at its default, even when this suite was started with it ignored (`cmd &`, nohup)
    up = subprocess.Popen([sys.executable, "-m", "stockdag.cli", "cluster", "up", SPEC1], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_sigint_default)
    deadline = time.monotonic() + 120
    while not ((ledger := _ledger_of_child(up.pid)) and resources(ledger["cluster_id"])["netns"]):  # being made
        assert up.poll() is None and time.monotonic() < deadline, up.stderr.read() if up.poll() is not None else "timeout"
        time.sleep(0.05)
    up.send_signal(signal.SIGINT)
    _, err = up.communicate(timeout=120)
    assert up.returncode == 130 and "interrupted" in err
    assert settle(ledger["cluster_id"]) == {}
    assert os.listdir(tmp_path) == []  # no state file, no log of a cluster that never came up


@pytest.fixture
def crashed_leftover():
    """What an earlier crashed run left on this host (a namespace of another cluster, no ledger to reap it by)."""
    netns = f"stockdag-crashed-{uuid.uuid4().hex[:8]}-m-0"
    ip("netns", "add", netns)
    try:
        yield netns
    finally:
        ip("netns", "del", netns, check=False)


@pytest.mark.slow
def test_a_killed_cluster_process_is_reaped_by_down(tmp_path, small, crashed_leftover):
    """A crashed run: the process holding the testbed is SIGKILLed (no teardown ran); `down` removes its leftovers,
    every one, whatever an earlier crashed run left on the host beside them."""
    import psutil

    env = _env(tmp_path, small)
    _stockdag(env, "cluster", "up", SPEC1)
    [info] = json.loads(_stockdag(env, "cluster", "status", "--json"))
    cid = info["cluster_id"]
    held = resources(cid)
    procs = {p: psutil.Process(p).create_time() for p in held["processes"]}
    os.kill(info["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 30
    while _alive(info["pid"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = resources(cid)
    assert left["netns"] and left["cgroups"] and left["processes"] and left["bridges"]  # the kill left them behind
    assert "DEAD" in _stockdag(env, "cluster", "status")
    _stockdag(env, "cluster", "down", cid)
    assert settle(cid) == {}
    for pid, created in procs.items():  # each process the cluster ran is gone (a reused PID is another process)
        with contextlib.suppress(psutil.NoSuchProcess):
            p = psutil.Process(pid)
            assert p.create_time() != created or p.status() == psutil.STATUS_ZOMBIE, p
    assert crashed_leftover in ip("netns", "list").stdout  # not ours: left alone


@needs_testbed
def test_an_owner_killed_but_not_yet_reaped_owns_nothing(tmp_path):
    """The killed owner of a ledger stays a zombie until its parent reaps it (a `cluster up` process's parent is
    PID 1, which takes its time, or never does in some containers): its namespace, bridge, cgroup and the process
    inside them are reaped all the same. Before, a zombie owner counted as alive and nothing was reaped."""
    import dask.config
    import psutil

    from stockdag.deploy.netns import Ledger, reap_orphans

    cid = f"zombie-{uuid.uuid4().hex[:8]}"
    netns, bridge = f"stockdag-{cid}-m-0", f"sdb-{short(cid)}"
    cgroup = f"/sys/fs/cgroup/cpu/stockdag/{cid}/m-0"
    owner = subprocess.Popen([sys.executable, "-c", "pass"])
    inside = None
    with dask.config.set({"stockdag.deploy.testbed.ledger_dir": str(tmp_path)}):
        try:
            while psutil.Process(owner.pid).status() != psutil.STATUS_ZOMBIE:
                time.sleep(0.01)
            ledger = Ledger(cid)
            ledger.data.update(pid=owner.pid, create_time=psutil.Process(owner.pid).create_time())
            ledger.add("bridge", bridge)
            ledger.add("netns", netns)
            ledger.add("cgroups", cgroup)
            ip("link", "add", bridge, "type", "bridge")
            ip("netns", "add", netns)
            os.makedirs(cgroup)

            def enter():
                with open(os.path.join(cgroup, "cgroup.procs"), "w") as f:
                    f.write(str(os.getpid()))

            inside = subprocess.Popen(["ip", "netns", "exec", netns, "sleep", "600"], preexec_fn=enter,
                                      start_new_session=True)
            while not resources(cid)["processes"]:
                assert inside.poll() is None
                time.sleep(0.01)
            assert all(resources(cid)[k] for k in ("netns", "bridges", "cgroups"))
            assert reap_orphans() == [cid]
            assert settle(cid) == {} and not os.path.exists(ledger.path)
        finally:
            owner.wait()
            if inside is not None:
                inside.kill()
                inside.wait()
            reap_orphans()

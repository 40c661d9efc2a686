"""kind local: a SpecCluster per the spec, torn down on every exit path; `cluster up/status/down`."""
from __future__ import annotations

import os
import time

import pytest

from stockdag.cli import main
from stockdag.deploy import start
from stockdag.deploy.service import _alive
from stockdag.pipeline.request import parse_request
from stockdag.placement import register
from stockdag.run import DistributedExecutor

SPEC = {"name": "two-groups", "kind": "local", "worker_groups": [
    {"name": "big", "count": 1, "threads": 2, "memory_limit": "1GiB"},
    {"name": "small", "count": 1, "threads": 1, "memory_limit": "1GiB"},
]}


def _pids(client):
    return set(client.run(os.getpid).values())


def _gone(pids, timeout=20.0):
    deadline = time.monotonic() + timeout
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not any(_alive(p) for p in pids)


@pytest.mark.slow
def test_local_cluster_advertises_groups_and_pinned_placement_uses_them(small):
    with start(SPEC) as cluster, cluster.client() as client:
        workers = client.scheduler_info(n_workers=-1)["workers"]
        by_name = {w["name"]: (addr, w) for addr, w in workers.items()}
        assert set(by_name) == {"big-0", "small-0"}
        assert by_name["big-0"][1]["resources"] == {"big": 2.0} and by_name["big-0"][1]["nthreads"] == 2
        assert by_name["small-0"][1]["resources"] == {"small": 1.0}
        register(client, "pinned", pinned={"C3": "small-0", "ridge": "big-0"})
        with DistributedExecutor(client=client) as ex:  # given no strategy: the cluster's pinned plan stays
            result = ex.run(parse_request("AAPL", "2012-06-01"))
        ran = {t.id: t.worker for t in result.trace}
        assert ran["C3"] == by_name["small-0"][0]
        assert ran["C7"] == by_name["big-0"][0]  # C7 is ridge


@pytest.mark.slow
@pytest.mark.parametrize("exc", [ValueError, KeyboardInterrupt])
def test_local_cluster_is_torn_down_on_error_and_interrupt(exc):
    seen = {}
    with pytest.raises(exc):
        with start(SPEC) as cluster:
            with cluster.client() as client:
                seen["pids"] = _pids(client)
            seen["cluster"] = cluster
            raise exc("boom")
    assert len(seen["pids"]) == 2
    assert _gone(seen["pids"])
    assert seen["cluster"].cluster.status.name == "closed"


@pytest.mark.slow
def test_cluster_up_outlives_the_command_then_down_stops_it(state_dir, capsys, write_spec):
    path = write_spec({**SPEC, "name": "upped"}, "upped")
    assert main(["cluster", "up", path]) == 0
    out = capsys.readouterr().out
    assert "scheduler: tcp://127.0.0.1:" in out and "dashboard: http://127.0.0.1:" in out
    assert main(["cluster", "status", "--json"]) == 0
    import json

    [row] = json.loads(capsys.readouterr().out)
    assert row["alive"] and row["name"] == "upped" and row["workers"] == ["big-0", "small-0"]
    from distributed import Client

    with Client(row["scheduler"], timeout=10) as client:  # reachable after `up` returned
        worker_pids = _pids(client)
        assert len(worker_pids) == 2
    assert main(["cluster", "down", "--all"]) == 0
    assert f"stopped {row['cluster_id']}" in capsys.readouterr().out
    assert _gone([row["pid"], *worker_pids])
    assert main(["cluster", "status"]) == 0
    assert "no clusters running" in capsys.readouterr().out


def test_cluster_up_of_a_bad_spec_starts_nothing(state_dir, capsys, write_spec):
    path = write_spec({"kind": "local", "worker_groups": [{"name": "g", "count": "many"}]})
    assert main(["cluster", "up", path]) == 2
    assert "count: expected an integer" in capsys.readouterr().err
    assert not list(state_dir.glob("*.json"))


@pytest.mark.parametrize("recorded", ["other start time", "no start time"])
def test_down_never_signals_a_process_that_reused_a_recorded_pid(state_dir, capsys, recorded):
    import json
    import subprocess
    import sys

    import psutil

    # a process that is not the cluster's: its PID stands for one the cluster had before it ended
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        info = {"cluster_id": "ghost-1", "name": "ghost", "kind": "local", "scheduler": "tcp://127.0.0.1:1",
                "dashboard": None, "workers": ["a-0"], "pid": other.pid}
        if recorded == "other start time":
            info["create_time"] = psutil.Process(other.pid).create_time() - 100
        state_dir.mkdir(exist_ok=True)
        (state_dir / "ghost-1.json").write_text(json.dumps(info))
        assert main(["cluster", "status", "--json"]) == 0
        [row] = json.loads(capsys.readouterr().out)
        assert row["alive"] is False
        assert main(["cluster", "down", "ghost"]) == 0
        assert "stopped ghost-1" in capsys.readouterr().out
        assert other.poll() is None  # not signalled
        assert not (state_dir / "ghost-1.json").exists()  # the stale record is gone
    finally:
        other.kill()
        other.wait()


@pytest.mark.slow
def test_clients_handed_out_are_closed_with_the_cluster():
    """The README form `with start(spec) as cluster: cluster.client()` ends clean, in its own process."""
    import subprocess
    import sys

    code = (
        "import stockdag.deploy as d\n"
        f"with d.start({SPEC!r}) as cluster:\n"
        "    client = cluster.client()\n"           # never closed by the caller
        "    n = len(client.scheduler_info(n_workers=-1)['workers'])\n"
        "    with cluster.client() as c2:\n"         # the context-manager form works too
        "        c2.submit(sum, [1, 2]).result()\n"
        "print('workers', n, 'client', client.status)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["workers", "2", "client", "closed"]
    assert "Failed to reconnect" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr

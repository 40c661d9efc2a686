"""kind emulated: cgroup CPU shares, the delaytcp comm, and the clear error without root.

No test here times anything: a stopwatch ratio fails on a busy host. The CPU
quota is proved from the cgroup's own counters (the quota and period read
back, ``cpu.stat`` throttling, and CPU time never above quota x periods) and
the link delay from timestamps taken on each side of the link (one monotonic clock), beside the
delayed comm's own records (``delaycomm.RECORDS``).
"""
from __future__ import annotations

import asyncio
import os
import subprocess
import time

import dask.config
import pytest

from stockdag.deploy import EmulationUnavailable, start
from stockdag.deploy.emulated import CPUCgroup, cgroup_layout
from stockdag.deploy.service import _alive

LAYOUT = cgroup_layout()
needs_cgroups = pytest.mark.skipif(LAYOUT is None or os.geteuid() != 0, reason="needs root and the cgroup CPU controller")


def test_without_root_the_error_says_so_and_offers_local(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    spec = {"kind": "emulated", "worker_groups": [{"name": "g", "cpu_share": 0.5}]}
    with pytest.raises(EmulationUnavailable) as info:
        with start(spec):
            pytest.fail("started without root")
    msg = info.value.message
    assert "root" in msg and "kind: local" in msg


def test_without_a_cpu_controller_the_error_says_so(monkeypatch):
    import stockdag.deploy.emulated as emulated

    monkeypatch.setattr(emulated, "cgroup_layout", lambda root=emulated.CGROUP_ROOT: None)
    with pytest.raises(EmulationUnavailable, match="cgroup CPU controller.*kind: local"):
        emulated.check_host()


@needs_cgroups
def test_cpu_cgroup_is_made_with_a_short_period_and_removed(tmp_path):
    cg = CPUCgroup(LAYOUT, ("stockdag-test", f"t{os.getpid()}"), 0.5, 10000)
    cg.create()
    try:
        if LAYOUT[0] == "v1":
            with open(os.path.join(cg.path, "cpu.cfs_quota_us")) as f:
                assert f.read().strip() == "5000"
            with open(os.path.join(cg.path, "cpu.cfs_period_us")) as f:
                assert f.read().strip() == "10000"
        else:
            with open(os.path.join(cg.path, "cpu.max")) as f:
                assert f.read().split() == ["5000", "10000"]
        proc = subprocess.Popen(["sleep", "30"], preexec_fn=cg.preexec())
        assert cg.pids() == [proc.pid]
        proc.kill()
        proc.wait()
    finally:
        cg.remove()
    assert not os.path.exists(cg.path)
    assert not os.path.exists(os.path.join(LAYOUT[1], "stockdag-test"))


def test_delaytcp_holds_each_message_and_pipelines_them():
    """Five messages written back to back are each held one delay from their own write (not queued behind
    each other). Each message carries the monotonic time taken before its ``write`` and the receiver notes
    when it read it (one clock, two independent readings): none arrives sooner than the delay, and all five
    were written before the comm sent the first."""
    from distributed.comm import connect, listen

    from stockdag.deploy import delaycomm

    delay = 0.2
    delaycomm.RECORDS.clear()

    async def run():
        got = []
        done = asyncio.Event()

        async def handle(comm):
            for _ in range(5):
                msg = await comm.read()
                got.append((msg, time.monotonic()))
            done.set()
            await comm.close()

        async with listen("delaytcp://127.0.0.1:0", handle) as listener:
            with dask.config.set({"stockdag.deploy.link_delay": delay}):
                comm2 = await connect(listener.contact_address)  # the delay is read when a comm is made
            for i in range(5):
                await comm2.write({"i": i, "written": time.monotonic()})
            await asyncio.wait_for(done.wait(), 60)
            await comm2.close()
        return got

    got = asyncio.run(run())
    assert [m["i"] for m, _ in got] == list(range(5))  # in order
    for m, received in got:
        assert received - m["written"] >= delay  # each held at least its delay, from its own write
    records = [r for r in delaycomm.RECORDS if r[0] == delay]
    assert len(records) == 7  # the connection handshake, then the five messages
    # pipelined: all five were written before the comm sent the first (serialised, each would wait for the previous)
    assert max(m["written"] for m, _ in got) < min(sent for *_, sent in records[2:])


def _cpu_stat(path: str) -> dict[str, int]:
    with open(os.path.join(path, "cpu.stat")) as f:
        return {k: int(v) for k, v in (line.split() for line in f if line.strip())}


def _quota_period(path: str) -> tuple[int, int]:
    if LAYOUT[0] == "v1":
        with open(os.path.join(path, "cpu.cfs_quota_us")) as f, open(os.path.join(path, "cpu.cfs_period_us")) as g:
            return int(f.read()), int(g.read())
    with open(os.path.join(path, "cpu.max")) as f:
        quota, period = f.read().split()
        return int(quota), int(period)


@pytest.mark.slow
@needs_cgroups
def test_half_cpu_worker_is_held_to_its_quota_and_its_messages_to_the_link_delay(small):
    import psutil

    delay = 0.2
    spec = {"name": "emu-test", "kind": "emulated", "worker_groups": [
        {"name": "fast", "count": 1, "threads": 1, "memory_limit": "1GiB", "cpu_share": 1.0},
        {"name": "slow", "count": 1, "threads": 1, "memory_limit": "1GiB", "cpu_share": 0.5, "link_delay": delay},
    ]}

    def busy(seconds_of_cpu):
        # CPU-bound until this process has used the given CPU time (not wall time: the host may be busy)
        start = time.process_time()
        while time.process_time() - start < seconds_of_cpu:
            sum(i * i for i in range(10_000))
        return os.getpid()

    def delayed_records():
        from stockdag.deploy import delaycomm

        return list(delaycomm.RECORDS)

    with start(spec) as cluster, cluster.client() as client:
        info = cluster.info()
        names = {w["name"]: a for a, w in client.scheduler_info(n_workers=-1)["workers"].items()}
        slow_cg = next(p for p in info["cgroups"] if p.endswith("slow-0"))
        fast_cg = next(p for p in info["cgroups"] if p.endswith("fast-0"))
        quota, period = _quota_period(slow_cg)
        assert quota * 2 == period  # 0.5 CPU, read back from the cgroup
        assert _quota_period(fast_cg)[0] == _quota_period(fast_cg)[1]  # 1.0 CPU
        before = _cpu_stat(slow_cg)
        client.submit(busy, 1.0, workers=[names["slow-0"]], pure=False).result()
        after = _cpu_stat(slow_cg)
        periods = after["nr_periods"] - before["nr_periods"]
        throttled = after["nr_throttled"] - before["nr_throttled"]
        # 1 s of CPU at 5 ms a 10 ms period takes >= 200 periods, and the kernel throttled the worker in them
        assert periods >= 1.0e6 / quota and throttled > 0, (periods, throttled)
        # everything in the cgroup, over its whole life, never used more than its quota in any period
        used_us = sum(sum(psutil.Process(pid).cpu_times()[:2]) for pid in _cgroup_pids(slow_cg)) * 1e6
        assert used_us <= (after["nr_periods"] + 2) * quota, (used_us, after["nr_periods"], quota)
        # the slow worker's replies were each held for the link delay by its own comm; the fast one holds none
        slow_records = client.run(delayed_records, workers=[names["slow-0"]])[names["slow-0"]]
        fast_records = client.run(delayed_records, workers=[names["fast-0"]])[names["fast-0"]]
        # independent of those records: the slow worker reads the (host-wide) monotonic clock, and its reply
        # reaches this client no sooner than one link delay later
        ran_at = client.run(time.monotonic, workers=[names["slow-0"]])[names["slow-0"]]
        assert time.monotonic() - ran_at >= delay
        pids = [*info["processes"].values(), *client.run(os.getpid).values()]
    assert slow_records and fast_records == []
    for d, _written, due, sent in slow_records:
        assert d == delay and sent >= due  # never sent before it fell due
    deadline = time.monotonic() + 30
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(p) for p in pids)
    assert not [p for p in info["cgroups"] if os.path.exists(p)]
    assert not os.path.exists(os.path.dirname(info["cgroups"][0]))


def _cgroup_pids(path: str) -> list[int]:
    with open(os.path.join(path, "cgroup.procs")) as f:
        return [int(line) for line in f if line.strip()]

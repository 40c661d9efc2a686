"""The load generator's scheduling logic on a virtual clock (looptime): exact times, no stopwatch.

Each test runs :func:`stockdag.lab.bench.arun` on an event loop whose clock only
moves when every task waits, with a :class:`LoadRun` whose ``fetch`` is a
model server (a known service time, an optional stall). Intended times, the
generator's lag, the warm-up cut, timeouts and stops are then exact values.
Only the plumbing (real sockets) is tested on the real clock, in test_loadgen.py.
"""
from __future__ import annotations

import asyncio

import looptime
import pytest
from hdrh.histogram import HdrHistogram

from stockdag.lab.bench import BenchConfig, arun
from stockdag.lab.bench.loadgen import LoadRun

URL = "http://127.0.0.1:9/"  # never contacted: ModelServerRun.fetch answers


class ModelServerRun(LoadRun):
    """A server on the virtual clock: each request takes ``service`` seconds; from ``stall_at`` it freezes
    for ``stall_for`` seconds (requests arriving meanwhile wait for the end of the stall)."""

    def __init__(self, cfg, service=0.05, stall_at=None, stall_for=0.0, status=200):
        super().__init__(cfg)
        self.service, self.stall_at, self.stall_for, self.status = service, stall_at, stall_for, status

    async def fetch(self, session, url):
        now = self.clock() - self.t0
        start = now
        if self.stall_at is not None and self.stall_at <= now < self.stall_at + self.stall_for:
            start = self.stall_at + self.stall_for
        await asyncio.sleep(start - now + self.service)
        return self.status, b"{}"


def virtual(coro_fn):
    loop = looptime.new_event_loop(start=0.0)
    try:
        return loop.run_until_complete(coro_fn())
    finally:
        loop.close()


def test_open_loop_intended_times_lag_and_warmup_cut():
    cfg = BenchConfig(URL, rate=20, duration=2.0, warmup=0.5, timeout=5)
    run = ModelServerRun(cfg, service=0.05)
    result = virtual(lambda: arun(cfg, state=run))
    rec = result.records
    assert len(rec) == 50 and int(rec["warmup"].sum()) == 10  # 0.5 s of warm-up at 20 req/s is cut
    assert rec["intended"].round(9).tolist() == [round(i / 20, 9) for i in range(50)]
    assert (rec["sent"] - rec["intended"]).abs().max() < 1e-6  # no lag on a virtual clock
    assert (rec["latency"] - 0.05).abs().max() < 1e-6
    s = result.summary
    assert s.requests == 40 and s.ok == 40 and s.errors == {}
    assert s.latency_ms["p50"] == pytest.approx(50.0, rel=1e-3)  # the delay, to the histogram's 3 digits


def test_open_loop_shows_a_stall_that_closed_loop_hides():
    # the server freezes for 1 s at t = 1.5 s. Open loop at 50 req/s keeps its schedule, so the ~50 requests
    # intended during the stall wait up to 1 s (latency from the intended time); closed loop with 2 users waits
    # with the server, so only the 2 requests in flight see the stall
    def open_():
        cfg = BenchConfig(URL, rate=50, duration=3.5, warmup=0.5)
        return arun(cfg, state=ModelServerRun(cfg, service=0.01, stall_at=1.5, stall_for=1.0))

    def closed():
        cfg = BenchConfig(URL, users=2, duration=3.5, warmup=0.5)
        return arun(cfg, state=ModelServerRun(cfg, service=0.01, stall_at=1.5, stall_for=1.0))

    o, c = virtual(open_).summary, virtual(closed).summary
    assert o.errors == {} and c.errors == {}
    stalled = o.requests * 1.0 / 3.5  # share of requests intended during the stall, ~29%
    assert stalled > 10 and o.latency_ms["p90"] >= 100.0 and o.latency_ms["p99"] >= 900.0
    assert c.latency_ms["p99"] == pytest.approx(10.0, rel=1e-2)
    assert c.latency_ms["max"] >= 990.0


def test_a_generator_that_falls_behind_records_its_lag():
    # the generator's process is descheduled for 0.3 s at t = 0.25 s: its clock jumps. The requests due
    # meanwhile (0.3, 0.4, 0.5 s) go out at once at 0.6 s; their latency still counts from the intended time
    class Descheduled(ModelServerRun):
        def clock(self):
            now = asyncio.get_running_loop().time()
            return now + (0.3 if now >= 0.25 else 0.0)

    cfg = BenchConfig(URL, rate=10, requests=10, timeout=5)
    result = virtual(lambda: arun(cfg, state=Descheduled(cfg, service=0.01)))
    rec = result.records.set_index("index")
    lag = (rec["sent"] - rec["intended"]).round(6)
    assert lag.tolist() == [0.0, 0.0, 0.0, 0.3, 0.2, 0.1, 0.0, 0.0, 0.0, 0.0]
    assert ((rec["latency"] - rec["service_time"]).round(6) == lag).all()
    assert result.summary.generator_lag_ms["max"] == pytest.approx(300.0, rel=1e-3)


def test_timeouts_count_at_least_their_timeout_in_the_all_requests_distribution():
    # a 2 s stall from the start: a request sent at t waits until 2.01 s, so those sent before 1.51 s
    # (16 of 30 at 10 req/s) pass the 0.5 s timeout
    cfg = BenchConfig(URL, rate=10, requests=30, timeout=0.5)
    s = virtual(lambda: arun(cfg, state=ModelServerRun(cfg, service=0.01, stall_at=0.0, stall_for=2.0))).summary
    assert s.errors == {"timeout": 16} and s.ok == 14
    assert s.latency_ms["max"] < 500.0  # the successful ones waited less than the timeout...
    assert s.latency_all_ms["p50"] >= 500.0  # ...but more than half of all requests took at least the timeout
    assert any(w.startswith("16 timed out of 30") for w in s.warnings), s.warnings


def test_stop_records_requests_in_flight_as_cancelled_and_touches_nothing_else():
    cfg = BenchConfig(URL, rate=10, duration=10, timeout=60)
    stop = asyncio.Event()

    async def go():
        bystander = asyncio.ensure_future(asyncio.sleep(100))  # another task on the same loop
        run = ModelServerRun(cfg, service=3.0)  # each request takes 3 s: ~30 in flight at the stop
        task = asyncio.ensure_future(arun(cfg, state=run, stop=stop))
        await asyncio.sleep(4.05)
        stop.set()
        result = await task
        alive = not bystander.done()
        bystander.cancel()
        return result, alive

    result, bystander_alive = virtual(go)
    assert bystander_alive  # arun(stop=...) cancels only its own tasks
    rec = result.records
    cancelled = rec[rec["error"] == "cancelled"]
    assert len(rec) == 41 and len(cancelled) == 30 and (rec["error"] == "").sum() == 11
    assert cancelled["end"].round(6).eq(4.05).all()  # recorded with the time they had waited
    assert (cancelled["latency"] - (4.05 - cancelled["intended"])).abs().max() < 1e-6
    s = result.summary
    assert s.errors == {"cancelled": 30} and s.extra["stopped_after"] == pytest.approx(4.05)
    assert HdrHistogram.decode(s.hdr_all).get_total_count() == 41  # the stopped ones are in the latency
    assert HdrHistogram.decode(s.hdr).get_total_count() == 11


def test_a_point_runs_until_it_has_min_requests_and_its_duration():
    cfg = BenchConfig(URL, rate=1, duration=5, warmup=1, min_requests=30)
    s = virtual(lambda: arun(cfg, state=ModelServerRun(cfg, service=0.1))).summary
    assert s.requests == 30 and s.duration == 30.0  # 5 s at 1 req/s is 5 requests: it went on to 30
    cfg = BenchConfig(URL, rate=10, duration=5, warmup=1, min_requests=30)
    s = virtual(lambda: arun(cfg, state=ModelServerRun(cfg, service=0.1))).summary
    assert s.requests == 50 and s.duration == 5.0  # the duration gave more than the minimum
    cfg = BenchConfig(URL, users=1, duration=3, min_requests=10)
    s = virtual(lambda: arun(cfg, state=ModelServerRun(cfg, service=1.0))).summary
    assert s.requests == 10 and s.duration == pytest.approx(9.0)

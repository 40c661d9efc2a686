"""Simulating 64 machines x 10,000 requests (target: under 10 s on one core; reported, not asserted)."""
from __future__ import annotations

import numpy as np
import pytest

from stockdag.lab.bench.loadgen import BenchConfig
from stockdag.lab.simulate import Costs, Overheads, SimConfig, simulate
from stockdag.lab.simulate.model import STAGE_IDS
from stockdag.lab.simulate.planner import ec2_workers

# per-stage seconds of a refit request (the committed default run's means, C1..C12 in table order)
STAGE_S = np.array([0.0001, 0.0001, 0.003, 0.0002, 0.005, 0.037, 0.005, 0.25, 0.07, 0.005, 0.24, 0.0006])


@pytest.mark.parametrize("strategy", ["dask", "round-robin", "heft"])
def test_simulate_64_machines_10000_requests(benchmark, strategy):
    rng = np.random.default_rng(0)
    costs = Costs(STAGE_S * rng.lognormal(0, 0.1, size=(200, len(STAGE_IDS))), {s: 20e3 for s in STAGE_IDS})
    workers = ec2_workers("c5.large", 64)
    rate = 80.0  # below the single scheduler's bound (12 tasks x 0.7 ms) and the 128 vCPUs' bound

    def run():
        bench = BenchConfig("sim://", rate=rate, requests=10_000, warmup=0.0, timeout=600.0)
        return simulate(SimConfig("distributed", workers, strategy), costs,
                        Overheads(request=0.011, hop=0.0029, task=0.0007), bench).summary

    s = benchmark.pedantic(run, rounds=1, iterations=1)
    assert s.requests == 10_000 and s.ok == 10_000 and s.extra["tasks"] == 120_000
    assert s.throughput == pytest.approx(rate, rel=0.05)  # not saturated
    # no request beats its critical path; none waits seconds at this load
    assert 330 <= s.latency_ms["p50"] and s.latency_ms["p99"] < 5000

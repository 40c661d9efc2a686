"""The load generator's own ceiling: closed loop against a trivial local endpoint.

The endpoint (``python -m stockdag.lab.bench.localserver``) runs in its own
process, so on a 2-core machine client and server each get a core and the
figure is the client's. This measures; it asserts only that nothing failed.
The achieved requests/s and the client's CPU seconds land in ``extra_info``.
"""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

from stockdag.lab.bench import BenchConfig, run


@pytest.fixture
def trivial_endpoint():
    proc = subprocess.Popen([sys.executable, "-m", "stockdag.lab.bench.localserver", "--port", "0"],
                            stdout=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline().split()[1])
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.slow
def test_generator_ceiling(benchmark, trivial_endpoint):
    def measure():
        cpu = time.process_time()
        result = run(BenchConfig(trivial_endpoint, users=32, duration=3.0, warmup=0.5))
        return result, time.process_time() - cpu

    result, cpu = benchmark.pedantic(measure, rounds=1, iterations=1)
    s = result.summary
    benchmark.extra_info.update({"requests_per_s": s.throughput, "client_cpu_s": cpu,
                                 "requests": len(result.records), "p99_ms": s.latency_ms["p99"]})
    assert s.errors == {} and s.ok > 0

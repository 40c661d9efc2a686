"""The orchestration overhead of a distributed request against the centralized run (issue: 1 worker ~ centralized).

``stockdag.lab.overhead.measure`` runs centralized and every granularity on one
worker, interleaved request by request, for both profiles; the benchmark
records its summary (per-request and per-task overhead, the latency and
throughput ratios, the time split into compute, submit, gaps and return) in
``extra_info``, printed with ``--benchmark-verbose`` or saved with
``--benchmark-json``. It asserts the answers, never the times.
"""
from __future__ import annotations

import dask
import pytest

from stockdag.lab.overhead import measure
from stockdag.lab.train import train
from stockdag.pipeline import GRANULARITIES

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("models"))
    train(["AAPL", "GOOG", "IBM", "MSFT"], "2010-12-31", folder)
    return folder


def test_overhead_one_worker_both_profiles(benchmark, store, sized, capsys):
    # untimed, on the small windows (the refit profile's requests are most of this test's time); the asserts are on
    # answers, not times
    with dask.config.set({"stockdag.models.window": 120, **sized, "stockdag.models.store": store}):
        m = benchmark.pedantic(
            measure, kwargs={"profiles": ("pretrained", "refit"), "workers": 1, "requests": 3, "batch": 2, "rounds": 1,
                             "granularities": GRANULARITIES, "batchings": ("dask", "fast")},
            rounds=1, iterations=1,
        )
    summary = m.summary()
    benchmark.extra_info["summary"] = summary
    with capsys.disabled():
        print("\n" + m.table())
    for profile, by_label in m.predictions.items():
        # every variant answered every request, with the very same prediction
        assert len({tuple(v) for v in by_label.values()}) == 1, profile
        assert len(by_label) == 1 + 2 * len(GRANULARITIES)
        assert all(len(v) == 3 for v in by_label.values())
    for profile in ("pretrained", "refit"):
        rows = summary[profile]["variants"]
        assert {r["tasks"] for label, r in rows.items() if label.startswith("request/")} == {1}
        assert all("throughput_ratio" in r for r in rows.values())
        # Dask's floor was measured under both presets, in the same block as the requests (one block: 4 after a lead-in)
        assert set(summary[profile]["floor_ratio"]) == {"dask", "fast"}
        assert all(ratio > 1 for ratio in summary[profile]["floor_ratio"].values())
    assert {b: f["n"] for b, f in m.floors().items()} == {"dask": 4, "fast": 4}

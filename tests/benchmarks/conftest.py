"""Benchmark fixtures: the settings a benchmark runs at, by whether it is timed."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def sized(pytestconfig, small_settings):
    """Settings for ``dask.config.set``: none when timed (``make bench``: the defaults, the costs the experiments
    see), conftest's small windows when the test command runs each benchmark once untimed, for its answers alone."""
    return dict(small_settings) if pytestconfig.getoption("benchmark_disable") else {}

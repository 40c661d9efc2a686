"""Fixtures of the placement tests: an in-process cluster and the plugin installed on it."""
from __future__ import annotations

import pytest
from distributed import Client, LocalCluster
from placement_helpers import QUIET, SHAPES
from placement_helpers import run_and_record as _run_and_record

from stockdag.placement import NAME, register


@pytest.fixture
def graphs():
    """Shape name -> builder returning ``(graph, request_id)``."""
    return SHAPES


@pytest.fixture
def run_and_record():
    """``run_and_record(client, graph)``: compute it; return the result and
    ``{key: worker}`` from the scheduler's task stream (its own record of where each task ran)."""
    return _run_and_record


@pytest.fixture(scope="module")
def inproc_cluster():
    """Two single-threaded in-process workers (named 0 and 1), shared by a module's tests."""
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, **QUIET) as c:
        yield c


@pytest.fixture
def inproc_client(inproc_cluster):
    with Client(inproc_cluster) as c:
        yield c


@pytest.fixture
def install(inproc_client, inproc_cluster):
    """``install(strategy, **options)`` registers the plugin; returns the scheduler's own instance."""

    def _install(strategy, **options):
        register(inproc_client, strategy, **options)
        return inproc_cluster.scheduler.plugins[NAME]

    yield _install
    if NAME in inproc_cluster.scheduler.plugins:
        inproc_client.unregister_scheduler_plugin(NAME)

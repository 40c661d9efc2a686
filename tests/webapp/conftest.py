"""Fixtures of the web-app tests: a live centralized stockdag server and the web app, on free loopback ports."""
from __future__ import annotations

import dask
import pytest

from stockdag.lab.webapp import WebAppThread
from stockdag.serve import ServerThread, create_app

# the root conftest's SMALL settings; repeated because module-scoped servers cannot use its function-scoped fixture
SMALL = {"stockdag.models.window": 120, "stockdag.models.error_days": 10, "stockdag.data.min_history": 150,
         "stockdag.data.history_days": 200, "stockdag.data.news_days": 320}


@pytest.fixture(scope="module")
def stockdag_server():
    """Base URL of a centralized `stockdag serve` with small model windows (bundled data)."""
    with dask.config.set(SMALL):
        app = create_app("centralized")  # snapshots the settings
    with ServerThread(app) as server:
        yield server.url


@pytest.fixture(scope="module")
def run_store(tmp_path_factory):
    return tmp_path_factory.mktemp("webapp-runs")


@pytest.fixture(scope="module")
def webapp(run_store):
    """The web app on a free port, keeping its runs in a temporary folder."""
    with dask.config.set({"stockdag.webapp.update_interval": 0.25}):
        with WebAppThread(store=str(run_store)) as app:
            yield app


@pytest.fixture(scope="module")
def distributed_server():
    """Base URL of a distributed `stockdag serve` on 2 workers under round-robin (every request spans both)."""
    with dask.config.set(SMALL):
        app = create_app("distributed", workers=2, strategy="round-robin")
    with ServerThread(app) as server:
        yield server.url

"""The stockdag page the placement plugin adds to the Dask dashboard: strategy and per-stage durations by worker."""
from __future__ import annotations

import logging

import dask
import httpx
import pytest
from distributed import Client, LocalCluster

import stockdag
from stockdag.placement import NAME, register

STAGES = {"parse_request", "fetch_prices", "make_features", "fetch_news", "score_sentiment", "select"}


@pytest.fixture
def dashboard_client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp://", host="127.0.0.1",
                      dashboard_address="127.0.0.1:0", silence_logs=logging.WARNING) as cluster:
        with Client(cluster) as client:
            yield client, cluster


@pytest.mark.filterwarnings("ignore:Scheduler already contains a plugin:UserWarning")  # re-registering is the point
def test_dashboard_page_shows_strategy_and_learned_stage_durations(dashboard_client, small):
    client, cluster = dashboard_client
    base = client.dashboard_link.rsplit("/", 1)[0]
    empty = httpx.get(f"{base}/stockdag.json")
    assert empty.status_code == 404  # no plugin yet: no page
    register(client, "round-robin")
    with dask.config.set({"stockdag.pipeline.granularity": "stage"}):  # one task, so one learned duration, per stage
        stockdag.predict("AAPL", "2012-06-01", mode="distributed", client=client, strategy="round-robin")

    data = httpx.get(f"{base}/stockdag.json").json()
    assert data["strategy"] == "round-robin"
    workers = {str(ws.name) for ws in cluster.scheduler.workers.values()}
    assert set(data["workers"]) == workers
    assert STAGES <= set(data["stages"])
    ran_on = {w for per in data["durations"].values() for w in per}
    assert ran_on == workers  # round-robin spreads the stages over both workers
    assert all(c >= 1 for per in data["counts"].values() for c in per.values())
    # what the scheduler saw is what the page says: one entry per (stage, worker) the plugin learned
    plugin = cluster.scheduler.plugins[NAME]
    assert {(s, w) for s, per in data["durations"].items() for w in per} == set(plugin.costs._mean)

    # reachable from the dashboard's own menu ("More..."), on its pages
    status = httpx.get(f"{base}/status")
    assert status.status_code == 200 and '<a href="stockdag">Stockdag Placement</a>' in status.text

    page = httpx.get(f"{base}/stockdag")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<b id=strategy>round-robin</b>" in page.text and "fetch_prices" in page.text

    register(client, "least-loaded")  # a new plugin replaces the old one: the page follows at once
    assert httpx.get(f"{base}/stockdag.json").json()["strategy"] == "least-loaded"

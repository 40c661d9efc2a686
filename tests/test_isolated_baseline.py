"""The centralized baseline runs in a process of its own, away from the scheduler and client it is compared with."""
import logging
import os

import pytest
from distributed import Client, LocalCluster

from stockdag.lab.demo import compare
from stockdag.pipeline.request import parse_request
from stockdag.run import CentralizedExecutor
from stockdag.run.isolated import process_facts


def _pids(result) -> set[int]:
    # a stage outside Dask is traced as local:<host>:<pid>
    return {int(t.worker.rsplit(":", 1)[1]) for t in result.trace}


def test_an_isolated_baseline_runs_its_stages_where_no_scheduler_or_client_lives(small):
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None, silence_logs=logging.WARNING) as cluster, Client(cluster):
        here = process_facts()
        assert here["dask_client"] and here["dask_scheduler"]  # what the baseline must not share
        with CentralizedExecutor(isolated=True) as central:
            result = central.run(parse_request("AAPL", "2012-06-01", profile="refit"))
            facts = central.facts()
    assert _pids(result) == {facts["pid"]} and facts["pid"] != os.getpid()
    assert not facts["dask_client"] and not facts["dask_scheduler"]
    # one thread runs the stages: no event loop of distributed's (named "IO loop"/"Dask-...") is there
    assert not [t for t in facts["threads"] if "loop" in t.lower() or "dask" in t.lower()]


def test_an_isolated_baseline_predicts_what_the_in_process_one_does(small):
    req = parse_request("MSFT", "2012-03-01", profile="refit")
    with CentralizedExecutor(isolated=True) as central:
        apart = central.run(req)
    assert apart.prediction == CentralizedExecutor().run(req).prediction


@pytest.mark.slow
def test_the_demo_measures_its_baseline_in_a_process_of_its_own(small):
    cmp = compare(requests=1, workers=1, in_flight=1, profile="refit", warmup=1)
    baseline = cmp.machine["baseline"]
    assert baseline["isolated"] and baseline["pid"] != os.getpid() and not baseline["dask_scheduler"]

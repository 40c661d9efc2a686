"""The overhead tool's bounds (owned by stockdag.pipeline.bounds): the best zero-overhead schedule of measured stage costs on W workers."""
from __future__ import annotations

import pytest

from stockdag.pipeline.bounds import best_schedule, critical_path

# the refit profile's mean stage costs (ms) of results/20261130-045005-default
REFIT = {"C1": 0.1, "C6": 0.0, "C2": 1.2, "C5": 0.6, "C3": 6.6, "C4": 39.6,
         "C7": 5.1, "C8": 275.9, "C9": 74.5, "C10": 5.5, "C11": 251.9, "C12": 0.6}


def test_one_worker_runs_all_the_work():
    assert best_schedule(REFIT, 1) == pytest.approx(sum(REFIT.values()))


def test_two_workers_cannot_reach_work_over_two_when_the_models_do_not_split_evenly():
    # the models wait for C1 -> C6 -> C5 -> C4 (40.3 ms); the best split of the five models on two workers is
    # {C8, C7, C10} = 286.5 against {C11, C9} = 326.4; then C12: 40.3 + 326.4 + 0.6
    assert best_schedule(REFIT, 2) == pytest.approx(367.3)
    assert best_schedule(REFIT, 2) > max(critical_path(REFIT).seconds, sum(REFIT.values()) / 2) * 1.10


def test_enough_workers_reach_the_critical_path():
    assert best_schedule(REFIT, 3) == pytest.approx(critical_path(REFIT).seconds)


def test_too_many_assignments_is_no_answer_rather_than_a_long_wait(monkeypatch):
    import stockdag.pipeline.bounds as bounds

    monkeypatch.setattr(bounds, "MAX_ASSIGNMENTS", 2 ** 10)
    assert best_schedule(REFIT, 2) is None

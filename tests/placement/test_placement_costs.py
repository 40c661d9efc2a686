"""CostModel: estimates for unseen (stage, worker) pairs are the documented fallbacks, computed once a stage."""
from __future__ import annotations

import random

import pytest

from stockdag.placement.costs import CostModel

STAGES = [f"C{i}" for i in range(1, 6)]
WORKERS = [f"w{i}" for i in range(8)]


def reference(model: CostModel, ran: dict[str, list[str]], stage: str, worker: str) -> float:
    """The class docstring's fallbacks, written out (``ran``: the workers that ran each stage, in first-run order)."""
    v = model.learned(stage, worker)
    if v is not None:
        return v
    others = ran.get(stage)
    if others:
        mean = sum(model.learned(stage, w) for w in others) / len(others)
        rel = sum(model.slowness(w) for w in others) / len(others)
        return mean * model.slowness(worker) / rel
    prior = model.priors.get(stage)
    return (prior if prior is not None and prior >= 0 else model.default_duration) * model.slowness(worker)


@pytest.fixture
def model():
    m = CostModel(alpha=0.1, speeds={"w0": 2.0, "w3": 0.5}, bandwidth=1e8, latency=0.001)
    m.priors["C2"] = 0.2
    return m


def test_estimates_are_the_fallbacks_before_and_after_every_observation(model):
    rng = random.Random(0)
    ran: dict[str, list[str]] = {}
    checked = 0
    for step in range(200):
        for stage in STAGES:
            for worker in [*WORKERS, "never-seen"]:
                assert model.estimate(stage, worker) == reference(model, ran, stage, worker), (step, stage, worker)
                checked += 1
        stage, worker = rng.choice(STAGES[:4]), rng.choice(WORKERS)  # C5 is never observed: its prior/default path stays checked
        model.observe(stage, worker, rng.uniform(0.01, 1.0) * (2.0 if worker == "w3" else 1.0), nbytes=1000)
        if worker not in ran.setdefault(stage, []):
            ran[stage].append(worker)
    assert checked == 200 * len(STAGES) * (len(WORKERS) + 1) and all(len(ran[s]) > 1 for s in STAGES[:4])


def test_the_fallback_of_a_stage_is_computed_once_between_observations(model, monkeypatch):
    """HEFT asks every (stage, worker) pair of every request: the fallback must not cost one pass over the workers each time."""
    for i, worker in enumerate(WORKERS[:4]):
        model.observe("C1", worker, 0.1 * (i + 1))
    calls = []
    slowness = CostModel.slowness
    monkeypatch.setattr(CostModel, "slowness", lambda self, w: calls.append(w) or slowness(self, w))

    first = model.estimate("C1", "w4")
    assert len(calls) == 4 + 1  # the stage's four workers, then w4
    calls.clear()
    for worker in WORKERS[4:]:
        model.estimate("C1", worker)
    assert calls == WORKERS[4:]  # only each asked worker's own slowness
    calls.clear()

    model.observe("C1", "w5", 0.3)  # what was learned changes the fallback: computed again
    again = model.estimate("C1", "w4")
    assert len(calls) == 5 + 1 and again != first

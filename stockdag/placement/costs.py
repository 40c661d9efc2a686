"""Observed costs: how long each stage takes on each worker, and how big its result is.

The scheduler plugin feeds :meth:`CostModel.observe` from the
``processing -> memory`` transition (the worker and its compute start/stop
times); strategies read :meth:`CostModel.estimate` and
:meth:`CostModel.transfer`. Workers are keyed by *name*, so what was learned
about a machine survives its worker restarting at a new address.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from .. import config


class CostModel:
    """Running per-stage, per-worker compute times and per-stage result sizes.

    Estimates fall back in order: the learned mean for (stage, worker); the
    stage's mean over the workers that ran it, scaled by this worker's learned
    relative slowness; the scheduler's prior for the stage (``priors``, Dask's
    own per-prefix average); ``default_duration``. Relative speed hints
    (``speeds``, bigger is faster) divide the fallbacks until a worker has been
    observed, so a heterogeneous cluster can be described before it is measured.

    Parameters
    ----------
    alpha:
        Weight of a new observation once a pair has been seen ``1/alpha``
        times (before that, a plain mean): recent behaviour wins, slowly.
    speeds:
        Worker name -> relative speed hint. Default ``stockdag.placement.speeds``.
    bandwidth:
        Bytes per second between workers; None takes the scheduler's measured
        value (the plugin sets it). Default ``stockdag.placement.bandwidth``.
    latency:
        Seconds added to every transfer between two workers.
        Default ``stockdag.placement.latency``.
    default_duration:
        Seconds assumed for a stage nothing is known about.
    """

    def __init__(
        self,
        alpha: float | None = None,
        speeds: Mapping[str, float] | None = None,
        bandwidth: float | None = None,
        latency: float | None = None,
        default_duration: float = 0.5,
    ):
        self.alpha = float(config.get("placement.alpha", override_with=alpha))
        self.speeds = {str(k): float(v) for k, v in (config.get("placement.speeds", override_with=speeds) or {}).items()}
        bw = config.get("placement.bandwidth", override_with=bandwidth)
        self.bandwidth = float(bw) if bw else 100e6
        self.fixed_bandwidth = bool(bw)
        self.latency = float(config.get("placement.latency", override_with=latency))
        self.default_duration = float(default_duration)
        self.priors: dict[str, float] = {}
        self._mean: dict[tuple[str, str], float] = {}
        self._count: dict[tuple[str, str], int] = {}
        self._nbytes: dict[str, float] = {}
        self._by_stage: dict[str, dict[str, float]] = {}
        self._slowness: dict[str, float] | None = None
        # stage -> (mean over the workers that ran it, their mean slowness): the fallback of unseen pairs, which
        # HEFT asks for every worker of every task; kept until the next observation (speed hints are fixed)
        self._fallback: dict[str, tuple[float, float]] = {}

    # -- learning -----------------------------------------------------------
    def observe(self, stage: str, worker: str, seconds: float, nbytes: float | None = None) -> None:
        """Record that ``stage`` took ``seconds`` on ``worker`` and produced ``nbytes``."""
        pair = (stage, worker)
        n = self._count.get(pair, 0) + 1
        self._count[pair] = n
        old = self._mean.get(pair)
        mean = seconds if old is None else old + (seconds - old) * max(self.alpha, 1.0 / n)
        self._mean[pair] = mean
        self._by_stage.setdefault(stage, {})[worker] = mean
        if nbytes is not None and nbytes >= 0:
            old_b = self._nbytes.get(stage)
            self._nbytes[stage] = float(nbytes) if old_b is None else old_b + (nbytes - old_b) * max(self.alpha, 1.0 / n)
        self._slowness = None
        self._fallback.clear()  # a new mean moves the stage's fallback and every worker's slowness

    # -- reading ------------------------------------------------------------
    def learned(self, stage: str, worker: str) -> float | None:
        """The learned mean seconds of ``stage`` on ``worker``, or None if never observed."""
        return self._mean.get((stage, worker))

    def count(self, stage: str, worker: str) -> int:
        return self._count.get((stage, worker), 0)

    def nbytes(self, stage: str) -> float:
        """Mean result size of ``stage`` in bytes (0 until observed)."""
        return self._nbytes.get(stage, 0.0)

    def slowness(self, worker: str) -> float:
        """How much slower than average ``worker`` runs the stages it shared with others (1 = average).

        The geometric mean, over stages, of its time over the stage's mean time;
        before any observation, the inverse of its speed hint.
        """
        if self._slowness is None:
            self._slowness = self._fit_slowness()
        s = self._slowness.get(worker)
        if s is not None:
            return s
        return 1.0 / self.speeds.get(worker, 1.0)

    def _fit_slowness(self) -> dict[str, float]:
        logs: dict[str, list[float]] = {}
        for per_worker in self._by_stage.values():
            if len(per_worker) < 2:
                continue
            mean = sum(per_worker.values()) / len(per_worker)
            if mean <= 0:
                continue
            for w, v in per_worker.items():
                if v > 0:
                    logs.setdefault(w, []).append(math.log(v / mean))
        return {w: math.exp(sum(v) / len(v)) for w, v in logs.items()}

    def estimate(self, stage: str, worker: str) -> float:
        """Expected seconds of ``stage`` on ``worker`` (see the class docstring for the fallbacks)."""
        v = self._mean.get((stage, worker))
        if v is not None:
            return v
        per_worker = self._by_stage.get(stage)
        if per_worker:
            # scale the others' mean by how this worker compares with them
            cached = self._fallback.get(stage)
            if cached is None:
                mean = sum(per_worker.values()) / len(per_worker)
                others = sum(self.slowness(w) for w in per_worker) / len(per_worker)
                cached = self._fallback[stage] = (mean, others)
            mean, others = cached
            return mean * self.slowness(worker) / others
        prior = self.priors.get(stage)
        base = prior if prior is not None and prior >= 0 else self.default_duration
        return base * self.slowness(worker)

    def estimates(self, stage: str, workers: Iterable[str]) -> list[float]:
        """``[estimate(stage, w) for w in workers]``, with the learned means read in one pass (HEFT asks for every worker)."""
        learned = self._by_stage.get(stage) or {}
        out = []
        for w in workers:
            v = learned.get(w)
            out.append(v if v is not None else self.estimate(stage, w))
        return out

    def transfer(self, stage: str) -> float:
        """Seconds to move one result of ``stage`` between two different workers."""
        return self.latency + self.nbytes(stage) / self.bandwidth

    def snapshot(self) -> dict[str, Any]:
        """Everything learned, as plain data (for results folders and debugging)."""
        return {
            "durations": {f"{s}@{w}": m for (s, w), m in self._mean.items()},
            "counts": {f"{s}@{w}": c for (s, w), c in self._count.items()},
            "nbytes": dict(self._nbytes),
            "slowness": dict(self._slowness if self._slowness is not None else self._fit_slowness()),
            "bandwidth": self.bandwidth,
            "latency": self.latency,
        }

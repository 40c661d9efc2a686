"""C15 ensemble and C16 interval: combining the candidates after the competition (C12).

* :func:`ensemble_weights`: each candidate weighted by the inverse of its
  recent out-of-sample error (normalised to sum to one); it competes with the
  winner-takes-all selection of C12 (``stockdag evaluate`` scores both).
* :func:`conformal_halfwidth`: split-conformal prediction interval (Vovk et al.
  2005; Lei et al. 2018): the ``ceil((n + 1) * level)``-th smallest of the n
  recent absolute out-of-sample errors. Infinite when n is too small for the level.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def ensemble_weights(errors: Sequence[float]) -> np.ndarray:
    """Weights proportional to 1 / error (equal if any error is 0 or not finite)."""
    e = np.asarray(errors, dtype=float)
    if len(e) == 0:
        raise ValueError("no candidates to combine")
    if not np.all(np.isfinite(e)) or np.any(e <= 0):
        return np.full(len(e), 1.0 / len(e))
    w = 1.0 / e
    return w / w.sum()


def conformal_halfwidth(residuals: Sequence[float], level: float) -> float:
    """Split-conformal half-width at nominal ``level`` from calibration residuals."""
    r = np.sort(np.abs(np.asarray(residuals, dtype=float)))
    n = len(r)
    k = math.ceil((n + 1) * level)
    if n == 0 or k > n:
        return math.inf
    return float(r[k - 1])

"""Which strategy is best, and which are tied with it, from the repeats of a run (pure: no files, no text).

Configurations of one repeat run as one interleaved block sequence, so two
configurations are compared *paired by repeat*: the per-repeat ratio of their
metric, summarised as a geometric mean with a 95% t interval on the log ratios
(:func:`scipy.stats.ttest_1samp`). A strategy is tied with the best when that
interval contains 1. Below :data:`MIN_REPEATS` repeats no interval is given and
no tie can be judged. The method is described in :data:`METHOD`, which the
report quotes.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

#: repeats needed before an interval (and so a tie or a win) is judged: with two, a t interval has 1 degree of freedom
MIN_REPEATS = 3
#: the confidence of every interval
CONFIDENCE = 0.95
#: how the intervals are made, as the report states it
METHOD = (f"per-repeat ratios (configurations paired by repeat), their geometric mean with a {100 * CONFIDENCE:.0f}% "
          "t interval on the log ratios (scipy.stats.ttest_1samp); tied: the interval contains 1")


@dataclass(frozen=True)
class Ratio:
    """``a / b`` over paired repeats: the geometric mean, its interval (None below :data:`MIN_REPEATS`), the pairs."""

    value: float
    low: float | None
    high: float | None
    n: int

    @property
    def judged(self) -> bool:
        """Whether an interval exists (enough repeats)."""
        return self.low is not None

    @property
    def tied(self) -> bool | None:
        """Whether the interval contains 1 (None: not judged)."""
        return None if not self.judged else bool(self.low <= 1.0 <= self.high)


def paired_ratio(a: Sequence[float], b: Sequence[float]) -> Ratio:
    """The ratio ``a / b`` over pairs ``(a[i], b[i])`` (one pair a repeat); pairs with a non-positive or missing value
    are left out."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    logs = np.log(x[keep] / y[keep])
    if len(logs) == 0:
        return Ratio(float("nan"), None, None, 0)
    value = float(np.exp(logs.mean()))
    if len(logs) < MIN_REPEATS:
        return Ratio(value, None, None, len(logs))
    if np.ptp(logs) == 0:  # identical ratios in every repeat: the interval is the point
        return Ratio(value, value, value, len(logs))
    ci = stats.ttest_1samp(logs, 0.0).confidence_interval(CONFIDENCE)
    return Ratio(value, float(np.exp(ci.low)), float(np.exp(ci.high)), len(logs))


@dataclass(frozen=True)
class Ranking:
    """The best of several configurations on one metric, and every other one's ratio to it."""

    metric: str
    lower_is_better: bool
    best: str
    best_value: float                 # geometric mean over repeats
    versus_best: dict[str, Ratio]     # other -> its metric / the best's, paired by repeat
    repeats: int

    @property
    def judged(self) -> bool:
        return self.repeats >= MIN_REPEATS

    @property
    def tied(self) -> list[str]:
        """The configurations statistically tied with the best (empty when not judged)."""
        return [k for k, r in self.versus_best.items() if r.tied]


def _geomean(v: Sequence[float]) -> float:
    v = np.asarray([x for x in v if np.isfinite(x) and x > 0], dtype=float)
    return float(np.exp(np.log(v).mean())) if len(v) else float("nan")


def rank(values: dict[str, dict[int, float]], metric: str, lower_is_better: bool) -> Ranking | None:
    """Rank configurations by ``values[config][repeat]`` (e.g. p50 ms, or req/s); None with fewer than two."""
    means = {k: _geomean(list(v.values())) for k, v in values.items()}
    means = {k: m for k, m in means.items() if np.isfinite(m)}
    if len(means) < 2:
        return None
    best = (min if lower_is_better else max)(means, key=means.get)
    versus = {}
    for k in means:
        if k != best:
            reps = sorted(set(values[k]) & set(values[best]))
            versus[k] = paired_ratio([values[k][r] for r in reps], [values[best][r] for r in reps])
    repeats = min(len(set(v) & set(values[best])) for k, v in values.items() if k in means)
    return Ranking(metric, lower_is_better, best, means[best], versus, repeats)


def versus(values: dict[str, dict[int, float]], control: str) -> dict[str, Ratio]:
    """Each configuration's ratio to ``control`` (e.g. the ``random`` strategy, or the centralized baseline)."""
    if control not in values:
        return {}
    out = {}
    for k, v in values.items():
        if k != control:
            reps = sorted(set(v) & set(values[control]))
            out[k] = paired_ratio([v[r] for r in reps], [values[control][r] for r in reps])
    return out

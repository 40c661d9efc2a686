"""The request mix: which symbol and as-of date each request asks for, drawn uniformly or Zipf-skewed, seeded."""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

import numpy as np
import pandas as pd

DISTRIBUTIONS = ("uniform", "zipf")


def _weights(n: int, distribution: str, s: float) -> np.ndarray:
    if distribution == "uniform":
        return np.full(n, 1.0 / n)
    if distribution == "zipf":
        w = 1.0 / np.arange(1, n + 1) ** s
        return w / w.sum()
    raise ValueError(f"unknown distribution {distribution!r}; choose one of: {', '.join(DISTRIBUTIONS)}")


@dataclass
class RequestMix:
    """Paths ``/predict/{symbol}?as_of=YYYY-MM-DD`` with seeded draws.

    Symbols and dates are drawn independently. Under ``zipf`` the k-th item of
    a seeded permutation has weight ``1 / k**s``, so a few symbol-date pairs
    are hot (what a cache sees in practice) and the hot ones differ by seed.

    Parameters
    ----------
    symbols : list of str
        Symbols to ask for.
    start, end : str
        As-of dates are business days in ``[start, end]``.
    distribution : {"uniform", "zipf"}
    s : float
        Zipf exponent (bigger is more skewed).
    seed : int
    """

    symbols: list[str]
    start: str = "2011-01-03"
    end: str = "2012-12-31"
    distribution: str = "uniform"
    s: float = 1.1
    seed: int = 0

    def __post_init__(self):
        if not self.symbols:
            raise ValueError("the request mix needs at least one symbol")
        self._rng = np.random.default_rng(self.seed)
        self._dates = [d.date().isoformat() for d in pd.bdate_range(self.start, self.end)]
        if not self._dates:
            raise ValueError(f"no business days between {self.start} and {self.end}")
        # permute first, so which items are hot depends on the seed, not on list order
        self._symbols = list(self._rng.permutation(self.symbols))
        self._dates = list(self._rng.permutation(self._dates))
        self._ps = _weights(len(self._symbols), self.distribution, self.s)
        self._pd = _weights(len(self._dates), self.distribution, self.s)

    def paths(self, n: int) -> list[str]:
        """The next ``n`` request paths."""
        si = self._rng.choice(len(self._symbols), size=n, p=self._ps)
        di = self._rng.choice(len(self._dates), size=n, p=self._pd)
        return [f"/predict/{quote(self._symbols[i])}?as_of={self._dates[j]}" for i, j in zip(si, di)]

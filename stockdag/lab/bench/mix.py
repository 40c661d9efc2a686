"""The request mix: which symbol and as-of date each request asks for, drawn uniformly or Zipf-skewed, seeded."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

import numpy as np
import pandas as pd

from .vocabulary import MIXES

DISTRIBUTIONS = MIXES  # (stockdag.lab.bench.vocabulary owns the names)


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
    symbols : list of str, or mapping of str to {"first", "last"} or None
        Symbols to ask for. A mapping is a server's valid as-of ranges (its
        ``/symbols``, as :func:`~stockdag.lab.bench.probe_stockdag` returns it):
        then only answerable requests are drawn (symbols with no range are
        left out, and a date outside a symbol's range is drawn again within
        it). A list is taken as given, so an explicit choice still gets its 422s.
    start, end : str
        As-of dates are business days in ``[start, end]``.
    distribution : {"uniform", "zipf"}
    s : float
        Zipf exponent (bigger is more skewed).
    seed : int
    """

    symbols: list[str] | Mapping
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
        self._ranges = None
        if isinstance(self.symbols, Mapping):
            given = dict(self.symbols)
            first, last = self._dates_sorted_bounds()
            self._ranges = {s: (r["first"], r["last"]) for s, r in given.items()
                            if r and r["first"] <= last and r["last"] >= first}
            self.symbols = [s for s in given if s in self._ranges]
            if not self.symbols:
                raise ValueError(f"the server can answer none of {', '.join(given)} between {self.start} and {self.end}")
        # permute first, so which items are hot depends on the seed, not on list order
        self._symbols = list(self._rng.permutation(self.symbols))
        self._dates = list(self._rng.permutation(self._dates))
        self._ps = _weights(len(self._symbols), self.distribution, self.s)
        self._pd = _weights(len(self._dates), self.distribution, self.s)
        self._valid = {}
        if self._ranges:
            # a symbol's dates within its range, with the mix's weights renormalised (the draw given it is valid)
            for sym, (lo, hi) in self._ranges.items():
                idx = np.array([j for j, d in enumerate(self._dates) if lo <= d <= hi])
                self._valid[sym] = (idx, self._pd[idx] / self._pd[idx].sum())

    def _dates_sorted_bounds(self) -> tuple[str, str]:
        return min(self._dates), max(self._dates)

    def paths(self, n: int) -> list[str]:
        """The next ``n`` request paths."""
        si = self._rng.choice(len(self._symbols), size=n, p=self._ps)
        di = self._rng.choice(len(self._dates), size=n, p=self._pd)
        for k in range(n) if self._ranges else ():
            sym = self._symbols[si[k]]
            lo, hi = self._ranges[sym]
            if not lo <= self._dates[di[k]] <= hi:
                idx, p = self._valid[sym]
                di[k] = self._rng.choice(idx, p=p)
        return [f"/predict/{quote(self._symbols[i])}?as_of={self._dates[j]}" for i, j in zip(si, di)]

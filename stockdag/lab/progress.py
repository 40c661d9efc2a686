"""Progress of a grid of points (the sweep, the simulated scale grid) on stderr: point i of N, what it runs, an ETA.

A tqdm bar on ``sys.stderr``. In a papermill kernel that is the notebook's stderr stream, which
``papermill --log-output`` (as ``scripts/sweep.sh`` runs it) prints on the terminal, one line a refresh.
"""
from __future__ import annotations

import sys

#: no bar (the line is logged, not redrawn, under papermill): counts, elapsed, the ETA, and the point running
FORMAT = "{desc}: {n_fmt}/{total_fmt} done [{elapsed} elapsed, ETA {remaining}]{postfix}"


class PointProgress:
    """Counts points done out of ``total`` (``done`` of them before this session, e.g. a resumed sweep).

    The ETA is the points left times this session's mean seconds a point (tqdm without smoothing).
    ``announce``: print a line as each point starts (for points that take seconds, not for fast simulated ones,
    whose lines come at most every ``mininterval`` seconds).
    """

    def __init__(self, total: int, desc: str, *, done: int = 0, announce: bool = True, mininterval: float = 0.1):
        from tqdm import tqdm

        self.total, self.announce, self.label = total, announce, ""
        self.bar = tqdm(total=total, initial=done, desc=desc, unit="pt", file=sys.stderr, smoothing=0,
                        bar_format=FORMAT, mininterval=mininterval, dynamic_ncols=False)

    def start(self, label: str) -> None:
        """Point ``n + 1`` of ``total`` starts: ``label`` says what it runs."""
        self.label = label
        if self.announce:
            self.bar.set_postfix_str(f"now point {self.bar.n + 1}/{self.total}: {label}")

    def done(self) -> None:
        """The point started last is done (unannounced points name it here, in the lines that are printed)."""
        last = "" if self.announce else f"point {self.bar.n + 1}/{self.total} was {self.label}"
        self.bar.set_postfix_str(last, refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()

    def __enter__(self) -> PointProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

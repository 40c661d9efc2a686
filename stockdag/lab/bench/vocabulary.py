"""The load generator's vocabulary: the one owner of the names of its arrivals, mixes and loops.

The CLI's choices, the web app's selects and the load generator's own checks
import these; :mod:`stockdag.lab.bench` re-exports them. This module imports nothing,
so ``stockdag --help`` reads it without loading the load generator.
"""
from __future__ import annotations

#: open-loop arrival processes: evenly spaced sends, or exponential gaps (seeded)
ARRIVALS: tuple[str, ...] = ("constant", "poisson")
#: how a request mix draws symbols and as-of dates: every one alike, or Zipf-skewed towards a few hot ones
MIXES: tuple[str, ...] = ("uniform", "zipf")
OPEN, CLOSED = "open", "closed"
#: open loop (a target rate, latency from intended send times) or closed loop (N users, each waiting for its answer)
LOOPS: tuple[str, ...] = (OPEN, CLOSED)

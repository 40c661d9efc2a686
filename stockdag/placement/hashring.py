"""A consistent-hash ring over worker names (Karger et al., STOC 1997).

Each worker owns ``vnodes`` points on a 64-bit ring; an item belongs to the
first point at or after its own hash. When a worker joins or leaves, only the
items on the arcs it gains or loses move, about ``1/n`` of them. Hashes come
from BLAKE2b, not :func:`hash`, so every process (client, scheduler, a restart)
agrees on the ring.
"""
from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable
from typing import Any


def stable_hash(text: str) -> int:
    """A 64-bit hash of ``text`` that is the same in every process."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


class HashRing:
    """Consistent hashing of strings to a set of names.

    Parameters
    ----------
    names:
        The members (worker names). Order does not matter.
    vnodes:
        Points per member; more points spread the load more evenly.
    """

    def __init__(self, names: Iterable[str], vnodes: int = 64):
        self.names = frozenset(names)
        if not self.names:
            raise ValueError("a hash ring needs at least one member")
        points = sorted((stable_hash(f"{name}#{i}"), name) for name in self.names for i in range(vnodes))
        self._hashes = [h for h, _ in points]
        self._owners = [n for _, n in points]

    def lookup(self, item: str) -> str:
        """The member that owns ``item``."""
        i = bisect.bisect_left(self._hashes, stable_hash(item))
        return self._owners[i % len(self._owners)]


class RingCache:
    """The ring of the current member set, rebuilt only when the set changes."""

    def __init__(self, vnodes: int):
        self.vnodes = vnodes
        self._ring: HashRing | None = None

    def get(self, names: Iterable[str]) -> HashRing:
        names = frozenset(names)
        if self._ring is None or self._ring.names != names:
            self._ring = HashRing(names, self.vnodes)
        return self._ring

    def __getstate__(self) -> dict[str, Any]:
        return {"vnodes": self.vnodes, "_ring": None}

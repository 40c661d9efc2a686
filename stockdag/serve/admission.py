"""Admission control: how many predictions' *work* the server holds at once.

A pure counter with no event loop or backend in it, so its rule is tested
alone. The HTTP handler takes a :class:`Ticket` per admitted request; a backend
whose work outlives the handler (a thread or process running the pipeline
after the client had its 504) takes the ticket over and releases it when that
work ends, so the count is of work being done, not of handlers waiting.
"""
from __future__ import annotations

import threading


class Ticket:
    """One admitted request's place in the count; released exactly once."""

    __slots__ = ("_admission", "_released", "handed_over")

    def __init__(self, admission: Admission):
        self._admission = admission
        self._released = False
        self.handed_over = False  # True once a backend owns the release (its work may outlive the handler)

    def hand_over(self) -> Ticket:
        """Called by the backend that started the work: it now releases the ticket when the work ends."""
        self.handed_over = True
        return self

    def release(self, *_ignored) -> None:
        """Give the place back (idempotent; ``*_ignored`` lets it be a future's done-callback)."""
        self._admission._release(self)


class Admission:
    """At most ``limit`` tickets out at once; thread-safe (work ends on pool threads).

    Extend by subclassing and overriding :meth:`admit` (e.g. per-client limits).
    """

    def __init__(self, limit: int):
        self.limit = limit
        self._lock = threading.Lock()
        self._in_flight = 0
        self.admitted = 0  # counters since start, for tests and /health
        self.released = 0

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def admit(self) -> Ticket | None:
        """A ticket, or None when ``limit`` requests' work is already in flight."""
        with self._lock:
            if self._in_flight >= self.limit:
                return None
            self._in_flight += 1
            self.admitted += 1
        return Ticket(self)

    def _release(self, ticket: Ticket) -> None:
        with self._lock:
            if ticket._released:
                return
            ticket._released = True
            self._in_flight -= 1
            self.released += 1

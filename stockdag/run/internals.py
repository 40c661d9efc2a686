"""The private parts of distributed that stockdag reads, looked up in one place.

stockdag relies on a few internals of distributed 2026.8 (pyproject.toml bounds the
release): the client's cached scheduler identity, the TCP comm's frame helpers
and each stream's ``BatchedSend``. When a release drops one, :func:`require`
fails with one line that names it, instead of letting the caller fall back to
something else without a word (the ``auto`` granularity once resolved to
``stage`` that way).
"""
from __future__ import annotations

import importlib

from ..errors import StockdagError

TESTED = "2026.8"  # the distributed release pyproject.toml allows (and the suite passes on)


class MissingInternal(StockdagError):
    """An internal of distributed that stockdag uses is not there (another distributed release)."""


def _version() -> str:
    try:
        import distributed

        return distributed.__version__
    except ImportError:  # pragma: no cover - distributed is a requirement
        return "(not installed)"


def missing(what: str) -> MissingInternal:
    return MissingInternal(f"distributed {_version()} has no {what}, which stockdag uses; "
                           f"install distributed {TESTED}.x (pip install 'distributed=={TESTED}.*')")


def require(obj, attr: str, what: str | None = None):
    """``obj.attr``, or :class:`MissingInternal` naming it."""
    try:
        return getattr(obj, attr)
    except AttributeError:
        raise missing(what or f"{type(obj).__name__}.{attr}") from None


def from_module(module: str, *names: str) -> tuple:
    """The objects ``names`` of ``module``, or :class:`MissingInternal` naming the first one missing."""
    mod = importlib.import_module(module)
    return tuple(require(mod, n, f"{module}.{n}") for n in names)

"""The errors stockdag raises on bad input or unavailable data.

Every error is a :class:`StockdagError` with a one-line message meant for the
user, an HTTP status the server maps it to, and pickles intact so that an
error raised on a Dask worker reaches the client unchanged.
"""
from __future__ import annotations


class StockdagError(Exception):
    """Base class. Subclasses set ``http_status``; extend by subclassing."""

    http_status = 500

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __reduce__(self):
        return (type(self), (self.message,))


class InvalidRequest(StockdagError, ValueError):
    """A malformed symbol, date, profile or option (rejected before any I/O)."""

    http_status = 422


class InsufficientHistory(InvalidRequest):
    """The as-of date has too little price history before it (:class:`OutsideData`: none at all)."""


class OutsideData(InsufficientHistory):
    """The as-of date lies outside the data: after its last price, or before its first."""


class UnknownSymbol(StockdagError, LookupError):
    """A well-formed symbol the data source does not have."""

    http_status = 404

    def __init__(self, symbol: str, available: list[str] | tuple[str, ...] = ()):
        self.symbol = symbol
        self.available = tuple(available)
        msg = f"unknown symbol {symbol!r}"
        if self.available:
            msg += f"; available: {', '.join(self.available)}"
        super().__init__(msg)

    def __reduce__(self):
        return (type(self), (self.symbol, self.available))


class DataSourceError(StockdagError):
    """A data source failed: unreachable, timed out, or returned nothing usable."""

    http_status = 502


class ModelStoreError(StockdagError):
    """The pretrained model store is missing or does not cover the request."""

    http_status = 503


class MissingMainGuard(StockdagError, RuntimeError):
    """A script starts worker processes from its top level without ``if __name__ == "__main__":``."""

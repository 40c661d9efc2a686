"""Which symbols a command uses when none are named: those of the data source's own list.

The symbol list belongs to the price source (:meth:`PriceSource.symbols`, e.g.
the tickers ``bokeh_sampledata`` ships); ``stockdag train``, ``stockdag
evaluate``, the demo's and the sweep's request mixes take from it the symbols
with enough history for their work, instead of a list typed again.
"""
from __future__ import annotations

import datetime as dt

import pandas as pd

from ...errors import InvalidRequest, StockdagError


def symbols_with_history(until, rows: int, source: str | None = None, data_dir: str | None = None) -> list[str]:
    """The data source's symbols with at least ``rows`` days of prices up to ``until`` (inclusive), sorted.

    ``source`` and ``data_dir`` default to ``stockdag.data.source`` and
    ``stockdag.data.data_dir``. A symbol whose prices cannot be read is left out.

    Raises
    ------
    InvalidRequest
        when the source cannot list its symbols (a live source answers one
        symbol at a time) or none has that much history: name the symbols.
    """
    from ... import config
    from .prices import get_price_source

    name = config.get("data.source", override_with=source)
    data_dir = config.get("data.data_dir", override_with=data_dir)
    src = get_price_source(name, data_dir, float(config.get("data.timeout")))
    names = src.symbols()
    if not names:
        raise InvalidRequest(f"the {name} source cannot list its symbols: name them (--symbols)")
    end = pd.Timestamp(until if not isinstance(until, dt.date) else until.isoformat())
    out = []
    for symbol in names:
        try:
            frame = src.fetch(symbol, None, history_days=10**9, min_history=1).frame
        except StockdagError:
            continue
        if int((frame.index <= end).sum()) >= rows:
            out.append(symbol)
    if not out:
        raise InvalidRequest(f"no symbol of the {name} source has {rows} days of prices up to {end.date()}: "
                             "name the symbols (--symbols)")
    return out

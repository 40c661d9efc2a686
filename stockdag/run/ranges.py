"""Each symbol's valid as-of range for a server's profile and data (``/symbols``).

A date inside ``[first, last]`` can be answered; one outside is a 422. The
range is computed once, when the server starts, from the same price source,
feature code and model-store metadata the stages use, so it cannot drift from
what C2, C3 and C7-C11 accept:

* ``last`` is the last price date (C2 refuses later dates);
* ``first`` is the earliest date with ``min_history`` rows up to it (C2), enough
  feature rows for the models (C3 drops warm-up rows; a refit needs
  ``error_days + 50`` rows with a known next-day return), and, for the
  ``pretrained`` profile, a recent-error window that starts after the stored
  models' ``train_end`` (C7-C11 refuse to score on their training days).

:func:`first_valid` is the pure core (dates and counts in, an index out);
:func:`symbol_ranges` adapts a price source and the settings snapshot to it.
"""
from __future__ import annotations

import bisect
import datetime as dt
import logging
from collections.abc import Callable, Sequence

from ..errors import InsufficientHistory, StockdagError

logger = logging.getLogger(__name__)

REFIT_EXTRA_ROWS = 50  # stockdag.domain.models.compete.fit_predict: error_days + 50 usable rows


def first_valid(dates: Sequence[dt.date], min_history: int, enough_features: Callable[[int], bool],
                not_before: dt.date | None = None) -> int | None:
    """Index of the first valid as-of date in ascending ``dates``, or None.

    ``enough_features(i)`` says whether the history up to ``dates[i]`` gives
    enough feature rows; it must be monotone (false, then true), so it is
    bisected. ``not_before`` is the earliest valid date from other rules.
    """
    lo = max(min_history - 1, 0)
    if not_before is not None:
        lo = max(lo, bisect.bisect_left(list(dates), not_before))
    hi = len(dates)
    if lo >= hi:
        return None
    while lo < hi:  # the first index where enough_features holds, in [lo, len(dates))
        mid = (lo + hi) // 2
        if enough_features(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo if lo < len(dates) else None


def symbol_ranges(source, symbols: Sequence[str], settings: dict,
                  reasons: dict[str, StockdagError] | None = None) -> dict[str, dict | None]:
    """``{symbol: {"first": ISO date, "last": ISO date} | None}`` for the server's profile and data.

    None means no date of that symbol can be answered (e.g. FB's 196 days of
    bundled prices against ``min_history`` 300, or no stored models); the
    error a request for it would get is put in ``reasons`` when given.
    """
    reasons = {} if reasons is None else reasons
    from ..domain.features import make_features
    from ..domain.models import store as model_store

    data, models = settings["data"], settings["models"]
    min_history, history_days = int(data["min_history"]), int(data["history_days"])
    error_days = int(models["error_days"])
    pretrained = settings["profile"] == "pretrained"
    if pretrained:  # the metadata of the models this server's spec loads (a market step's are stored apart)
        from ..pipeline.spec import load_pipeline

        spec = load_pipeline((settings.get("pipeline") or {}).get("spec"))
        variant = model_store.variant("market" in spec.steps)
    out: dict[str, dict | None] = {}
    for symbol in symbols:
        try:
            prices = source.fetch(symbol, None, 10**9, 1)
            train_end = None
            if pretrained:
                meta = model_store.read_meta(models["store"] or model_store.default_store(), symbol, variant)
                train_end = dt.date.fromisoformat(str(meta["train_end"]))
        except StockdagError as exc:  # no data or no models: nothing can be answered
            logger.info("no valid as-of range for %s: %s", symbol, exc.message)
            out[symbol], reasons[symbol] = None, exc
            continue
        frame = prices.frame
        dates = [d.date() for d in frame.index]
        needed = error_days + (1 if pretrained else REFIT_EXTRA_ROWS)

        def enough(i: int) -> bool:
            window = frame.iloc[max(0, i + 1 - history_days): i + 1]
            feats = make_features(type(prices)(symbol, prices.source, dates[i], window))
            return len(feats.frame) - 1 >= needed  # the as-of row has no known next-day return

        not_before = None
        if train_end is not None:
            # the recent-error window (error_days feature rows before the as-of row) must start after train_end
            k = bisect.bisect_right(dates, train_end)
            not_before = dates[k + error_days] if k + error_days < len(dates) else dt.date.max
        i = first_valid(dates, min_history, enough, not_before)
        out[symbol] = None if i is None else {"first": dates[i].isoformat(), "last": dates[-1].isoformat()}
        if i is None:
            reasons[symbol] = InsufficientHistory(
                f"no as-of date of {symbol} can be answered with the {settings['profile']} profile: its "
                f"{len(dates)} trading days ({dates[0]} to {dates[-1]}) leave too little history (see /symbols)")
    return out

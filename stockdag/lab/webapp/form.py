"""The web app's form checks: :func:`parse_form` turns the form's values into the run's parameters
(:class:`~stockdag.lab.bench.BenchConfig` keyword arguments plus the request mix), or raises
:class:`FormError` with one line a person can act on.

The choices (arrivals, request mixes) are :mod:`stockdag.lab.bench`'s: the form offers and accepts
exactly what the load generator knows. Extend by adding a field here and to the page's form.
"""
from __future__ import annotations

import datetime as dt
import math
import re
from urllib.parse import urlsplit

from ... import config
from ..bench import ARRIVALS, LOOPS, MIXES


class FormError(ValueError):
    """A form value the app cannot use; the message names the field and what it accepts."""


def _number(values: dict, key: str, label: str, *, integer: bool = False, minimum: float | None = None,
            above: float | None = None, maximum: float | None = None, required: bool = True):
    raw = values.get(key)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        if required:
            raise FormError(f"{label}: enter a number")
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise FormError(f"{label}: {raw!r} is not a number") from None
    if not math.isfinite(value):
        raise FormError(f"{label}: {raw!r} is not a finite number")
    if integer:
        if value != int(value):
            raise FormError(f"{label}: {raw!r} is not a whole number")
        value = int(value)
    if minimum is not None and value < minimum:
        raise FormError(f"{label} must be at least {minimum:g} (got {value:g})")
    if above is not None and value <= above:
        raise FormError(f"{label} must be more than {above:g} (got {value:g})")
    if maximum is not None and value > maximum:
        raise FormError(f"{label} must be at most {maximum:g} (got {value:g})")
    return value


def parse_url(url: str | None) -> str:
    """A cleaned ``http(s)://host[:port][/path]`` URL, or :class:`FormError`."""
    url = (url or "").strip()
    if not url:
        raise FormError("server URL: enter the URL of the server to measure, e.g. http://127.0.0.1:8000")
    if "://" not in url:
        url = "http://" + url
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise FormError(f"server URL: {url!r} is not an http:// or https:// URL")
    try:
        port = parts.port
    except ValueError:
        raise FormError(f"server URL: {url!r} has an invalid port") from None
    if not parts.hostname:
        raise FormError(f"server URL: {url!r} names no host")
    del port
    return url


def parse_form(values: dict) -> dict:
    """Check the form and return the run's parameters.

    ``values`` holds strings or numbers under ``url, loop ("open"|"closed"),
    rate, users, arrivals, duration, warmup, timeout, distribution, symbols
    (comma- or space-separated, blank: all the server lists), start, end,
    seed, label``. Returns ``{"bench": BenchConfig keyword arguments without
    mix, "mix": RequestMix keyword arguments without symbols, "symbols": list
    or None, "label": str}``.

    Raises
    ------
    FormError
        naming the first bad field.
    """
    url = parse_url(values.get("url"))
    loop = values.get("loop", "open")
    if loop not in LOOPS:
        raise FormError(f"load: choose open loop (rate) or closed loop (users), not {loop!r}")
    max_duration = float(config.get("webapp.max_duration"))
    bench = {
        "url": url,
        "duration": _number(values, "duration", "duration (s)", above=0, maximum=max_duration),
        "warmup": _number(values, "warmup", "warm-up (s)", minimum=0, maximum=max_duration, required=False) or 0.0,
        "timeout": _number(values, "timeout", "timeout (s)", above=0, maximum=3600),
        "seed": _number(values, "seed", "seed", integer=True, minimum=0, required=False) or 0,
    }
    if loop == "open":
        bench["rate"] = _number(values, "rate", "rate (requests/s)", above=0, maximum=100_000)
        arrivals = values.get("arrivals") or ARRIVALS[0]
        if arrivals not in ARRIVALS:
            raise FormError(f"arrivals: choose {' or '.join(ARRIVALS)}, not {arrivals!r}")
        bench["arrivals"] = arrivals
    else:
        bench["users"] = _number(values, "users", "users", integer=True, minimum=1, maximum=10_000)
    distribution = values.get("distribution") or MIXES[0]
    if distribution not in MIXES:
        raise FormError(f"request mix: choose {' or '.join(MIXES)}, not {distribution!r}")
    dates = {}
    for key in ("start", "end"):
        raw = str(values.get(key) or "").strip()
        try:
            dates[key] = dt.date.fromisoformat(raw).isoformat()
        except ValueError:
            raise FormError(f"as-of {key} date: {raw!r} is not a date like 2012-06-01") from None
    if dates["start"] > dates["end"]:
        raise FormError(f"as-of dates: start {dates['start']} is after end {dates['end']}")
    symbols = [s.upper() for s in re.split(r"[\s,;]+", str(values.get("symbols") or "")) if s]
    for s in symbols:
        if not re.fullmatch(r"[A-Z0-9.\-^=]{1,15}", s):
            raise FormError(f"symbols: {s!r} is not a ticker symbol")
    return {
        "bench": bench,
        "mix": {"start": dates["start"], "end": dates["end"], "distribution": distribution,
                "s": float(config.get("bench.zipf_s")), "seed": bench["seed"]},
        "symbols": symbols or None,
        "label": str(values.get("label") or "").strip(),
    }

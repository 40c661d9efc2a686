"""Summarise raw request records: rates, HDR-histogram percentiles, errors by kind."""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from hdrh.histogram import HdrHistogram

#: percentiles reported, as in wrk2's and HdrHistogram's summaries
PERCENTILES = (50.0, 90.0, 99.0, 99.9)
# 1 us .. 1 h at 3 significant digits: a 0.1% error bound on every reported value
_HDR_RANGE = (1, 3_600_000_000, 3)

RECORD_COLUMNS = ("index", "path", "intended", "sent", "end", "status", "error", "latency", "service_time",
                  "warmup", "trace", "cache")  # cache: a stockdag prediction's cache outcomes as JSON ({"prices": "hit", ...})


@dataclass
class Summary:
    """What one benchmark run measured (the ``--json`` output).

    ``latency_ms`` is counted from each request's *intended* send time (open
    loop; in closed loop intended and actual send times coincide) and covers
    successful responses (status < 400); every other outcome is in ``errors``.
    ``latency_all_ms`` covers every measured request: a failed one counts with
    the time it took (a timeout at least the timeout), a ``cancelled`` one
    (stopped while in flight) with the time it had waited, so failures cannot
    make the percentiles look better. ``warnings`` say in words what the
    numbers imply (an overloaded server, percentiles the sample cannot support).
    ``service_ms`` is counted from the actual send time, so the gap between
    the two shows queueing that a closed-loop client would not see.
    """

    url: str
    loop: str
    rate: float | None
    users: int | None
    arrivals: str | None
    duration: float
    warmup: float
    timeout: float
    requests: int
    ok: int
    errors: dict[str, int]
    offered_rate: float
    throughput: float
    latency_ms: dict[str, float]
    service_ms: dict[str, float]
    generator_lag_ms: dict[str, float]
    hdr: str
    started: str = ""
    extra: dict = field(default_factory=dict)
    latency_all_ms: dict[str, float] = field(default_factory=dict)
    hdr_all: str = ""
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def table(self) -> str:
        """Human-readable summary, in the spirit of wrk2's."""
        lines = [
            f"{self.loop} loop against {self.url}: "
            + (f"{self.rate:g} req/s {self.arrivals} arrivals" if self.loop == "open" else f"{self.users} users")
            + f", {self.duration:g} s measured after {self.warmup:g} s warm-up, timeout {self.timeout:g} s",
            f"  requests {self.requests}, ok {self.ok}, errors {sum(self.errors.values())}"
            + (" (" + ", ".join(f"{k} {v}" for k, v in sorted(self.errors.items())) + ")" if self.errors else ""),
            # closed loop offers no rate: what it sent per second is the users' pace, set by the server
            f"  {'offered' if self.loop == 'open' else 'sent'} {self.offered_rate:.1f} req/s, "
            f"achieved throughput {self.throughput:.1f} ok/s",
            f"  latency, ok only (ms, from intended send):      {supported_text(self.latency_ms, self.ok)}",
            f"  latency, all requests (ms, failures included): {supported_text(self.latency_all_ms, self.requests)}",
            f"  service time, ok only (ms, from actual send):  {supported_text(self.service_ms, self.ok)}",
        ]
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def min_samples(q: float) -> int:
    """The smallest sample whose q-th percentile is not simply its maximum: 100 / (100 - q) values.

    Below that many values the top ``100 - q`` percent holds less than one value, so the "p90" of 6
    requests is their max under another name (p50 needs 2, p90 10, p99 100, p99.9 1000).
    """
    return int(round(100 / (100 - q))) if q < 100 else 10**18


#: label -> the smallest sample that supports it (:func:`min_samples` of each reported percentile)
MIN_SAMPLES = {f"p{q:g}": min_samples(q) for q in PERCENTILES}


def percentile_label(n: int, q: float) -> str:
    """What the q-th percentile of ``n`` values is called: ``p90``, or ``max of 6`` when ``n`` cannot support it.

    The one rule for every table of percentiles (the bench summary, the reports, the web app).
    """
    return f"p{q:g}" if n >= min_samples(q) else f"max of {n}"


def supported(pcts: dict[str, float], n: int) -> dict[str, float]:
    """The percentiles a sample of ``n`` supports (:func:`min_samples`: p90 needs 10, p99 100); max and mean stay."""
    return {k: v for k, v in pcts.items() if n >= MIN_SAMPLES.get(k, 0)}


def supported_text(pcts: dict[str, float], n: int) -> str:
    """``p50 .. p90 .. max of 37 ..``: percentiles only where the sample supports them."""
    if not pcts or n == 0:
        return "none"
    keep = supported(pcts, n)
    parts = [f"{k} {v:.2f}" for k, v in keep.items() if k not in ("max", "mean")]
    parts.append(f"max of {n} {keep['max']:.2f}" if len(keep) < len(pcts) else f"max {keep['max']:.2f}")
    parts.append(f"mean {keep['mean']:.2f}")
    return "  ".join(parts)


#: open loop: a server that keeps up answers about what is offered; below this fraction it did not keep up.
#: (A short run of a server that keeps up loses latency / duration of the ratio to the drain of its last request.)
OVERLOADED_BELOW = 0.8
#: open loop: latency from intended send that grows this many times from the run's first third to its last third
#: is a queue building up, however the ratio reads
LATENCY_GROWTH = 2.0


def overloaded_warning(ok: pd.DataFrame, *, offered: float, throughput: float) -> list[str]:
    """Plain words when an open-loop run's own numbers say the server did not keep up with the offered rate.

    Two signs, either enough: the achieved throughput below :data:`OVERLOADED_BELOW` of the offered rate,
    or the latency of successful requests growing :data:`LATENCY_GROWTH` times over the run (a queue).
    """
    if offered <= 0 or len(ok) == 0:
        return []
    signs = []
    ratio = throughput / offered
    if ratio < OVERLOADED_BELOW:
        signs.append(f"it answered {throughput:.2f} of the {offered:.2f} req/s offered ({ratio:.0%})")
    by_time = ok.sort_values("intended")["latency"].astype(float).to_numpy()
    third = len(by_time) // 3
    if third >= 2:
        early, late = float(np.median(by_time[:third])), float(np.median(by_time[-third:]))
        if early > 0 and late >= LATENCY_GROWTH * early:
            signs.append(f"latency grew from {early:.2f} s to {late:.2f} s over the run (medians of its first "
                         f"and last {third} requests)")
    if not signs:
        return []
    suggest = 0.8 * throughput if throughput > 0 else offered / 4
    suggest = float(f"{suggest:.1g}") if suggest < 1 else round(suggest, 1)
    return [f"overloaded: {' and '.join(signs)}; the offered rate exceeds what this server sustains, so its "
            f"latencies measure a queue, not the service; try --rate {suggest:g}"]


#: error kinds that say the server did not keep up (rather than that a request was wrong)
OVERLOAD_KINDS = ("timeout", "http_503", "http_504")


def overload_warnings(*, loop: str, rate: float | None, requests: int, ok: int, errors: dict[str, int],
                      throughput: float) -> list[str]:
    """Plain words when most requests failed because the server did not keep up."""
    over = sum(errors.get(k, 0) for k in OVERLOAD_KINDS)
    if not requests or over == 0 or over < 0.1 * requests:
        return []
    what = ", ".join(f"{errors[k]} {'timed out' if k == 'timeout' else 'answered ' + k[5:]}"
                     for k in OVERLOAD_KINDS if errors.get(k))
    if loop == "open" and rate:
        suggest = 0.8 * throughput if throughput > 0 else rate / 4
        suggest = float(f"{suggest:.1g}") if suggest < 1 else round(suggest, 1)
        return [f"{what} of {requests}: the offered rate ({rate:g} req/s) exceeds what the server answers "
                f"({throughput:.2f} ok/s); try --rate {suggest:g}, or a longer --timeout"]
    return [f"{what} of {requests}: the server does not answer this many users in time; try fewer --users, "
            "or a longer --timeout"]


def histogram(seconds) -> HdrHistogram:
    """An HDR histogram of latencies given in seconds (recorded in microseconds)."""
    h = HdrHistogram(*_HDR_RANGE)
    for s in seconds:
        h.record_value(min(max(int(round(s * 1e6)), 1), _HDR_RANGE[1]))
    return h


def percentiles(h: HdrHistogram) -> dict[str, float]:
    """p50/p90/p99/p99.9/max/mean of a microsecond histogram, in milliseconds."""
    if h.get_total_count() == 0:
        return {}
    out = {f"p{p:g}": h.get_value_at_percentile(p) / 1e3 for p in PERCENTILES}
    out["max"] = h.get_max_value() / 1e3
    out["mean"] = mean(h) / 1e3
    return out


def mean(h: HdrHistogram) -> float:
    """``h.get_mean_value()``, to the last bit, from the non-empty buckets only.

    hdrh's own walks every one of the histogram's ~23,500 buckets in Python
    (~20 ms); the simulator summarises thousands of runs, and the web app one
    a second. Each bucket counts at its median equivalent value, as in hdrh.
    """
    counts = np.ctypeslib.as_array(h.counts)
    total = 0
    for i in np.flatnonzero(counts).tolist():
        v = h.get_value_from_index(i)
        low, high = h.get_lowest_equivalent_value(v), h.get_highest_equivalent_value(v)
        total += int(counts[i]) * (low + ((high - low + 1) >> 1))
    return float(total) / h.get_total_count() if h.get_total_count() else 0.0


def summarize(records: pd.DataFrame, *, url: str, loop: str, rate: float | None, users: int | None,
              arrivals: str | None, duration: float, warmup: float, timeout: float, started: str = "") -> Summary:
    """Summarise the measured (non-warm-up) records of one run.

    ``duration`` is the measured window in seconds: achieved throughput is the
    number of successful measured requests over the time from the end of the
    warm-up to the end of the window or the last measured response, whichever
    is later (so a light load is not over-counted by a short span, and a
    saturated server is charged for the backlog it drains after the window).
    """
    m = records[~records["warmup"].astype(bool)]
    errors_col = m["error"].fillna("")
    ok_mask = errors_col == ""
    ok = m[ok_mask]
    h = histogram(ok["latency"])
    h_all = histogram(all_latencies(m, timeout))
    errors = Counter(errors_col[~ok_mask])
    span = max(float(m["end"].max()), warmup + duration) - warmup if len(m) else 0.0
    throughput = len(ok) / span if span else 0.0
    warnings = overload_warnings(loop=loop, rate=rate, requests=len(m), ok=len(ok), errors=dict(errors),
                                 throughput=throughput)
    if loop == "open":
        warnings += overloaded_warning(ok, offered=len(m) / duration if duration > 0 else 0.0, throughput=throughput)
    if 0 < len(m) < MIN_SAMPLES["p99"]:
        warnings.append(f"{len(m)} measured requests: p99 needs at least {MIN_SAMPLES['p99']}, so the tail is "
                        f"given as the max of {len(m)}")
    return Summary(
        url=url, loop=loop, rate=rate, users=users, arrivals=arrivals, duration=duration, warmup=warmup,
        timeout=timeout, requests=len(m), ok=len(ok), errors=dict(errors),
        offered_rate=len(m) / duration if duration > 0 else 0.0,
        throughput=throughput,
        latency_ms=percentiles(h),
        service_ms=percentiles(histogram(ok["service_time"])),
        generator_lag_ms=percentiles(histogram((m["sent"] - m["intended"]).clip(lower=0))),
        hdr=h.encode().decode() if h.get_total_count() else "",
        started=started,
        latency_all_ms=percentiles(h_all),
        hdr_all=h_all.encode().decode() if h_all.get_total_count() else "",
        warnings=warnings,
    )


def all_latencies(m: pd.DataFrame, timeout: float):
    """Every request's latency in seconds: failures with the time they took, a timeout at least the timeout."""
    lat = m["latency"].astype(float)
    timed_out = m["error"].fillna("") == "timeout"
    return lat.where(~timed_out, lat.clip(lower=timeout))


def hit_rates(records: pd.DataFrame) -> dict[str, float]:
    """Share of successful requests whose retriever's answer came from the cache, per retriever (``prices``,
    ``news``); empty for records without cache outcomes (runs from before they were recorded)."""
    if "cache" not in records:
        return {}
    outcomes = [json.loads(c) for c in records.loc[records["status"] == 200, "cache"].dropna()]
    names = list(dict.fromkeys(k for o in outcomes for k in o))  # the response's order: prices, news
    return {k: sum(o.get(k) == "hit" for o in outcomes) / len(outcomes) for k in names}

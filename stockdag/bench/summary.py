"""Summarise raw request records: rates, HDR-histogram percentiles, errors by kind."""
from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field

import pandas as pd
from hdrh.histogram import HdrHistogram

#: percentiles reported, as in wrk2's and HdrHistogram's summaries
PERCENTILES = (50.0, 90.0, 99.0, 99.9)
# 1 us .. 1 h at 3 significant digits: a 0.1% error bound on every reported value
_HDR_RANGE = (1, 3_600_000_000, 3)

RECORD_COLUMNS = ("index", "path", "intended", "sent", "end", "status", "error", "latency", "service_time",
                  "warmup", "trace")


@dataclass
class Summary:
    """What one benchmark run measured (the ``--json`` output).

    ``latency_ms`` is counted from each request's *intended* send time (open
    loop; in closed loop intended and actual send times coincide) and covers
    successful responses (status < 400); every other outcome is in ``errors``.
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
            f"  offered {self.offered_rate:.1f} req/s, achieved throughput {self.throughput:.1f} ok/s",
            "  latency (ms, from intended send time): " + "  ".join(f"{k} {v:.2f}" for k, v in self.latency_ms.items()),
            "  service time (ms, from actual send):   " + "  ".join(f"{k} {v:.2f}" for k, v in self.service_ms.items()),
        ]
        return "\n".join(lines)


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
    out["mean"] = h.get_mean_value() / 1e3
    return out


def summarize(records: pd.DataFrame, *, url: str, loop: str, rate: float | None, users: int | None,
              arrivals: str | None, duration: float, warmup: float, timeout: float, started: str = "") -> Summary:
    """Summarise the measured (non-warm-up) records of one run.

    ``duration`` is the measured window in seconds: achieved throughput is the
    number of successful measured requests over the time from the end of the
    warm-up to the end of the window or the last measured response, whichever
    is later (so a light load is not over-counted by a short span, and a
    saturated server is charged for the backlog it drains after the window).
    """
    m = records[~records["warmup"]]
    ok_mask = m["error"] == ""
    ok = m[ok_mask]
    h = histogram(ok["latency"])
    errors = Counter(m.loc[~ok_mask, "error"])
    span = max(float(m["end"].max()), warmup + duration) - warmup if len(m) else 0.0
    return Summary(
        url=url, loop=loop, rate=rate, users=users, arrivals=arrivals, duration=duration, warmup=warmup,
        timeout=timeout, requests=len(m), ok=len(ok), errors=dict(errors),
        offered_rate=len(m) / duration if duration > 0 else 0.0,
        throughput=len(ok) / span if span else 0.0,
        latency_ms=percentiles(h),
        service_ms=percentiles(histogram(ok["service_time"])),
        generator_lag_ms=percentiles(histogram((m["sent"] - m["intended"]).clip(lower=0))),
        hdr=h.encode().decode() if h.get_total_count() else "",
        started=started,
    )

"""Live statistics: :class:`LiveStats` consumes a run's records incrementally (what the page plots and
tabulates), with the same HDR histogram and the same rules as :func:`stockdag.lab.bench.summarize`."""
from __future__ import annotations

import json
import math
from collections import Counter

import numpy as np

from ...pipeline.table import order_stage_ids
from ..bench import RECORD_COLUMNS, histogram, percentiles, supported

#: record column positions (rows are tuples in :data:`RECORD_COLUMNS` order)
COL = {name: i for i, name in enumerate(RECORD_COLUMNS)}
#: the percentiles the page's table shows (keys of :func:`stockdag.lab.bench.percentiles`)
TABLE_PERCENTILES = ("p50", "p90", "p99", "max")


def tail_percentiles(names, pct: dict, n: int) -> list[tuple[str, str, float | None, bool]]:
    """``(name, label, value, supported)`` of the percentiles ``names`` of a sample of ``n``: the one rule for
    every table of the page (the live table and the comparison of runs).

    A percentile the sample does not support (:func:`stockdag.lab.bench.supported`: no p99 below 100
    values, where it is the max) has value None and ``supported`` False, and the max is then labelled
    ``max of n``, as in the report. An empty ``pct`` (no request yet): every value None, every one supported.
    """
    if not pct:
        return [(p, p, None, True) for p in names]
    keep = supported({p: pct.get(p) for p in names}, n)
    cut = len(keep) < len(names)
    return [(p, f"max of {n}" if p == "max" and cut else p, keep.get(p), p in keep) for p in names]


STATUS_COLORS = {"2xx": "#2ca02c", "3xx": "#1f77b4", "4xx": "#ff7f0e", "5xx": "#d62728", "none": "#444444"}


def outcome(status: int, error: str) -> tuple[str, str]:
    """(legend label, colour) of one request: its HTTP status, or the error kind when there was no response."""
    if not status:
        return (error or "no response"), STATUS_COLORS["none"]
    cls = f"{int(status) // 100}xx"
    return str(int(status)), STATUS_COLORS.get(cls, STATUS_COLORS["none"])


def parse_trace(trace) -> list[dict]:
    """The stage records of one response's trace (``[]`` when it has none)."""
    if trace is None or (isinstance(trace, float) and math.isnan(trace)) or trace == "":
        return []
    items = json.loads(trace) if isinstance(trace, str) else trace
    return [t for t in items or () if isinstance(t, dict) and "id" in t]


class LiveStats:
    """Running statistics of one run's records, fed incrementally with :meth:`add`.

    Counts, errors and percentiles cover the measured requests (not the
    warm-up), as :func:`stockdag.lab.bench.summarize` does, so the live table ends
    equal to the run's summary. Percentiles come from the same HDR histogram.
    """

    def __init__(self, warmup: float = 0.0, bin_seconds: float = 1.0):
        self.warmup = warmup
        self.bin = bin_seconds
        self.seen = 0
        self.requests = 0
        self.ok = 0
        self.errors: Counter[str] = Counter()
        self.statuses: Counter[str] = Counter()
        self.ok_latencies: list[float] = []
        self._hdr = histogram(())
        self._hdr_all = histogram(())  # every measured request: failures and stopped ones too
        self._offered: Counter[int] = Counter()
        self._achieved: Counter[int] = Counter()
        self._stage_sum: dict[str, float] = {}
        self._stage_n: Counter[str] = Counter()
        self._stage_name: dict[str, str] = {}
        self.last_trace = None
        self.last_trace_index: int | None = None

    def add(self, rows: list[tuple]) -> dict[str, list]:
        """Take in new rows; return the columns of the points to stream to the latency-over-time plot."""
        out = {"t": [], "latency_ms": [], "outcome": [], "color": [], "index": [], "warmup": []}
        for row in rows:
            i, intended, end = row[COL["index"]], row[COL["intended"]], row[COL["end"]]
            status, error, latency = row[COL["status"]], row[COL["error"]], row[COL["latency"]]
            warm = bool(row[COL["warmup"]])
            label, color = outcome(status, error)
            out["t"].append(float(intended))
            out["latency_ms"].append(1e3 * float(latency))
            out["outcome"].append(label)
            out["color"].append(color)
            out["index"].append(int(i))
            out["warmup"].append(warm)
            self._offered[int(intended // self.bin)] += 1
            if warm:
                continue
            self.requests += 1
            self.statuses[label] += 1
            self._hdr_all.record_value(min(max(int(round(latency * 1e6)), 1), 3_600_000_000))
            if error:
                self.errors[error] += 1
                continue
            self.ok += 1
            self._achieved[int(end // self.bin)] += 1
            self.ok_latencies.append(float(latency))
            self._hdr.record_value(min(max(int(round(latency * 1e6)), 1), 3_600_000_000))
            trace = row[COL["trace"]]
            if trace:
                for t in parse_trace(trace):
                    sid = t["id"]
                    self._stage_sum[sid] = self._stage_sum.get(sid, 0.0) + float(t["end"]) - float(t["start"])
                    self._stage_n[sid] += 1
                    self._stage_name[sid] = t.get("stage", "")
                self.last_trace, self.last_trace_index = trace, int(i)
        self.seen += len(rows)
        return out

    def percentiles(self) -> dict[str, float]:
        """p50/p90/p99/p99.9/max/mean in ms of the successful measured requests (HDR, as the summary)."""
        return percentiles(self._hdr)

    def percentiles_all(self) -> dict[str, float]:
        """The same over every measured request (a failure with the time it took), as ``summary.latency_all_ms``."""
        return percentiles(self._hdr_all)

    def histogram(self, bins: int | None = None) -> dict[str, list]:
        """Columns of a latency histogram (ms) of the successful measured requests.

        ``bins`` defaults to twice the square root of the count, between 5 and 40.
        """
        if not self.ok_latencies:
            return {"left": [], "right": [], "count": []}
        ms = 1e3 * np.asarray(self.ok_latencies)
        if bins is None:
            bins = int(min(40, max(5, 2 * math.sqrt(len(ms)))))
        hi = float(np.percentile(ms, 99.5)) if len(ms) > 50 else float(ms.max())
        lo = float(ms.min())
        if hi <= lo:
            hi = lo + 1.0
        counts, edges = np.histogram(np.clip(ms, lo, hi), bins=bins, range=(lo, hi))
        return {"left": edges[:-1].tolist(), "right": edges[1:].tolist(), "count": counts.tolist()}

    def throughput(self, until: float | None = None) -> dict[str, list]:
        """Columns of offered (by intended send time) and achieved (ok responses by end time) requests/s per bin.

        ``until`` (seconds since the start) drops the bin still being filled.
        """
        keys = set(self._offered) | set(self._achieved)
        if not keys:
            return {"t": [], "offered": [], "achieved": []}
        last = max(keys) if until is None else min(max(keys), int(until // self.bin) - 1)
        ts = list(range(0, last + 1))
        return {"t": [(k + 0.5) * self.bin for k in ts],
                "offered": [self._offered.get(k, 0) / self.bin for k in ts],
                "achieved": [self._achieved.get(k, 0) / self.bin for k in ts]}

    def stage_means(self) -> dict[str, list]:
        """Columns of the mean time (ms) per stage over the traced successful requests, in their pipeline's table order."""
        ids = order_stage_ids(self._stage_n)
        return {"id": ids, "stage": [self._stage_name.get(s, "") for s in ids],
                "ms": [1e3 * self._stage_sum[s] / self._stage_n[s] for s in ids],
                "n": [self._stage_n[s] for s in ids]}

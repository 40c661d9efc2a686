"""Chart helpers: the columns the page's charts draw, from one trace or a stored run's records."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .stats import parse_trace


def gantt(trace) -> dict[str, list]:
    """Columns of a Gantt chart of one request: stage id, name, worker, start/end in ms from its first stage."""
    items = parse_trace(trace)
    if not items:
        return {"id": [], "stage": [], "worker": [], "left": [], "right": [], "ms": []}
    t0 = min(float(t["start"]) for t in items)
    items = sorted(items, key=lambda t: (float(t["start"]), t["id"]))
    return {
        "id": [t["id"] for t in items],
        "stage": [t.get("stage", "") for t in items],
        "worker": [str(t.get("worker", "")) for t in items],
        "left": [1e3 * (float(t["start"]) - t0) for t in items],
        "right": [1e3 * (float(t["end"]) - t0) for t in items],
        "ms": [1e3 * (float(t["end"]) - float(t["start"])) for t in items],
    }


def latency_cdf(records: pd.DataFrame, points: int = 400) -> tuple[list[float], list[float]]:
    """(latency ms, percentile) of the successful measured requests, at most ``points`` points."""
    m = records[~records["warmup"].astype(bool)]
    ms = np.sort(1e3 * m.loc[m["error"].fillna("") == "", "latency"].to_numpy(dtype=float))
    if not len(ms):
        return [], []
    pct = 100.0 * np.arange(1, len(ms) + 1) / len(ms)
    if len(ms) > points:
        pick = np.unique(np.linspace(0, len(ms) - 1, points).round().astype(int))
        ms, pct = ms[pick], pct[pick]
    return ms.tolist(), pct.tolist()


def throughput_series(records: pd.DataFrame, bin_seconds: float = 1.0) -> tuple[list[float], list[float]]:
    """(t, ok responses/s) per bin of the measured requests' end times."""
    m = records[~records["warmup"].astype(bool)]
    ends = m.loc[m["error"].fillna("") == "", "end"].to_numpy(dtype=float)
    if not len(ends):
        return [], []
    counts = np.bincount((ends // bin_seconds).astype(int))
    return ((np.arange(len(counts)) + 0.5) * bin_seconds).tolist(), (counts / bin_seconds).tolist()

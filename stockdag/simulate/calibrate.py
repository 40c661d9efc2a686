"""Calibration: the simulator's inputs fitted from a measured run folder.

Only the run's **centralized** and **1-worker distributed** points are used
(the 2-worker strategies, replicated points and other clusters are what the
model must then predict):

* stage costs: every traced request of those points (each a vector of 12
  stage durations; the simulator draws whole vectors);
* ``central_request``: the median of service time minus the traced span of a
  centralized request, at points loaded below half the server's capacity
  (so no queueing is counted as overhead);
* ``request``: the same for 1-worker distributed requests (client, graph
  submission and planning, result);
* ``task``: the median gap between two tasks run back to back on the one
  worker when the second was already ready (the scheduler's and worker's
  per-task bookkeeping);
* ``hop``: the median gap when the second task became ready only because the
  first finished (a round trip through the scheduler), minus ``task``.

A run without 1-worker points (e.g. an emulated-cluster run) takes the
distributed overheads from the newest run beside it, in the same results
folder and profile, that has them, and says which. Output sizes are measured
by running one request's stages in this process and pickling each stage's
output (what Dask would send), since traces do not record sizes.

The calibration is stored as ``<run>/simulate/calibration.json``.
"""
from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pandas as pd

from ..errors import StockdagError
from .model import STAGE_IDS, Costs, Overheads

FILE = os.path.join("simulate", "calibration.json")


class CalibrationError(StockdagError):
    """A run folder cannot be calibrated from (missing, or no centralized points)."""

    http_status = 422


def read_config(folder: str) -> dict:
    path = os.path.join(folder, "config.json")
    if not os.path.exists(path):
        raise CalibrationError(f"{folder} is not a run folder (no config.json)")
    with open(path) as f:
        return json.load(f)


def points(folder: str) -> list[tuple[dict, pd.DataFrame]]:
    """Every measured point of a run: (its metadata, its raw records)."""
    out = []
    pdir = os.path.join(folder, "points")
    if not os.path.isdir(pdir):
        raise CalibrationError(f"{folder} has no points/ folder")
    for name in sorted(os.listdir(pdir)):
        if name.endswith(".json"):
            with open(os.path.join(pdir, name)) as f:
                meta = json.load(f)
            records = os.path.join(pdir, meta["point"] + ".parquet")
            if not os.path.exists(records):
                raise CalibrationError(f"{folder}: point {meta['point']} has no records (points/{meta['point']}.parquet is missing)")
            out.append((meta, pd.read_parquet(records)))
    return out


def traces(records: pd.DataFrame) -> list[tuple[dict, float]]:
    """(stage id -> trace entry, service time) of every successful traced request of the default C1-C12 table.

    The simulator models that table only: a request of another pipeline spec (more models, C13-C16) spent
    part of its service time in stages the model does not have, so its trace would bias the calibration.
    """
    out = []
    ok = records[(records["status"] == 200) & records["trace"].notna() & (records["trace"] != "")]
    for tr, svc in zip(ok["trace"], ok["service_time"]):
        entries = {e["id"]: e for e in json.loads(tr)}
        if entries.keys() == set(STAGE_IDS):
            out.append((entries, float(svc)))
    return out


def is_one_worker(meta: dict) -> bool:
    c = meta["config"]
    return c["mode"] == "distributed" and int(c["workers"]) == 1


def _span(entries: dict) -> float:
    return max(e["end"] for e in entries.values()) - min(e["start"] for e in entries.values())


def _light(meta: dict, tr: list) -> bool:
    """Is the point loaded below half of one server's capacity (no queueing to mistake for overhead)?"""
    if not tr or meta["loop"] != "open":
        return meta["loop"] == "closed" and int(meta["load"]) == 1
    mean = float(np.mean([_span(e) for e, _ in tr]))
    return float(meta["load"]) * mean < 0.5


def _gaps(tr: list) -> tuple[list[float], list[float]]:
    """1-worker traces -> (back-to-back gaps of ready tasks, gaps after a dependency round trip)."""
    from ..pipeline import STAGES_BY_ID

    task, hop = [], []
    for entries, _ in tr:
        order = sorted(entries.values(), key=lambda e: e["start"])
        for prev, cur in zip(order, order[1:]):
            gap = cur["start"] - prev["end"]
            deps = STAGES_BY_ID[cur["id"]].inputs
            last_dep_end = max((entries[d]["end"] for d in deps), default=-np.inf)
            if last_dep_end >= prev["end"] - 1e-9:  # became ready when the previous task finished
                hop.append(gap)
            else:
                task.append(gap)
    return task, hop


def measure_sizes(profile: str, symbol: str = "AAPL", as_of: str = "2012-06-01") -> dict[str, float]:
    """Pickled size in bytes of each stage's output (a Traced value), from one request run in this process."""
    from ..pipeline import STAGES
    from ..request import parse_request
    from ..trace import run_traced

    req = parse_request(symbol, as_of, profile=profile)
    done, sizes = {}, {}
    for st in STAGES:
        args = [done[i] for i in st.inputs] if st.inputs else [req]
        done[st.id] = run_traced(st.id, st.name, st.func, *args)
        sizes[st.id] = float(len(pickle.dumps(done[st.id], protocol=5)))
    return sizes


def _median(values, what: str, folder: str) -> float:
    if not values:
        raise CalibrationError(f"{folder}: no light-load requests to fit {what} from")
    return float(np.median(values))


def _fit_distributed(folder: str, pts) -> dict | None:
    one = [(m, traces(r)) for m, r in pts if is_one_worker(m)]
    one = [(m, t) for m, t in one if t]
    if not one:
        return None
    light = [t for m, t in one if _light(m, t)] or [min(one, key=lambda mt: mt[0]["load"])[1]]
    over = [svc - _span(e) for t in light for e, svc in t]
    task, hop = _gaps([x for t in light for x in t])
    task_s = _median(task, "the per-task overhead", folder)
    return {
        "request": _median(over, "the distributed per-request overhead", folder),
        "task": task_s,
        "hop": max(_median(hop, "the per-hop latency", folder) - task_s, 0.0),
        "points": [m["point"] for m, _ in one],
    }


def _sibling_with_one_worker(folder: str, profile: str) -> tuple[str, dict] | None:
    parent = os.path.dirname(os.path.abspath(folder))
    for name in sorted(os.listdir(parent), reverse=True):
        other = os.path.join(parent, name)
        if os.path.abspath(other) == os.path.abspath(folder) or not os.path.exists(os.path.join(other, "config.json")):
            continue
        if read_config(other).get("params", {}).get("profile") != profile:
            continue
        fit = _fit_distributed(other, points(other))
        if fit is not None:
            return name, fit
    return None


def fit(folder: str, *, sizes: dict[str, float] | None = None) -> dict:
    """The calibration of a run folder as plain data (see the module docstring)."""
    cfg = read_config(folder)
    profile = cfg.get("params", {}).get("profile", "refit")
    pts = points(folder)
    used = [(m, traces(r)) for m, r in pts if m["config"]["mode"] == "centralized" or is_one_worker(m)]
    central = [(m, t) for m, t in used if m["config"]["mode"] == "centralized" and t]
    if not central:
        raise CalibrationError(f"{folder}: no centralized points with traces to calibrate from")
    samples = [[e[s]["end"] - e[s]["start"] for s in STAGE_IDS] for _, t in used for e, _ in t]
    light = [t for m, t in central if _light(m, t)] or [min(central, key=lambda mt: mt[0]["load"])[1]]
    central_over = _median([svc - _span(e) for t in light for e, svc in t], "the centralized overhead", folder)
    dist = _fit_distributed(folder, pts)
    source = os.path.basename(os.path.abspath(folder))
    if dist is None:
        sibling = _sibling_with_one_worker(folder, profile)
        if sibling is None:
            raise CalibrationError(f"{folder}: no 1-worker distributed points here or in a sibling run with profile "
                                   f"{profile!r}: the scheduler overheads cannot be fitted")
        source, dist = sibling
        dist["points"] = [f"{source}/{p}" for p in dist["points"]]  # not points of this run
    machine = cfg.get("machine", {})
    return {
        "run": os.path.basename(os.path.abspath(folder)),
        "profile": profile,
        "fitted_on": [m["point"] for m, _ in central] + dist["points"],
        "distributed_overheads_from": source,
        "overheads": Overheads(central_request=max(central_over, 0.0), request=max(dist["request"], 0.0),
                               hop=dist["hop"], task=max(dist["task"], 0.0)).to_dict(),
        "stages": list(STAGE_IDS),
        "samples": samples,
        "nbytes": sizes if sizes is not None else measure_sizes(profile),
        "nbytes_source": "given" if sizes is not None else "pickled outputs of one request run in-process",
        "machine": {"cores": machine.get("cores"), "parallel_capacity": machine.get("parallel_capacity")},
    }


def calibrate(folder: str, **kwargs) -> str:
    """Fit and store ``<folder>/simulate/calibration.json``; return its path."""
    cal = fit(folder, **kwargs)
    path = os.path.join(folder, FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(cal, f, indent=1)
    return path


def load(folder: str) -> dict:
    """The stored calibration of a run (calibrating first if there is none)."""
    path = os.path.join(folder, FILE)
    if not os.path.exists(path):
        calibrate(folder)
    with open(path) as f:
        return json.load(f)


def inputs(cal: dict) -> tuple[Costs, Overheads]:
    """The simulator's inputs from a calibration."""
    if list(cal["stages"]) != list(STAGE_IDS):
        raise CalibrationError("the calibration was made for another stage table; calibrate again")
    costs = Costs(np.asarray(cal["samples"], dtype=float), {k: float(v) for k, v in cal["nbytes"].items()},
                  cal.get("profile", "refit"))
    return costs, Overheads(**cal["overheads"])

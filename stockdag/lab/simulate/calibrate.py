"""Calibration: the simulator's inputs fitted from a measured run folder.

Only the run's **centralized** and **1-worker distributed** points are used
(the 2-worker strategies, replicated points and other clusters are what the
model must then predict; of several centralized configurations, e.g. on a fast
and a slow testbed machine, only the one the run lists first):

* stage costs: every traced request of those points (each a vector of 12
  stage durations; the simulator draws whole vectors), in seconds of the
  machine the centralized points ran on, whose CPUs are ``speed``
  (:func:`~.clusters.server_speed`: a testbed's quarter-core server machine
  gives 0.25, this host 1.0): a worker's speed is its CPUs over ``speed``, so
  costs measured on a quarter-core machine are not slowed again on one (the
  1-worker points' traces are pooled as measured: their worker is taken to be
  that machine's equal, as on a testbed of equal machines);
* ``central_request``: the median of service time minus the traced span of a
  centralized request, at points loaded below half the server's capacity
  (so no queueing is counted as overhead);
* ``request``: the same for 1-worker distributed requests (client, graph
  submission and planning, result), minus one ``task`` (the first task's
  pass through the scheduler, which the model charges on its own);
* ``task``: the median gap between two tasks run back to back on the one
  worker when the second was already ready (the scheduler's and worker's
  per-task bookkeeping);
* ``hop``: the median gap when the second task became ready only because the
  first finished (a round trip through the scheduler), minus ``task``.

Gaps are read between *tasks*: each point ran at a granularity (its
configuration's, else the run's ``stockdag.pipeline.granularity``; ``stage``
for runs from before the option), resolved as the executor resolves it for
that cluster, and two stages fused into one task have no scheduler between
them. A 1-worker point at ``auto`` runs each request as one fused task, so it
shows the per-request overhead but no gap between tasks: ``task`` and ``hop``
are then taken from the newest run beside it (same results folder and
profile) whose 1-worker points show them, and the calibration says which. A
run without 1-worker points (e.g. an emulated-cluster run) takes all three
distributed overheads from the newest such run. Output sizes are measured
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

from ...errors import StockdagError
from .model import STAGE_IDS, Costs, Overheads

FILE = os.path.join("simulate", "calibration.json")
#: the calibration's format: a stored calibration of an older version is fitted again on load
#: (2: overheads read between tasks at each point's granularity; 3: ``speed``, the CPUs of the machine the
#: stage costs were measured on)
VERSION = 3


class CalibrationError(StockdagError):
    """A run folder cannot be calibrated from (missing, or no centralized points)."""

    http_status = 422


def read_config(folder: str) -> dict:
    path = os.path.join(folder, "config.json")
    if not os.path.exists(path):
        raise CalibrationError(f"{folder} is not a run folder (no config.json)")
    with open(path) as f:
        return json.load(f)


def modelled(meta: dict, cfg: dict) -> bool:
    """Does the point run the pipeline the simulator models: the default table (its five models, no extra steps)?

    A point of a configuration that names another pipeline spec (the width experiment's) is not modelled.
    """
    from ...pipeline.spec import DEFAULT

    name = meta["config"].get("pipeline")
    if not name:
        return True  # the run's own pipeline: traces() keeps only requests of the default table
    spec = (cfg.get("pipelines") or {}).get(name) or {}
    return tuple(spec.get("models", ())) == tuple(DEFAULT.models) and not spec.get("steps")


def not_modelled(folder: str) -> list[str]:
    """The points of a run that :func:`points` leaves out (another pipeline than the one modelled)."""
    cfg = read_config(folder)
    return [meta["point"] for meta in _metas(folder) if not modelled(meta, cfg)]


def _metas(folder: str) -> list[dict]:
    pdir = os.path.join(folder, "points")
    if not os.path.isdir(pdir):
        raise CalibrationError(f"{folder} has no points/ folder")
    out = []
    for name in sorted(os.listdir(pdir)):
        if name.endswith(".json"):
            with open(os.path.join(pdir, name)) as f:
                out.append(json.load(f))
    return out


def points(folder: str) -> list[tuple[dict, pd.DataFrame]]:
    """Every measured point of a run that the simulator models: (its metadata, its raw records).

    Raises :class:`CalibrationError` when no point runs the modelled pipeline (see :func:`modelled`).
    """
    cfg = read_config(folder)
    out, skipped = [], set()
    pdir = os.path.join(folder, "points")
    for meta in _metas(folder):
        if not modelled(meta, cfg):
            skipped.add(meta["config"].get("pipeline"))
            continue
        records = os.path.join(pdir, meta["point"] + ".parquet")
        if not os.path.exists(records):
            raise CalibrationError(f"{folder}: point {meta['point']} has no records (points/{meta['point']}.parquet is missing)")
        out.append((meta, pd.read_parquet(records)))
    if not out and skipped:
        raise CalibrationError(f"{folder}: no point runs the pipeline the simulator models (the default C1-C12); "
                               f"this run swept {', '.join(sorted(skipped))}")
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


def run_granularity(cfg: dict) -> str:
    """A run's configured ``stockdag.pipeline.granularity`` (``stage`` for runs from before the option)."""
    return str(((cfg.get("stockdag_config") or {}).get("pipeline") or {}).get("granularity") or "stage")


def point_granularity(meta: dict, cfg: dict) -> str:
    """The granularity setting a point ran with: its configuration's, else the run's."""
    return str(meta["config"].get("granularity") or run_granularity(cfg))


def resolved_granularity(meta: dict, cfg: dict, folder: str | None = None) -> str:
    """The granularity a point's requests were built with, as the executor resolves it on that cluster.

    ``load`` depends on the requests in flight: resolved here as if none were
    (``branch`` on several threads); the simulator resolves it per request.
    """
    from ...pipeline.granularity import resolve_granularity
    from .clusters import workers_for

    threads = sum(w.threads for w in workers_for(meta["config"], folder))
    return resolve_granularity(point_granularity(meta, cfg), threads)


def _owners(granularity: str) -> dict[str, tuple[int, frozenset]]:
    """stage id -> (its task's index, the stage ids that task reads from other tasks) at ``granularity``."""
    from ...pipeline.graph import task_groups
    from ...pipeline.table import STAGES

    out = {}
    for k, g in enumerate(task_groups(granularity, STAGES)):
        ids = set(g.ids)
        reads = frozenset(d for st in g.stages for d in st.inputs if d not in ids)
        out.update({sid: (k, reads) for sid in g.ids})
    return out


def _gaps(tr: list, granularity: str = "stage") -> tuple[list[float], list[float]]:
    """1-worker traces -> (back-to-back gaps of ready tasks, gaps after a dependency round trip).

    Only gaps between two *tasks* count: at a coarser ``granularity`` than
    ``stage``, consecutive stages of one fused task have no scheduler between them.
    """
    owner = _owners(granularity)
    task, hop = [], []
    for entries, _ in tr:
        order = sorted(entries.values(), key=lambda e: e["start"])
        for prev, cur in zip(order, order[1:]):
            k, reads = owner[cur["id"]]
            if owner[prev["id"]][0] == k:
                continue  # the same task
            gap = cur["start"] - prev["end"]
            last_dep_end = max((entries[d]["end"] for d in reads), default=-np.inf)
            if last_dep_end >= prev["end"] - 1e-9:  # became ready when the previous task finished
                hop.append(gap)
            else:
                task.append(gap)
    return task, hop


def measured_speeds(folder: str, cal: dict, pts=None) -> dict[str, dict[str, dict]]:
    """The speed of each worker of the run's cluster specs, measured from its traced stage durations.

    A spec's ``cpu_share`` is a nominal speed; a cgroup quota on a shared host
    does not deliver it exactly (throttling periods, the other processes).
    Every stage a worker ran is compared with that stage's mean in the
    calibration (the centralized and 1-worker points: speed 1): the speed is
    the sum of those means over the sum of the measured durations (a
    time-weighted ratio); nominal speeds are relative to the same machine
    (:func:`reference_speed`). Traces name workers by address, not name, so within
    each cluster a configuration ran on (the point's recorded ``cluster_id``:
    a cluster a repeat, each with new addresses) the addresses are ranked by
    measured speed and paired with the spec's workers ranked by nominal speed;
    workers of equal nominal speed cannot be told apart and share one pooled
    figure. A cluster whose traces show a different number of workers than its
    spec is skipped.
    Uses every distributed point of the run on a spec (the cluster is a fact of
    the run, measured, not a parameter tuned per configuration).

    Returns ``{spec: {worker name: {"nominal", "measured", "stages"}}}``
    (stages: how many stage runs the figure rests on); empty when no point
    ran on a spec.
    """
    from .clusters import workers_for

    pts = pts if pts is not None else points(folder)
    base = dict(zip(cal["stages"], np.asarray(cal["samples"], dtype=float).mean(axis=0)))
    by_config: dict[tuple, dict] = {}
    for meta, records in pts:
        c = meta["config"]
        if c["mode"] != "distributed" or not c.get("cluster"):
            continue
        # one cluster instance: the sweep starts a cluster a repeat, with new worker addresses
        instance = ((meta.get("cluster") or {}).get("cluster") or {}).get("cluster_id")
        entry = by_config.setdefault((c["label"], instance), {"config": c, "addresses": {}})
        for entries, _ in traces(records):
            for e in entries.values():
                acc = entry["addresses"].setdefault(e["worker"], [0.0, 0.0, 0])
                acc[0] += base[e["id"]]
                acc[1] += e["end"] - e["start"]
                acc[2] += 1
    classes: dict[tuple, list] = {}  # (spec, nominal speed) -> [sum of base, sum of measured, stage runs, worker names]
    for entry in by_config.values():
        workers = workers_for(entry["config"], folder, reference_speed(cal))
        seen = entry["addresses"]
        if len(seen) != len(workers) or any(acc[1] <= 0 for acc in seen.values()):
            continue
        ranked = sorted(seen.values(), key=lambda acc: acc[0] / acc[1])
        for w, acc in zip(sorted(workers, key=lambda w: w.speed), ranked):
            cls = classes.setdefault((entry["config"]["cluster"], w.speed), [0.0, 0.0, 0, set()])
            cls[0] += acc[0]
            cls[1] += acc[1]
            cls[2] += acc[2]
            cls[3].add(w.name)
    out: dict[str, dict[str, dict]] = {}
    for (spec, nominal), (b, d, n, names) in sorted(classes.items()):
        out.setdefault(spec, {}).update({name: {"nominal": nominal, "measured": b / d, "stages": n} for name in sorted(names)})
    return out


def measure_sizes(profile: str, symbol: str = "AAPL", as_of: str = "2012-06-01") -> dict[str, float]:
    """Pickled size in bytes of each stage's output (a Traced value), from one request run in this process."""
    from ...pipeline.request import parse_request
    from ...pipeline.table import STAGES
    from ...pipeline.trace import run_traced

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


def _fit_distributed(folder: str, pts, cfg: dict) -> dict | None:
    """The distributed overheads from a run's 1-worker points; ``task`` and ``hop`` are None when its
    requests ran as one task each (no gap between tasks to read them from); None without such points."""
    one = [(m, traces(r)) for m, r in pts if is_one_worker(m)]
    one = [(m, t) for m, t in one if t]
    if not one:
        return None
    light = [(m, t) for m, t in one if _light(m, t)] or [min(one, key=lambda mt: mt[0]["load"])]
    task, hop = [], []
    grains = set()
    for m, t in light:
        g = resolved_granularity(m, cfg, folder)
        grains.add(g)
        a, b = _gaps(t, g)
        task += a
        hop += b
    task_s = _median(task, "the per-task overhead", folder) if task else None
    return {
        # service time minus the traced span, less the first task's pass through the scheduler (added by fit())
        "gap": _median([svc - _span(e) for _, t in light for e, svc in t], "the distributed per-request overhead", folder),
        "task": task_s,
        "hop": max(_median(hop, "the per-hop latency", folder) - task_s, 0.0) if hop and task_s is not None else None,
        "granularity": sorted(grains),
        "points": [m["point"] for m, _ in one],
    }


def _sibling_fit(folder: str, profile: str, need: tuple[str, ...]) -> tuple[str, dict] | None:
    """The newest run beside ``folder`` (same profile) whose 1-worker points identify the overheads in ``need``."""
    parent = os.path.dirname(os.path.abspath(folder))
    for name in sorted(os.listdir(parent), reverse=True):
        other = os.path.join(parent, name)
        if os.path.abspath(other) == os.path.abspath(folder) or not os.path.exists(os.path.join(other, "config.json")):
            continue
        other_cfg = read_config(other)
        if other_cfg.get("params", {}).get("profile") != profile:
            continue
        fitted = _fit_distributed(other, points(other), other_cfg)
        if fitted is not None and all(fitted[k] is not None for k in need):
            return name, fitted
    return None


def fit(folder: str, *, sizes: dict[str, float] | None = None) -> dict:
    """The calibration of a run folder as plain data (see the module docstring)."""
    cfg = read_config(folder)
    profile = cfg.get("params", {}).get("profile", "refit")
    pts = points(folder)
    used = [(m, traces(r)) for m, r in pts if m["config"]["mode"] == "centralized" or is_one_worker(m)]
    # one centralized machine: a run with several (a fast and a slow one) is fitted on the one its parameters list
    # first, and predicts the others, rather than pooling stage costs of machines of different speeds
    order = [c["label"] for c in cfg.get("configurations", []) if c.get("mode") == "centralized"]
    seen = {m["config"]["label"] for m, _ in used if m["config"]["mode"] == "centralized"}
    first = next((label for label in order if label in seen), None)
    used = [(m, t) for m, t in used if m["config"]["mode"] != "centralized" or first is None or m["config"]["label"] == first]
    central = [(m, t) for m, t in used if m["config"]["mode"] == "centralized" and t]
    if not central:
        raise CalibrationError(f"{folder}: no centralized points with traces to calibrate from")
    samples = [[e[s]["end"] - e[s]["start"] for s in STAGE_IDS] for _, t in used for e, _ in t]
    light = [t for m, t in central if _light(m, t)] or [min(central, key=lambda mt: mt[0]["load"])[1]]
    central_over = _median([svc - _span(e) for t in light for e, svc in t], "the centralized overhead", folder)
    from .clusters import server_speed

    speed = server_speed(central[0][0]["config"], folder)
    dist = _fit_distributed(folder, pts, cfg)
    source = task_source = os.path.basename(os.path.abspath(folder))
    if dist is None:
        sibling = _sibling_fit(folder, profile, ("task", "hop"))
        if sibling is None:
            raise CalibrationError(f"{folder}: no 1-worker distributed points here or in a sibling run with profile "
                                   f"{profile!r}: the scheduler overheads cannot be fitted")
        source, dist = sibling
        task_source = source
        dist["points"] = [f"{source}/{p}" for p in dist["points"]]  # not points of this run
    elif dist["task"] is None or dist["hop"] is None:
        sibling = _sibling_fit(folder, profile, ("task", "hop"))
        if sibling is None:
            raise CalibrationError(
                f"{folder}: its 1-worker points ran each request as one task ({', '.join(dist['granularity'])}), "
                f"which shows no per-task or per-hop overhead, and no sibling run with profile {profile!r} shows them")
        task_source, other = sibling
        dist.update(task=other["task"], hop=other["hop"])
        dist["points"] += [f"{task_source}/{p}" for p in other["points"]]
    request = dist["gap"] - dist["task"]
    machine = cfg.get("machine", {})
    return {
        "run": os.path.basename(os.path.abspath(folder)),
        "profile": profile,
        "fitted_on": [m["point"] for m, _ in central] + dist["points"],
        "version": VERSION,
        "distributed_overheads_from": source,
        "task_hop_from": task_source,
        "granularity": run_granularity(cfg),
        "speed": speed,
        "overheads": Overheads(central_request=max(central_over, 0.0), request=max(request, 0.0),
                               hop=dist["hop"], task=max(dist["task"], 0.0)).to_dict(),
        "stages": list(STAGE_IDS),
        "samples": samples,
        "nbytes": sizes if sizes is not None else measure_sizes(profile),
        "nbytes_source": "given" if sizes is not None else "pickled outputs of one request run in-process",
        "machine": {"cores": machine.get("cores"), "parallel_capacity": machine.get("parallel_capacity")},
    }


def calibrate(folder: str, out: str | None = None, **kwargs) -> str:
    """Fit ``folder``'s calibration and store it as ``<out>/simulate/calibration.json`` (``out``: the run folder);
    return its path."""
    return _store(out or folder, fit(folder, **kwargs))


def _store(folder: str, cal: dict) -> str:
    path = os.path.join(folder, FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(cal, f, indent=1)
    return path


def load(folder: str, store_in: str | None = None) -> dict:
    """A run's calibration: the one stored in ``store_in`` or in the run, else fitted now.

    A fit made here (none stored, or stored by an older model) is stored in ``store_in``, by default the run
    folder unless git tracks it: a committed run is read, never written (:func:`~..experiments.paths.committed`).
    """
    from ..experiments.paths import committed

    cal = None
    for place in dict.fromkeys(p for p in (store_in, folder) if p):
        path = os.path.join(place, FILE)
        if os.path.exists(path):
            with open(path) as f:
                cal = json.load(f)
            break
    if cal is not None and cal.get("version", 1) >= VERSION:
        return cal
    if cal is not None and (upgraded := _upgraded(folder, cal)) is not None:
        return upgraded
    if cal is None:
        new = fit(folder)
    else:  # fitted by an older model: fit again, keeping its measured output sizes
        new = fit(folder, sizes=cal["nbytes"])
        new["nbytes_source"] = cal.get("nbytes_source", new["nbytes_source"])
    target = store_in or (None if committed(folder) else folder)
    if target:
        _store(target, new)
    return new


def _upgraded(folder: str, cal: dict) -> dict | None:
    """A version-2 calibration as version 3 without a new fit, where the fit would be the same.

    Version 3 only adds ``speed``; a version-2 fit whose centralized points ran on this host (speed 1.0, as
    version 2 took every calibration to be) is that fit. A testbed baseline's (a machine of a fraction of a core)
    is not: version 2 slowed its costs twice, so it is fitted again. ``None``: fit again.
    """
    if cal.get("version") != 2:
        return None
    from .clusters import server_speed

    central = [c for c in read_config(folder).get("configurations", []) if c.get("mode") == "centralized"]
    if not central or server_speed(central[0], folder) != 1.0:
        return None
    return cal | {"version": VERSION, "speed": 1.0}


def reference_speed(cal: dict) -> float:
    """The CPUs of the machine a calibration's stage costs were measured on (a worker's speed is its CPUs over it)."""
    return float(cal.get("speed") or 1.0)


def inputs(cal: dict) -> tuple[Costs, Overheads]:
    """The simulator's inputs from a calibration."""
    if list(cal["stages"]) != list(STAGE_IDS):
        raise CalibrationError("the calibration was made for another stage table; calibrate again")
    costs = Costs(np.asarray(cal["samples"], dtype=float), {k: float(v) for k, v in cal["nbytes"].items()},
                  cal.get("profile", "refit"))
    return costs, Overheads(**cal["overheads"])

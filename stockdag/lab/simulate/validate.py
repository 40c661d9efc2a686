"""Validation: simulate every measured point of a run and compare.

Each point is simulated with the run's own parameters (arrivals, duration,
warm-up, timeout, request mix and seed, configuration and cluster spec) from
the run's calibration, ``repeats`` times with different stage-cost draws; the
median of each summary field is compared with the measurement. As in the
sweep, a configuration's points are simulated in the order they ran, after
the same warm-up requests, on one simulated server whose scheduler and
strategy keep what they learned. Points the
calibration was fitted on are flagged ``fitted``; the others are predictions.
A point is *saturated* when its measured throughput is below 90% of its
offered rate (measured requests over the window): there latency grows with the backlog and the window length, and
the targets on p50 and throughput apply below saturation only.

Workers of a cluster spec run at their *measured* speeds by default
(:func:`~.calibrate.measured_speeds`: a cgroup quota does not deliver its
nominal ``cpu_share`` exactly); ``speeds="nominal"`` keeps the spec's figures. Either is relative to the
machine the stage costs were measured on (:func:`~.calibrate.reference_speed`): on a testbed of quarter-core
machines a quarter-core worker has speed 1.
"""
from __future__ import annotations

import dataclasses
import math
import os

import numpy as np

from ..bench.loadgen import BenchConfig
from ..bench.mix import RequestMix
from . import calibrate as cal_mod
from .clusters import workers_for
from .model import SimConfig, simulate

#: the issue's targets: median |relative error| below saturation
TARGETS = {"p50": 0.10, "throughput": 0.10, "p99": 0.25}
FIELDS = ("p50", "p90", "p99", "throughput")


#: the admission limit the sweep gives its servers (stockdag.lab.experiments.sweep.serving)
SWEEP_MAX_IN_FLIGHT = 1024


#: how validation sets the speed of a spec's workers: measured from the run's traces (default), or the spec's, or
#: the spec's scaled by what the fitted (centralized and 1-worker) points measured (:func:`fitted_speeds`)
SPEEDS = ("measured", "nominal", "fitted")


def sim_config(config: dict, cores: int | None, run_dir: str | None = None, deadline: float | None = None,
               granularity: str = "stage", speeds: dict[str, float] | None = None, reference: float = 1.0) -> SimConfig:
    """The simulated configuration of a measured one; the server's deadline is the sweep's timeout.

    ``granularity`` is the setting the point ran with (:func:`~.calibrate.point_granularity`);
    ``speeds`` (worker name -> speed) replaces the spec's nominal speeds; ``reference`` is the CPUs of the machine
    the stage costs were measured on (:func:`~.calibrate.reference_speed`), which a nominal speed is relative to.
    """
    mode = config["mode"]
    c = {"local": cores} if cores else None
    server = {"cores": c, "max_in_flight": SWEEP_MAX_IN_FLIGHT, "deadline": deadline}
    if mode == "distributed":
        workers = [dataclasses.replace(w, speed=speeds[w.name]) if speeds and w.name in speeds else w
                   for w in workers_for(config, run_dir, reference)]
        return SimConfig("distributed", workers, config.get("strategy") or "dask", granularity=granularity, **server)
    return SimConfig(mode, replicas=int(config.get("workers") or 1), **server)


def bench_config(meta: dict, params: dict) -> tuple[BenchConfig, RequestMix]:
    s = meta["summary"]
    seed = int(params.get("seed", 0)) + int(meta.get("repeat", 0))
    bench = BenchConfig("sim://", rate=s["rate"], users=s["users"], arrivals=s["arrivals"] or "constant",
                        duration=float(s["duration"]), warmup=float(s["warmup"]), timeout=float(s["timeout"]), seed=seed)
    mix = RequestMix(params.get("symbols") or ["AAPL"], params.get("start", "2011-01-03"), params.get("end", "2012-12-31"),
                     params.get("mix", "uniform"), seed=seed)
    return bench, mix


def _fields(summary: dict) -> dict:
    lat = summary["latency_ms"] or {}
    return {"p50": lat.get("p50", math.nan), "p90": lat.get("p90", math.nan), "p99": lat.get("p99", math.nan),
            "throughput": summary["throughput"], "offered": summary["offered_rate"]}


def simulate_configuration(metas: list[dict], params: dict, cal: dict, *, cores=None, repeats: int = 5,
                           run_dir=None, granularity: str = "stage", speeds: dict[str, float] | None = None) -> dict[str, dict]:
    """Median over ``repeats`` simulations of the summary fields of one configuration's points.

    As in the sweep, one server serves all the points of a configuration in
    order after ``2 x workers`` concurrent warm-up requests, so what the
    scheduler and the strategy learned carries from point to point.
    """
    costs, overheads = cal_mod.inputs(cal)
    config = sim_config(metas[0]["config"], cores, run_dir, params.get("timeout"), granularity, speeds,
                        cal_mod.reference_speed(cal))
    runs: dict[str, list[dict]] = {m["point"]: [] for m in metas}
    n_warm = 2 * max(1, int(metas[0]["config"].get("workers") or 1))
    for k in range(repeats):
        carry: dict = {}
        warm = BenchConfig("sim://", users=n_warm, requests=n_warm, timeout=600.0)
        simulate(config, costs, overheads, warm, seed=10_000 + k, carry=carry)
        for meta in metas:
            bench, mix = bench_config(meta, params)
            s = simulate(config, costs, overheads, bench, mix=mix, seed=k, carry=carry).summary
            runs[meta["point"]].append(_fields(s.to_dict()))
    return {p: {f: float(np.nanmedian([r[f] for r in rs])) for f in (*FIELDS, "offered")} for p, rs in runs.items()}


def _sweep_order(metas: list[dict], params: dict) -> list[dict]:
    """A configuration's points in the order the sweep ran them: repeat, then load as listed."""
    loads = [("open", float(r)) for r in (params.get("rates") or [])] + \
            [("closed", float(u)) for u in (params.get("users") or [])]
    rank = {x: i for i, x in enumerate(loads)}
    return sorted(metas, key=lambda m: (m.get("repeat", 0), rank.get((m["loop"], float(m["load"])), len(rank)),
                                        float(m["load"])))


def _err(sim: float, meas: float) -> float | None:
    if meas is None or sim is None or not meas or math.isnan(meas) or math.isnan(sim):
        return None
    return (sim - meas) / meas


def _median_abs(rows: list[dict], field: str) -> float | None:
    v = [abs(r["error"][field]) for r in rows if r["error"][field] is not None]
    return float(np.median(v)) if v else None


def validate(folder: str, *, repeats: int = 5, calibration: dict | None = None, speeds: str = "measured") -> dict:
    """Measured vs simulated for every point of a run, with relative errors and their medians.

    ``speeds`` (:data:`SPEEDS`): the speeds of a cluster spec's workers, measured (default) or nominal.
    """
    if speeds not in SPEEDS:
        raise ValueError(f"unknown speeds {speeds!r}; choose one of: {', '.join(SPEEDS)}")
    cfg = cal_mod.read_config(folder)
    params = cfg.get("params", {})
    cal = calibration or cal_mod.load(folder)
    fitted = set(cal["fitted_on"])
    cores = cfg.get("machine", {}).get("cores")
    from ..bench import summarize

    pts = cal_mod.points(folder)
    measured_speeds = (cal_mod.measured_speeds(folder, cal, pts) if speeds == "measured" else
                       fitted_speeds(folder, cal, pts) if speeds == "fitted" else {})
    by_config: dict[str, list[dict]] = {}
    for meta, _ in pts:
        by_config.setdefault(meta["config"]["label"], []).append(meta)
    sims = {}
    for metas in by_config.values():
        sims.update(simulate_configuration(_sweep_order(metas, params), params, cal, cores=cores, repeats=repeats,
                                           run_dir=folder, granularity=cal_mod.point_granularity(metas[0], cfg),
                                           speeds={name: w["measured"] for name, w in
                                                   measured_speeds.get(metas[0]["config"].get("cluster"), {}).items()}))
    rows = []
    for meta, records in pts:
        s = meta["summary"]
        measured = _fields(summarize(records, url=s["url"], loop=s["loop"], rate=s["rate"], users=s["users"],
                                     arrivals=s["arrivals"], duration=s["duration"], warmup=s["warmup"],
                                     timeout=s["timeout"]).to_dict())
        simulated = dict(sims[meta["point"]])
        # offered = measured requests / window (a short window at a low rate holds fewer than rate x duration)
        offered = measured.pop("offered") if s["loop"] == "open" else None
        simulated.pop("offered", None)
        saturated = offered is not None and measured["throughput"] < 0.9 * offered
        c = meta["config"]
        rows.append({
            "point": meta["point"], "label": c["label"], "mode": c["mode"], "workers": c["workers"],
            "strategy": c.get("strategy"), "cluster": c.get("cluster"), "loop": meta["loop"], "load": meta["load"],
            "granularity": cal_mod.point_granularity(meta, cfg) if c["mode"] == "distributed" else None,
            "fitted": meta["point"] in fitted, "saturated": bool(saturated),
            "measured": measured, "simulated": simulated,
            "error": {f: _err(simulated[f], measured[f]) for f in FIELDS},
        })

    def medians(sel):
        return {"points": len(sel), **{f: _median_abs(sel, f) for f in ("p50", "p99", "throughput")}}

    predicted = [r for r in rows if not r["fitted"] and not r["saturated"]]
    out = {
        "run": os.path.basename(os.path.abspath(folder)),
        "simulated": True,
        "calibration": {k: cal.get(k) for k in ("profile", "fitted_on", "distributed_overheads_from", "task_hop_from",
                                                "overheads", "nbytes_source")},
        "repeats": repeats,
        "not_modelled": cal_mod.not_modelled(folder),  # points of another pipeline than the default C1-C12
        "speeds": {"source": speeds, "workers": measured_speeds},
        "targets": TARGETS,
        "median_abs_error": {
            "predicted_below_saturation": medians(predicted),
            "fitted_below_saturation": medians([r for r in rows if r["fitted"] and not r["saturated"]]),
            "all_below_saturation": medians([r for r in rows if not r["saturated"]]),
            "saturated": medians([r for r in rows if r["saturated"]]),
        },
        "points": rows,
    }
    m = out["median_abs_error"]["predicted_below_saturation"]
    out["meets_targets"] = {f: (m[f] is not None and m[f] <= t) for f, t in TARGETS.items()}
    return out


def fitted_speeds(folder: str, cal: dict, pts) -> dict[str, dict[str, dict]]:
    """Every spec worker's speed from the fitted points only: its nominal speed x what a quota delivered there.

    :func:`~.calibrate.measured_speeds` reads each worker's speed from its own points' traces, so a point
    predicted with it has lent its own stage times to the prediction. Here the ratio measured/nominal comes from
    the 1-worker points the calibration was fitted on (pooled, time-weighted) and scales every worker of every
    spec in the run: what the model knows of a 3-machine point then comes from the 1-machine ones. Without a
    fitted point on a spec the ratio is 1 (the nominal speeds).
    """
    fitted = set(cal["fitted_on"])
    one = cal_mod.measured_speeds(folder, cal, [(m, r) for m, r in pts if m["point"] in fitted])
    base = sum(w["nominal"] * w["stages"] for ws in one.values() for w in ws.values())
    seen = sum(w["measured"] * w["stages"] for ws in one.values() for w in ws.values())
    factor = seen / base if base > 0 else 1.0
    stages = sum(w["stages"] for ws in one.values() for w in ws.values())
    out: dict[str, dict[str, dict]] = {}
    for meta, _ in pts:
        c = meta["config"]
        if c["mode"] != "distributed" or not c.get("cluster") or c["cluster"] in out:
            continue
        out[c["cluster"]] = {w.name: {"nominal": w.speed, "measured": w.speed * factor, "stages": stages}
                             for w in workers_for(c, folder, cal_mod.reference_speed(cal))}
    return out


def machines(row: dict) -> int:
    """How many machines a validated point ran on: its workers (distributed), its processes (replicated), else 1."""
    return int(row.get("workers") or 1) if row["mode"] != "centralized" else 1


def holdout(folder: str, *, repeats: int = 5, speeds: str = "fitted") -> dict:
    """The simulator out of sample: calibrated on the centralized and 1-machine points, every other point predicted.

    Per (cluster, machines) group the median |relative error| of p50 and throughput over its predicted points below
    saturation, against :data:`TARGETS`, and one row per point (measured, simulated, error). ``speeds`` as in
    :func:`validate`; the default ``fitted`` keeps the held-out points' own traces out of the prediction.
    """
    result = validate(folder, repeats=repeats, speeds=speeds)
    leaked = [r["point"] for r in result["points"] if r["fitted"] and machines(r) > 1]
    if leaked:  # the calibration's contract (calibrate.fit): never fitted on a point of more than one machine
        raise cal_mod.CalibrationError(f"{folder}: the calibration was fitted on points of several machines: {leaked[0]}")
    groups: dict[tuple, list[dict]] = {}
    for r in result["points"]:
        if not r["fitted"]:
            where = os.path.splitext(os.path.basename(r["cluster"]))[0] if r.get("cluster") else "local"
            groups.setdefault((machines(r), where, r["mode"]), []).append(r)
    per_n = []
    for (n, where, mode), rows in sorted(groups.items()):
        below = [r for r in rows if not r["saturated"]]
        m = {f: _median_abs(below, f) for f in ("p50", "throughput")}
        per_n.append({"machines": n, "cluster": where, "mode": mode, "points": len(rows), "below_saturation": len(below),
                      "median_abs_error": m,
                      "meets_target": {f: (v is not None and v <= TARGETS[f]) for f, v in m.items()}})
    return {"run": result["run"], "simulated": True, "speeds": speeds, "repeats": repeats,
            "calibrated_on": sorted(result["calibration"]["fitted_on"]), "targets": {f: TARGETS[f] for f in ("p50", "throughput")},
            "per_machines": per_n,
            "points": [{k: r[k] for k in ("point", "label", "mode", "workers", "cluster", "loop", "load", "fitted",
                                          "saturated", "measured", "simulated", "error")} | {"machines": machines(r)}
                       for r in result["points"]]}


#: where :func:`save_holdout` puts the out-of-sample check in a run folder (the REPORT reads it from there)
HOLDOUT_FILE = os.path.join("simulate", "holdout.json")


def save_holdout(folder: str, result: dict) -> str:
    """Write ``result`` of :func:`holdout` into the run folder; return the path."""
    import json

    from ...pipeline.result import finite

    path = os.path.join(folder, HOLDOUT_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(finite(result), f, indent=1, allow_nan=False)
    return path


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:+.0f}%"


def _num(v: float | None, spec: str) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:{spec}}"


def holdout_lines(result: dict) -> list[str]:
    """Markdown of the out-of-sample check: per machines the median errors, then measured vs simulated per point."""
    t = result["targets"]
    out = [f"SIMULATED: the simulator calibrated on this run's centralized and 1-machine points only "
           f"({len(result['calibrated_on'])} points), every other point predicted ({result['repeats']} simulations a "
           f"point, worker speeds: {result['speeds']}). Target: median |error| below saturation <= "
           f"{100 * t['p50']:.0f}% on p50 and {100 * t['throughput']:.0f}% on throughput.", "",
           "| machines | cluster | mode | points (below saturation) | median abs p50 error | median abs throughput error | target |",
           "|---|---|---|---|---|---|---|"]
    for g in result["per_machines"]:
        m, ok = g["median_abs_error"], g["meets_target"]
        verdict = "met" if all(ok.values()) else "missed: " + ", ".join(f for f, v in ok.items() if not v)
        out.append(f"| {g['machines']} | {g['cluster']} | {g['mode']} | {g['points']} ({g['below_saturation']}) | "
                   + " | ".join("n/a" if m[f] is None else f"{100 * m[f]:.1f}%" for f in ("p50", "throughput"))
                   + f" | {verdict} |")
    missed = [g for g in result["per_machines"] if not all(g["meets_target"].values())]
    out += ["", (f"Missed at {', '.join(str(g['machines']) + ' machines (' + g['cluster'] + ')' for g in missed)}: the "
                 "simulator does not predict these points within the target." if missed else
                 "Every group of predicted points is within the target."), "",
            "| point | machines | p50 ms measured | p50 ms simulated | error | req/s measured | req/s simulated | error | note |",
            "|---|---|---|---|---|---|---|---|---|"]
    for r in result["points"]:
        if r["fitted"]:
            continue
        me, si, e = r["measured"], r["simulated"], r["error"]
        out.append(f"| {r['point']} | {r['machines']} | {_num(me['p50'], '.0f')} | {_num(si['p50'], '.0f')} | "
                   f"{_pct(e['p50'])} | {_num(me['throughput'], '.2f')} | {_num(si['throughput'], '.2f')} | "
                   f"{_pct(e['throughput'])} | "
                   f"{'saturated' if r['saturated'] else ''} |")
    return out


def text(result: dict) -> str:
    """A table of measured vs simulated per point, then the median errors."""
    lines = [f"run {result['run']}: measured vs simulated ({result['repeats']} simulations per point; "
             f"fitted on {len(result['calibration']['fitted_on'])} centralized/1-worker points)",
             f"{'point':<52} {'p50 ms meas/sim':>18} {'p99 ms meas/sim':>18} {'thr meas/sim':>14}  note"]
    for r in result["points"]:
        m, s = r["measured"], r["simulated"]
        note = ("fitted " if r["fitted"] else "") + ("saturated" if r["saturated"] else "")
        lines.append(f"{r['point']:<52} {m['p50']:>8.0f}/{s['p50']:<9.0f} {m['p99']:>8.0f}/{s['p99']:<9.0f} "
                     f"{m['throughput']:>6.2f}/{s['throughput']:<7.2f}  {note}")
    for spec, workers in result.get("speeds", {}).get("workers", {}).items():
        lines.append(f"speeds of {spec} (measured from the traces, used instead of the nominal; relative to the machine "
                     "the stage costs were measured on): " + ", ".join(
            f"{name} {w['measured']:.2f} (nominal {w['nominal']:g}, {w['stages']} stage runs)" for name, w in workers.items()))
    if result.get("not_modelled"):
        lines.append(f"not modelled: {len(result['not_modelled'])} points of pipelines other than the default C1-C12 "
                     "(the simulator models that table only)")
    for k, m in result["median_abs_error"].items():
        vals = ", ".join(f"{f} {m[f] * 100:.1f}%" if m[f] is not None else f"{f} n/a" for f in ("p50", "p99", "throughput"))
        lines.append(f"median |error|, {k.replace('_', ' ')} ({m['points']} points): {vals}")
    ok = result["meets_targets"]
    lines.append("targets (predicted points below saturation: p50 <= 10%, throughput <= 10%, p99 <= 25%): "
                 + ", ".join(f"{f} {'met' if v else 'MISSED'}" for f, v in ok.items()))
    return "\n".join(lines)

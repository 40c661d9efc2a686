"""From a run folder to the numbers that answer the question.

Everything here reads only the run folder, so any number (and any chart made
from it) can be rebuilt from the folder alone.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from ...pipeline import bounds
from ...pipeline.bounds import critical_path, width
from ...pipeline.table import spec_for_ids
from ...pipeline.table import stage_table as pipeline_table
from ..bench.summary import MIN_SAMPLES

#: a point whose CPU-speed probe took this much longer than the run's median ran on a slowed machine
SLOW_MACHINE = 1.15


@dataclass
class RunData:
    folder: str
    config: dict
    summary: pd.DataFrame
    records: pd.DataFrame  # measured (non-warm-up) requests of every point, with point metadata
    points: list[dict] = field(default_factory=list)  # each point's recorded metadata (points/*.json)


def load_run(folder: str) -> RunData:
    with open(os.path.join(folder, "config.json")) as f:
        config = json.load(f)
    points_dir = os.path.join(folder, "points")
    frames, rows = [], []
    for name in sorted(os.listdir(points_dir)):
        if not name.endswith(".json"):
            continue
        with open(os.path.join(points_dir, name)) as f:
            meta = json.load(f)
        rec = pd.read_parquet(os.path.join(points_dir, meta["point"] + ".parquet"))
        rec = rec[~rec["warmup"].astype(bool)].copy()
        for k, v in (("point", meta["point"]), ("label", meta["config"]["label"]), ("mode", meta["config"]["mode"]),
                     ("workers", meta["config"]["workers"]), ("strategy", meta["config"]["strategy"]),
                     ("loop", meta["loop"]), ("load", meta["load"]), ("repeat", meta["repeat"]),
                     ("capacity", (meta.get("probe") or {}).get("capacity"))):
            rec[k] = v
        frames.append(rec)
        rows.append(meta)
    from .sweep import summarize_run

    # always from the raw records: summary.csv is an output, never an input; reading a run never changes it
    summary = summarize_run(folder, write=False)
    # keep the sweep's own order of configurations (the parameter file's), not file-name order
    order = {c["label"]: i for i, c in enumerate(config.get("configurations", []))}
    if len(summary):
        summary = summary.assign(_order=summary["label"].map(order).fillna(len(order)))
        summary = summary.sort_values(["_order", "load", "repeat"], kind="stable").drop(columns="_order").reset_index(drop=True)
    records = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return RunData(folder, config, summary, records, rows)


def cluster_kinds(run: RunData) -> set[str]:
    """The kinds of the cluster specs the run's points ran on (``emulated``, ``ec2``...), as each point recorded
    its deployment; empty when every point ran on the embedded LocalCluster or in one process."""
    kinds = set()
    for meta in run.points:
        deployment = (meta.get("cluster") or {}).get("cluster") or {}
        if deployment.get("kind"):
            kinds.add(deployment["kind"])
    return kinds


def pipelines_swept(run: RunData) -> list[str]:
    """The pipeline specs the run's configurations name, in their order (more than one: a width run)."""
    return list(dict.fromkeys(c["pipeline"] for c in run.config.get("configurations", []) if c.get("pipeline")))


def stage_table(records: pd.DataFrame) -> pd.DataFrame:
    """One row per (request, stage) from the server traces: label, id, stage, worker, start, duration."""
    rows = []
    ok = records[(records["status"] == 200) & records["trace"].notna()]
    for idx, r in ok.iterrows():
        trace = json.loads(r["trace"]) if isinstance(r["trace"], str) else r["trace"]
        if not trace:
            continue
        t0 = min(t["start"] for t in trace)
        for t in trace:
            rows.append({"request": idx, "label": r["label"], "mode": r.get("mode"), "load": r["load"],
                         "id": t["id"], "stage": t["stage"],
                         "worker": t["worker"], "start": t["start"] - t0, "duration": t["end"] - t["start"]})
    return pd.DataFrame(rows)


def parallel_width(ids=()) -> int:
    """Most stages that can run at once: the largest layer of the stage DAG of the pipeline of ``ids``
    (the default one when empty), the n of the design's test cases."""
    return width(pipeline_table(spec_for_ids(ids)))


def limits(records: pd.DataFrame, config: dict) -> dict:
    """Physical limits from the measured stage costs (centralized runs when present)."""
    st = stage_table(records)
    if st.empty:
        return {}
    central = central_label(config, st["label"].unique())
    base = st[st["label"] == central] if central else st
    costs = base.groupby("id")["duration"].mean().to_dict()
    cp, path = critical_path(costs)
    work = bounds.work(costs)
    cores = config.get("machine", {}).get("cores") or 1
    capacity = config.get("machine", {}).get("parallel_capacity") or cores
    measured = records.groupby("point")["capacity"].first().dropna() if "capacity" in records else pd.Series([], dtype=float)
    capacity_range = None
    if len(measured):
        # re-measured per block: the bound uses the best the machine showed, so no measured throughput can
        # exceed it merely because the capacity was taken at a slow moment
        capacity_range = (float(measured.min()), float(measured.median()), float(measured.max()))
        capacity = capacity_range[2]
    spec_path = config.get("params", {}).get("cluster")
    if spec_path and os.path.exists(spec_path):
        from ...deploy import load_spec

        spec = load_spec(spec_path)
        shares = [g.cpu_share * g.count for g in spec.worker_groups if g.cpu_share]
        if spec.kind == "emulated" and shares:
            # the distributed workers get only their cgroup quotas (the centralized baseline runs outside them)
            capacity = min(capacity, float(sum(shares)))
    return {
        "stage_costs_s": costs, "total_work_s": work, "critical_path_s": cp, "critical_path": path,
        "cores": cores, "parallel_capacity": capacity, "capacity_range": capacity_range,
        "throughput_bound_rps": capacity / work,  # every core busy with stage work, no overhead
        "latency_speedup_bound": work / cp,  # a request can go no faster than its critical path
    }


def ci95(values) -> tuple[float, float]:
    """Mean and half-width of a 95% t confidence interval (0 with a single value)."""
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    if len(v) == 0:
        return float("nan"), float("nan")
    if len(v) == 1:
        return float(v[0]), 0.0
    return float(v.mean()), float(stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))


def aggregate(summary: pd.DataFrame) -> pd.DataFrame:
    """Mean and 95% CI over repeats of throughput and latency percentiles, per configuration and load."""
    rows = []
    for (label, loop, load), g in summary.groupby(["label", "loop", "load"], sort=False):
        row = {"label": label, "mode": g["mode"].iloc[0], "workers": int(g["workers"].iloc[0]),
               "strategy": g["strategy"].iloc[0], "loop": loop, "load": load, "repeats": len(g)}
        for col in ("offered_rate", "throughput", "p50_ms", "p90_ms", "p99_ms", "max_ms", "errors",
                    "all_p50_ms", "all_p99_ms", "all_max_ms"):
            if col in g:
                row[col], row[col + "_ci"] = ci95(g[col])
        # the smallest sample over the repeats decides whether a p99 can be given at all
        row["n"] = int(g["requests"].min()) if "requests" in g else 0
        row["n_ok"] = int(g["ok"].min()) if "ok" in g else 0
        row["tail_ms"] = row.get("p99_ms") if row["n_ok"] >= MIN_SAMPLES["p99"] else row.get("max_ms")
        row["tail_ci"] = row.get("p99_ms_ci") if row["n_ok"] >= MIN_SAMPLES["p99"] else row.get("max_ms_ci")
        rows.append(row)
    return pd.DataFrame(rows)


def tail_text(p99: float, mx: float, n: int) -> str:
    """``p99 812`` where ``n`` supports a p99 (n >= 100), else ``max of 37: 812`` (a p99 of fewer is the max)."""
    if n >= MIN_SAMPLES["p99"]:
        return f"p99 {p99:.0f}"
    return f"max of {n}: {mx:.0f}"


def drift(summary: pd.DataFrame) -> dict:
    """The CPU-speed probes of a run: their spread, and the points measured on a machine > 15% slower than its median.

    Runs from before the probes existed have none: ``{"probes": 0}``. A testbed run's points also carry
    ``starved_points`` (:func:`starved`).
    """
    if "probe_s" not in summary or summary["probe_s"].isna().all():
        return {"probes": 0, **starved(summary)}
    probe = summary["probe_s"].astype(float)
    med = float(probe.median())
    slow = summary[probe > SLOW_MACHINE * med]
    return {
        "probes": int(probe.notna().sum()), "median_s": med, "min_s": float(probe.min()), "max_s": float(probe.max()),
        "spread": float(probe.max() / probe.min()),
        "slow_points": [{"point": r["point"], "label": r["label"], "load": r["load"], "repeat": int(r["repeat"]),
                         "slower_pct": 100 * (float(r["probe_s"]) / med - 1)} for _, r in slow.iterrows()],
        "capacity": (None if "capacity" not in summary or summary["capacity"].isna().all()
                     else (float(summary["capacity"].min()), float(summary["capacity"].max()))),
        **low_capacity(summary),
        **starved(summary),
    }


def starved(summary: pd.DataFrame) -> dict:
    """The points where a testbed machine was starved: busy, under its quota, the host without idle CPU.

    The rule is :func:`stockdag.deploy.testbed.cpu_usage`'s, applied when the point was measured; each point's
    record holds its counters and the rule's thresholds. ``{}`` for a run without CPU records (another kind).
    """
    if "starved" not in summary or summary["starved"].isna().all():
        return {}
    hit = summary[summary["starved"].fillna("").astype(str) != ""]
    return {"cpu_points": int(summary["starved"].notna().sum()),
            "starved_points": [{"point": r["point"], "label": r["label"], "load": r["load"], "repeat": int(r["repeat"]),
                                "machines": str(r["starved"]).split()} for _, r in hit.iterrows()]}


def saturation(agg: pd.DataFrame) -> pd.DataFrame:
    """Per configuration: best achieved throughput, and the knee (highest offered rate still kept up with)."""
    rows = []
    for label, g in agg.groupby("label", sort=False):
        open_ = g[g["loop"] == "open"].sort_values("load")
        kept = open_[open_["throughput"] >= 0.9 * open_["offered_rate"]]
        low = g.sort_values("load").iloc[0]
        best = g.loc[g["throughput"].idxmax()]
        rows.append({"label": label, "mode": g["mode"].iloc[0], "workers": int(g["workers"].iloc[0]),
                     "strategy": g["strategy"].iloc[0],
                     "max_throughput": float(best["throughput"]), "max_throughput_ci": float(best.get("throughput_ci", 0.0)),
                     "knee_rate": float(kept["load"].max()) if not kept.empty else float("nan"),
                     "p50_low_load_ms": float(low["p50_ms"]), "p50_low_load_ms_ci": float(low.get("p50_ms_ci", 0.0)),
                     "p99_low_load_ms": float(low["p99_ms"]), "max_low_load_ms": float(low["max_ms"]),
                     "n_low_load": int(low.get("n_ok", 0)),
                     "all_p50_low_load_ms": float(low.get("all_p50_ms", np.nan)),
                     "all_tail_low_load_ms": float(low.get("all_p99_ms", np.nan) if low.get("n", 0) >= MIN_SAMPLES["p99"]
                                                   else low.get("all_max_ms", np.nan)),
                     "n_all_low_load": int(low.get("n", 0))})
    return pd.DataFrame(rows)


def width_table(run: RunData) -> pd.DataFrame:
    """Speed-ups by pipeline width, for a run that swept pipelines (``experiments/params/width.yaml``).

    One row per configuration of each pipeline: the pipeline's models and extra steps (from the
    specs recorded in ``config.json``), throughput and latency speed-up over the centralized run of
    the *same* pipeline, and that pipeline's own limits (:func:`limits` on its records only: a wider
    pipeline has another critical path and more work per request). ``flagged`` says whose points were
    measured on a slowed machine or with low parallel capacity (:func:`flagged_labels`: the row's own, its
    baseline's, or empty), ``stage_time_ratio`` the row's median stage time over its baseline's (:func:`compute_tax`).
    """
    cfgs = run.config.get("configurations", [])
    specs = run.config.get("pipelines", {})
    pipe_of = {c["label"]: c.get("pipeline") for c in cfgs}
    sat = saturation(aggregate(run.summary))
    if sat.empty:
        return pd.DataFrame()
    sat["pipeline"] = sat["label"].map(pipe_of)
    flagged = flagged_labels(run.summary)
    stages = stage_table(run.records)
    stage_ms = compute_tax(stages, central_label(run.config, stages["label"].unique()) if len(stages) else None
                           ).set_index("label")["stage_ms"]
    rows = []
    for pipe, g in sat.groupby("pipeline", sort=False):
        base = g[g["mode"] == "centralized"]
        if base.empty:
            continue
        b = base.iloc[0]
        lim = limits(run.records[run.records["label"].map(pipe_of) == pipe], run.config)
        spec = specs.get(pipe, {})
        for _, r in g.iterrows():
            # a ratio is no better than both its points: flagged when either was measured with less of the machine
            why = [w for w, label in (("its own points", r["label"]), ("its baseline's", b["label"]))
                   if label in flagged][: 1 if r["label"] == b["label"] else 2]
            rows.append({
                "pipeline": pipe, "models": len(spec.get("models", [])), "steps": "+".join(spec.get("steps", [])),
                "label": r["label"], "mode": r["mode"], "workers": r["workers"], "strategy": r["strategy"],
                "max_throughput": r["max_throughput"], "p50_low_load_ms": r["p50_low_load_ms"],
                "throughput_speedup": r["max_throughput"] / b["max_throughput"],
                "latency_speedup": b["p50_low_load_ms"] / r["p50_low_load_ms"],
                "critical_path_s": lim.get("critical_path_s"), "total_work_s": lim.get("total_work_s"),
                "latency_speedup_bound": lim.get("latency_speedup_bound"),
                "throughput_speedup_bound": (lim["throughput_bound_rps"] / b["max_throughput"]) if lim else float("nan"),
                "stage_time_ratio": stage_ms.get(r["label"], float("nan")) / stage_ms.get(b["label"], float("nan")),
                "flagged": " and ".join(why),
            })
    return pd.DataFrame(rows)


def flagged_labels(summary: pd.DataFrame) -> set[str]:
    """Configurations with a point measured on a slowed machine (probe), in a block of low parallel capacity, or
    with a starved testbed machine."""
    d = drift(summary)
    return {p["label"] for p in [*d.get("slow_points", []), *d.get("low_capacity_points", []),
                                 *d.get("starved_points", [])]}


def tasks_per_request(run: RunData) -> dict[str, tuple[int, ...]]:
    """The scheduler tasks one request of each distributed configuration was built as, from the run's records.

    Each point records its configuration's granularity, and ``config.json`` the configured one (runs from
    before the option built one task a stage). ``auto`` resolves with the configuration's worker threads (one a
    worker process: the embedded LocalCluster's and the cluster specs'); ``load`` builds one task per request
    while every thread is busy and ``auto``'s otherwise, so it gives both counts.
    """
    from ...pipeline.granularity import resolve_granularity
    from ...pipeline.graph import task_groups
    from ...pipeline.spec import from_dict

    configured = ((run.config.get("stockdag_config") or {}).get("pipeline") or {}).get("granularity") or "stage"
    pipelines = run.config.get("pipelines") or {}
    out: dict[str, tuple[int, ...]] = {}
    for meta in run.points:
        c = meta["config"]
        if c["mode"] != "distributed" or c["label"] in out:
            continue
        spec = from_dict(pipelines[c["pipeline"]]) if c.get("pipeline") in pipelines else spec_for_ids(())
        stages = pipeline_table(spec)
        grain = c.get("granularity") or configured
        threads = int(c.get("workers") or 1)
        built = {resolve_granularity(grain, threads)} | ({"request"} if grain == "load" else set())
        out[c["label"]] = tuple(sorted(len(task_groups(g, stages)) for g in built))
    return out


def in_system_at_lowest_load(agg: pd.DataFrame) -> float | None:
    """Requests in the centralized server at once at its lowest load (throughput x p50, Little's law); None without one.

    Above about one, requests wait for each other and p50 measures the queue more than the pipeline.
    """
    if agg is None or agg.empty:
        return None
    base = agg[agg["mode"] == "centralized"]
    if base.empty:
        return None
    low = base.sort_values("load").iloc[0]
    return float(low["throughput"] * low["p50_ms"] / 1000.0)


def low_capacity(summary: pd.DataFrame) -> dict:
    """The points whose block measured a parallel capacity more than 15% (:data:`SLOW_MACHINE`) below the run's median.

    The single-thread probe cannot see a machine whose other core is taken: it runs as fast as ever while the
    configuration under test has half the cores. Each block re-measures the capacity, so a point is flagged on it too.
    """
    if "capacity" not in summary or summary["capacity"].isna().all():
        return {}
    cap = summary["capacity"].astype(float)
    med = float(cap.median())
    low = summary[cap * SLOW_MACHINE < med]
    return {"capacity_median": med,
            "low_capacity_points": [{"point": r["point"], "label": r["label"], "load": r["load"],
                                     "repeat": int(r["repeat"]), "capacity": float(r["capacity"]),
                                     "slower_pct": 100 * (med / float(r["capacity"]) - 1)} for _, r in low.iterrows()]}


def central_label(config: dict, labels) -> str | None:
    """The centralized configuration ratios are taken against: the first the run lists (a run on a slow and a fast
    testbed machine has two, e.g. ``centralized @testbed-hetero on std-0``), of those in ``labels``."""
    labels = list(labels)
    # (a width run's centralized configurations each serve another pipeline: none is the baseline of all)
    listed = [c["label"] for c in config.get("configurations", []) if c.get("mode") == "centralized" and not c.get("pipeline")]
    found = [x for x in listed if x in labels] or [x for x in labels if x == "centralized" or x.startswith("centralized @")]
    return found[0] if found else None


def compute_tax(stages: pd.DataFrame, base_label: str | None = None) -> pd.DataFrame:
    """Per configuration at its lowest load: the median request's stage time and its ratio to centralized's.

    A request's stage time is the sum of its stages' traced durations (the compute, without orchestration or
    queueing). Above 1, the distributed configuration's stages themselves ran slower than the baseline's (a
    profiler, a shared interpreter, a cache that missed): a cost no placement can win back. ``tax`` is NaN in a
    run without a centralized configuration.
    """
    if stages.empty:
        return pd.DataFrame(columns=["label", "load", "stage_ms", "tax"])
    per_request = stages.groupby(["label", "load", "request"], sort=False)["duration"].sum().reset_index()
    lowest = per_request.groupby("label", sort=False)["load"].transform("min")
    low = per_request[per_request["load"] == lowest]
    out = low.groupby("label", sort=False).agg(load=("load", "first"), stage_s=("duration", "median")).reset_index()
    out["stage_ms"] = 1000 * out.pop("stage_s")
    base_label = base_label or central_label({}, out["label"])
    base = out.loc[out["label"] == base_label, "stage_ms"]
    out["tax"] = out["stage_ms"] / float(base.iloc[0]) if len(base) else float("nan")
    return out


def _shares(run: RunData) -> tuple[dict[tuple[str, int], float], float | None]:
    """Per (cluster, workers): the worker machines' CPU shares summed, and the centralized machine's share, from what
    each testbed point recorded of its deployment (empty, None: not a testbed run)."""
    total: dict[tuple[str, int], float] = {}
    central, base = None, central_label(run.config, [m["config"]["label"] for m in run.points])
    for meta in run.points:
        c, dep = meta["config"], (meta.get("cluster") or {}).get("cluster") or {}
        machines = dep.get("machines") or {}
        if not machines:
            continue
        if c["label"] == base:
            central = (machines.get(c.get("machine") or "server") or {}).get("cpu_share")
        elif c["mode"] == "distributed":
            total[(str(c.get("cluster") or ""), int(c["workers"]))] = float(
                sum(m["cpu_share"] for m in machines.values() if m.get("role") == "worker"))
    return total, central


def test_cases(run: RunData, lim: dict) -> pd.DataFrame:
    """The design report's test cases per (cluster, machines): speed-ups of the best strategy over centralized and
    over whole requests on the same machines (granularity ``request``), paired by repeat (:mod:`.stats`), beside the
    critical-path and core bounds, and the best strategy with the strategies tied with it.

    p50 at the lowest load, throughput at the highest. The bounds take the centralized machine's stage costs
    (``lim``): latency ``work / max(critical path, work / cores)``, throughput the machines' CPU over the
    centralized machine's (``n`` where the run recorded no shares).
    """
    from . import stats

    s = run.summary
    central = central_label(run.config, s["label"].unique()) if len(s) else None
    if central is None:
        return pd.DataFrame()
    grain = {c["label"]: c.get("granularity") for c in run.config.get("configurations", [])}
    low, top = s["load"].min(), s["load"].max()
    width_n = parallel_width()
    shares, central_share = _shares(run)
    work, cp = lim.get("total_work_s"), lim.get("critical_path_s")

    def per_repeat(label: str, col: str, load: float) -> dict[int, float]:
        at = s[(s["label"] == label) & (s["load"] == load)]
        return {int(r): float(v) for r, v in zip(at["repeat"], at[col])}

    def ratio(a: dict[int, float], b: dict[int, float]):
        reps = sorted(set(a) & set(b))
        return stats.paired_ratio([a[r] for r in reps], [b[r] for r in reps])

    rows = []
    dist = s[s["mode"] == "distributed"].assign(_cluster=lambda d: d["cluster"].fillna("").astype(str))
    for (cluster, n), g in dist.groupby(["_cluster", "workers"], sort=True):
        n = int(n)
        labels = list(dict.fromkeys(g["label"]))
        strategies = [x for x in labels if grain.get(x) != "request"]
        whole = [x for x in labels if grain.get(x) == "request"]
        row: dict = {"cluster": os.path.splitext(os.path.basename(cluster))[0] or "local", "machines": n,
                     "case": "2: 1 machine" if n == 1 else f"3: {n} machines, fewer than {width_n} models"
                     if n < width_n else f"4: {n} machines for {width_n} models"}
        for col, load, lower, key in (("p50_ms", low, True, "p50"), ("throughput", top, False, "throughput")):
            values = {x: per_repeat(x, col, load) for x in strategies}
            ranking = stats.rank(values, key, lower) if len(values) > 1 else None
            best = ranking.best if ranking else (strategies[0] if strategies else None)
            if best is None:
                continue
            row[f"best_{key}"] = best + (f" (tied: {', '.join(ranking.tied)})" if ranking and ranking.tied else "")
            base = per_repeat(central, col, load)
            r = ratio(base, values[best]) if lower else ratio(values[best], base)
            row[f"{key}_speedup_vs_centralized"] = r
            if whole:
                rep = per_repeat(whole[0], col, load)
                row[f"{key}_speedup_vs_whole_requests"] = ratio(rep, values[best]) if lower else ratio(values[best], rep)
        cores = shares.get((cluster, n), 0) / central_share if central_share else float(n)
        row["latency_bound"] = work / max(cp, work / cores) if work and cp else float("nan")
        row["throughput_bound"] = cores
        rows.append(row)
    return pd.DataFrame(rows)


def server_how(config: dict) -> str:
    """How a run's servers ran by default (``config.json``'s ``server.how``); runs recorded before it: ``thread``."""
    server = config.get("server")
    return server.get("how", "thread") if isinstance(server, dict) else "thread"  # in-process uvicorn


def server_kinds(run: RunData) -> dict[str, str]:
    """How each configuration's server ran, by label, as its points recorded it (``server.how``: process, thread,
    testbed); a run whose points predate the record: the run's ``server.how``, else ``thread`` (in-process uvicorn)."""
    default = server_how(run.config)
    out: dict[str, str] = {}
    for meta in run.points:
        out.setdefault(meta["config"]["label"], (meta.get("server") or {}).get("how", default))
    return out


def server_twins(run: RunData) -> list[tuple[str, str]]:
    """``(process label, thread label)`` of each configuration the run served both ways, alike in everything else.

    Configurations are alike when their recorded fields (``config.json``'s ``configurations``) agree except
    ``server`` and the label; the kind is what their points recorded (:func:`server_kinds`).
    """
    kinds = server_kinds(run)
    alike: dict[str, dict[str, str]] = {}
    for c in run.config.get("configurations", []):
        how = kinds.get(c["label"])
        if how in ("process", "thread"):
            key = json.dumps({k: v for k, v in c.items() if k not in ("server", "label")}, sort_keys=True, default=str)
            alike.setdefault(key, {}).setdefault(how, c["label"])
    return [(g["process"], g["thread"]) for g in alike.values() if {"process", "thread"} <= set(g)]

"""Where the baseline runs, and what a worker costs: the same requests' stage time in four placements, interleaved.

The ratios stockdag reports compare a distributed run with a centralized baseline. Two things can make them
flatter distribution without any orchestration being involved, and this probe measures both on the machine it
runs on:

``in_process``
    the baseline in the process that also hosts a LocalCluster's scheduler and its client (what ``stockdag
    demo`` and the overhead tool did before): their threads share the stages' interpreter;
``own_process``
    the baseline in a spawned process of its own (:class:`~stockdag.run.centralized.CentralizedExecutor`
    with ``isolated=True``): what the demo, the overhead tool and ``stockdag serve`` do now;
``worker_profiler_on`` / ``worker_profiler_off``
    the whole request as one task on a 1-worker, 1-thread LocalCluster with Dask's statistical profiler on
    (Dask's default) and off (stockdag's default, ``stockdag.worker_profiler``).

Each request runs in every placement; the order of the placements is shuffled per request with a seeded RNG,
so a machine that slows down mid-run slows all four alike. The figure compared is the request's **stage
time** (the sum of its traced stage durations: compute only, no queueing or transfer), and each placement's
ratio to ``own_process`` is given as the median of the per-request ratios with their interquartile range.
``stockdag fairness --requests 12 --out results/fairness/`` writes one JSON file with the
figures, the machine facts and the versions.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import random
import statistics

PLACEMENTS = ("in_process", "own_process", "worker_profiler_on", "worker_profiler_off")
#: the placement every ratio is taken against: the baseline as stockdag now runs it
REFERENCE = "own_process"


def stage_time(result) -> float:
    """Seconds of stage compute in one request (the sum of its traced stage durations)."""
    return sum(s["end"] - s["start"] for s in result.to_dict()["trace"])


def _quartiles(values: list[float]) -> dict:
    if len(values) < 2:
        v = values[0] if values else None
        return {"median": v, "q1": v, "q3": v}
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return {"median": q2, "q1": q1, "q3": q3}


def summarize(times: dict[str, list[float]]) -> dict:
    """Per placement: median stage time (ms) and the per-request ratio to :data:`REFERENCE` (median, IQR)."""
    out = {}
    for placement, values in times.items():
        ratios = [v / r for v, r in zip(values, times[REFERENCE]) if r > 0]
        out[placement] = {"n": len(values), "stage_ms": _quartiles([1000 * v for v in values]),
                          "ratio_to_" + REFERENCE: _quartiles(ratios)}
    return out


def probe(requests: int = 12, profile: str | None = "pretrained", seed: int = 0, warmup: int = 2, progress=None) -> dict:
    """Measure :data:`PLACEMENTS` on the same ``requests`` (plus ``warmup`` unmeasured ones); see the module docstring.

    ``progress(i, n)``, if given, is called after the ``i``-th of the ``n`` requests (warm-up included).
    """
    import dask
    from distributed import Client, LocalCluster

    from ..run import CentralizedExecutor
    from ..run.centralized import run_whole
    from ..run.isolated import ctrl_c_left_to_this_process, leave_ctrl_c_to_the_parent
    from ..run.worker_settings import worker_config
    from .demo import machine_facts, request_mix

    with dask.config.set({"stockdag.cache.backend": "none"}):  # every placement computes every stage
        reqs = request_mix(warmup + requests, seed=seed, profile=profile)
    rng = random.Random(seed)
    times: dict[str, list[float]] = {p: [] for p in PLACEMENTS}
    facts: dict[str, dict] = {}
    quiet = {"silence_logs": logging.WARNING, "dashboard_address": None, "host": "127.0.0.1"}
    with contextlib.ExitStack() as stack:
        # the old baseline's neighbours: a 2-worker LocalCluster (scheduler in this process) and its client
        with ctrl_c_left_to_this_process():  # its worker processes: Ctrl-C stops this process, which closes them
            neighbours = stack.enter_context(Client(stack.enter_context(LocalCluster(n_workers=2, threads_per_worker=1, **quiet,
                                                                                     config=worker_config()))))
        neighbours.run(leave_ctrl_c_to_the_parent)  # also once started, as the server does: the mask alone did not hold here
        here = stack.enter_context(CentralizedExecutor(isolated=False))
        own = stack.enter_context(CentralizedExecutor(isolated=True))
        workers = {}
        for placement, enabled in (("worker_profiler_on", True), ("worker_profiler_off", False)):
            with ctrl_c_left_to_this_process():
                cluster = stack.enter_context(LocalCluster(n_workers=1, threads_per_worker=1, **quiet,
                                                           config=worker_config(enabled)))
            workers[placement] = stack.enter_context(Client(cluster, set_as_default=False))
            workers[placement].run(leave_ctrl_c_to_the_parent)
            facts[placement] = workers[placement].run(
                lambda: {"profiler": dask.config.get("distributed.worker.profile.enabled"), "pid": os.getpid()})
        facts["in_process"], facts["own_process"] = here.facts(), own.facts()

        def run(placement, request):
            if placement == "in_process":
                return here.run(request)
            if placement == "own_process":
                return own.run(request)
            return workers[placement].submit(run_whole, request, pure=False).result()

        for i, request in enumerate(reqs):
            order = list(PLACEMENTS)
            rng.shuffle(order)
            for placement in order:
                seconds = stage_time(run(placement, request))
                if i >= warmup:  # the first requests import libraries and fill per-process state
                    times[placement].append(seconds)
            if progress is not None:
                progress(i + 1, len(reqs))
    return {"probe": "stockdag.lab.fairness", "requests": requests, "warmup": warmup, "profile": reqs[0].profile,
            "seed": seed, "reference": REFERENCE, "summary": summarize(times),
            "times_s": times, "placements": facts, "machine": machine_facts(),
            "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}


def format_table(result: dict) -> str:
    """The summary as a text table (ms and ratios with their interquartile range)."""
    key = "ratio_to_" + result["reference"]
    lines = [f"{result['profile']} profile, {result['requests']} requests, stage time per request "
             f"(ratio: median of per-request ratios to {result['reference']}, [q1, q3])",
             f"{'placement':<22} {'median ms':>10} {'ratio':>7}  iqr"]
    for placement, s in result["summary"].items():
        r = s[key]
        lines.append(f"{placement:<22} {s['stage_ms']['median']:>10.1f} {r['median']:>7.3f}  [{r['q1']:.3f}, {r['q3']:.3f}]")
    return "\n".join(lines)


def _cell(name: str, values: list) -> str:
    """Median (range) over rounds: milliseconds as whole numbers, ratios to three decimals."""
    fmt = "{:.0f}" if name.endswith("ms") else "{:.3f}"
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def before_after(folder: str) -> str:
    """A Markdown table of ``scripts/before-after.sh``'s demo runs in ``folder`` (``old-N.json``, ``new-N.json``).

    Per side: the median over rounds of the centralized and distributed p50 latency, the latency ratio
    (distributed / centralized p50) and the throughput ratio, each with the range over rounds.
    """
    import glob

    def p50(values):
        return statistics.median(values) * 1000

    rows = {}
    for side in ("old", "new"):
        runs = [json.load(open(f)) for f in sorted(glob.glob(os.path.join(folder, f"{side}-*.json")))]
        if not runs:
            continue
        first = next(iter(runs[0]["distributed"]))
        cols = {"centralized p50 ms": [p50(r["centralized_latency"]) for r in runs],
                "distributed p50 ms": [p50(r["distributed"][first]["latency"]) for r in runs],
                "latency ratio": [r["latency_ratio"] for r in runs],
                "throughput ratio": [r["throughput_ratio"] for r in runs]}
        rows[side] = (len(runs), cols, runs[0].get("machine", {}).get("baseline"))
    if not rows:
        raise FileNotFoundError(f"no old-*.json or new-*.json in {folder}")
    names = list(next(iter(rows.values()))[1])
    lines = ["| side | rounds | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for side, (n, cols, _) in rows.items():
        cells = [_cell(name, v) for name, v in cols.items()]
        lines.append(f"| {side} | {n} | " + " | ".join(cells) + " |")
    lines += ["", "Each cell: the median over rounds (the range over rounds). The old side's baseline ran in the "
              "process hosting the LocalCluster's scheduler and client" +
              (" (its demo records no baseline facts)" if not rows.get("old", (0, 0, None))[2] else "") +
              "; the new side's baseline: " + json.dumps({k: v for k, v in (rows.get("new", (0, 0, {}))[2] or {}).items()
                                                          if k != "threads"}) + "."]
    return "\n".join(lines) + "\n"

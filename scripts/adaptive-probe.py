"""Where a placement strategy loses throughput: a per-task trace of a burst, and the counters that show it (issue 23 item 5).

``run`` starts a 2-worker, 1-thread LocalCluster (the demo's), warms it with two rounds of 4 requests, then
submits two bursts of N requests at once, as ``stockdag demo``'s throughput phase does (``--closed``: two users
in a closed loop, N requests each, instead). A scheduler plugin records every transition of every task (time,
worker that ran it, compute start/stop); ``adaptive``'s decisions are recorded with what it saw (each worker's
queued work, the expected finish of the whole request on each worker). Writes ``OUT/TAG-SEED.json``.

``counters`` reads those files and prints, per burst: its makespan, each worker's busy seconds, efficiency
(busy / (workers x makespan)) and the seconds a worker computed nothing while another worker held a task
that was ready (assigned, inputs done) and not started: work a late-binding placement would have run.
Wall-clock throughput on a shared 2-core host says little; these counters come from the task records.

    PYTHONPATH=$PWD python scripts/adaptive-probe.py run adaptive 1 4 new --out results/fairness/adaptive-mechanism
    PYTHONPATH=$PWD python scripts/adaptive-probe.py counters results/fairness/adaptive-mechanism/*.json
"""
from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

from distributed.diagnostics.plugin import SchedulerPlugin

DECISIONS: list[dict] = []


class Recorder(SchedulerPlugin):
    """Every transition of every task, with the worker that ran it and its compute start/stop."""

    name = "adaptive-probe-recorder"

    def __init__(self, scheduler):
        self.scheduler = scheduler
        self.events: list = []

    def transition(self, key, start, finish, *args, **kwargs):
        ts = self.scheduler.tasks.get(key)
        ann = ((ts.annotations or {}).get("stockdag") or {}) if ts is not None else {}
        self.events.append([time.time(), str(key), start, finish, ann.get("request"), ann.get("planned"),
                            kwargs.get("worker"), kwargs.get("startstops")])


def record_decisions():
    """Wrap Adaptive.decide (the scheduler runs in this process) to keep what each decision saw."""
    from stockdag.placement import adaptive
    from stockdag.placement.heft import plan_request

    decide = adaptive.Adaptive.decide

    def recorded(self, tasks, workers, costs):
        mode, plan, finish = decide(self, tasks, workers, costs)
        whole = [plan_request(tasks, workers, costs, only=[i])[1].makespan for i in range(len(workers))]
        by_address = {w.address: w.name for w in workers}
        DECISIONS.append({"time": time.time(), "request": tasks[0].request, "tasks": len(tasks), "mode": mode,
                          "queued": {w.name: w.occupancy for w in workers},
                          "whole_request_finish": {w.name: f for w, f in zip(workers, whole)},
                          "planned_workers": sorted({by_address[a] for a in plan.values() if a})})
        return mode, plan, finish
    adaptive.Adaptive.decide = recorded


def run(args):
    import dask

    from stockdag.lab.demo import machine_facts, request_mix
    from stockdag.run import DistributedExecutor

    record_decisions()
    n = args.requests
    with dask.config.set({"stockdag.cache.backend": "none"}):
        reqs = request_mix(4 + 2 * n, seed=args.seed)
    fresh = lambda rs: [dataclasses.replace(r, request_id=uuid.uuid4().hex) for r in rs]  # noqa: E731
    with DistributedExecutor(n_workers=2, strategy=args.strategy, granularity="load") as dist:
        scheduler = dist._own_cluster.scheduler  # a LocalCluster's scheduler runs in this process
        recorder = Recorder(scheduler)
        scheduler.add_plugin(recorder)
        for _ in range(2):  # warm-up: imports, first fits, and costs learned on both workers
            dist.client.gather([dist.submit(r) for r in fresh(reqs[:4])])
        recorder.events.clear()
        DECISIONS.clear()
        throughput = []
        if args.closed:
            def user(rs):
                for r in fresh(rs):
                    dist.submit(r).result()
            t = time.perf_counter()
            users = [threading.Thread(target=user, args=(reqs[4 + i * n:4 + (i + 1) * n],)) for i in range(2)]
            for u in users:
                u.start()
            for u in users:
                u.join()
            throughput.append(2 * n / (time.perf_counter() - t))
        else:
            for burst in (reqs[4:4 + n], reqs[4 + n:]):
                t = time.perf_counter()
                dist.client.gather([dist.submit(r) for r in fresh(burst)])
                throughput.append(len(burst) / (time.perf_counter() - t))
        plugin = scheduler.plugins.get("stockdag-placement")
        out = {"strategy": args.strategy, "tag": args.tag, "seed": args.seed, "closed": args.closed,
               "throughput": throughput, "granularities": dict(dist.granularities), "machine": machine_facts(),
               "workers": {ws.address: str(ws.name) for ws in scheduler.workers.values()},
               "costs": plugin.costs.snapshot() if plugin is not None else None,
               "decisions": DECISIONS, "events": recorder.events}
    path = Path(args.out) / f"{args.tag}-{args.seed}{'-closed' if args.closed else ''}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, default=str))
    print(path, throughput)


def tasks_of(d):
    """key -> {request, worker (that ran it), assigned, start, stop}, in scheduler time."""
    names = d["workers"]
    tasks: dict = collections.defaultdict(dict)
    for t, key, start, finish, request, _planned, worker, startstops in d["events"]:
        k = tasks[key]
        if request:
            k["request"] = request
        if finish == "processing":
            k["assigned"] = t
        if start == "processing" and finish == "memory":
            k["worker"] = names.get(worker, worker)  # where it ran (a stolen task ran elsewhere than assigned)
            for ss in startstops or ():
                if ss["action"] == "compute":
                    k["start"], k["stop"] = ss["start"], ss["stop"]
    return {key: k for key, k in tasks.items() if {"request", "assigned", "start", "worker"} <= k.keys()}


def counters(d, step=0.001):
    tasks = tasks_of(d)
    by_request = collections.defaultdict(list)
    for k in tasks.values():
        by_request[k["request"]].append(k)
    ordered = sorted(by_request.values(), key=lambda ts: min(t["assigned"] for t in ts))
    half = len(ordered) // 2
    workers = sorted(set(d["workers"].values()))
    out = []
    for burst in (ordered[:half], ordered[half:]) if not d.get("closed") else (ordered,):
        ts = [t for r in burst for t in r]
        t0, t1 = min(t["assigned"] for t in ts), max(t["stop"] for t in ts)
        busy = {w: sum(t["stop"] - t["start"] for t in ts if t["worker"] == w) for w in workers}
        running = {w: [(t["start"], t["stop"]) for t in ts if t["worker"] == w] for w in workers}
        ready = {w: [(t["assigned"], t["start"]) for t in ts if t["worker"] == w and t["start"] - t["assigned"] > step]
                 for w in workers}
        def inside(x, ivs):
            return any(a <= x < b for a, b in ivs)

        lost = 0.0
        for i in range(int((t1 - t0) / step)):
            x = t0 + i * step
            if any(not inside(x, running[w]) and any(inside(x, ready[o]) for o in workers if o != w) for w in workers):
                lost += step
        out.append({"makespan": t1 - t0, "busy": busy, "efficiency": sum(busy.values()) / (len(workers) * (t1 - t0)),
                    "idle_while_other_worker_has_ready_work": lost,
                    "requests": [(len(r), sorted({t["worker"] for t in r})) for r in burst]})
    return out


def report(args):
    rows, by_tag = [], collections.defaultdict(list)
    print("| file | strategy | burst | makespan s | busy s per worker | efficiency | idle while the other worker had ready work, s |")
    print("|---|---|---|---|---|---|---|")
    for p in args.files:
        d = json.loads(Path(p).read_text())
        for i, c in enumerate(counters(d)):
            busy = ", ".join(f"{w}: {v:.1f}" for w, v in c["busy"].items())
            print(f"| {Path(p).name} | {d['strategy']} | {i + 1} | {c['makespan']:.1f} | {busy} | {c['efficiency']:.2f} | "
                  f"{c['idle_while_other_worker_has_ready_work']:.1f} |")
            by_tag[d["tag"] + (" closed" if d.get("closed") else "")].append(c)
            rows.append(c)
    print()
    for tag, cs in by_tag.items():
        eff = [c["efficiency"] for c in cs]
        lost = [c["idle_while_other_worker_has_ready_work"] / c["makespan"] for c in cs]
        print(f"- {tag}: {len(cs)} bursts, efficiency median {statistics.median(eff):.2f} (min {min(eff):.2f}), "
              f"idle-while-ready median {statistics.median(lost):.0%} of the makespan (max {max(lost):.0%})")
    for p in args.files:
        d = json.loads(Path(p).read_text())
        if d.get("costs"):
            s = d["costs"]["slowness"]
            print(f"- {Path(p).name}: learned slowness of the two identical workers "
                  + ", ".join(f"{w}: {v:.2f}" for w, v in sorted(s.items()))
                  + (f" (ratio {max(s.values()) / min(s.values()):.2f})" if len(s) > 1 else "")
                  + widest(d["costs"]))


def widest(costs):
    """``; widest stage: <stage> <w>: <s> s from <n> runs, ...``: the stage whose learned means differ most between workers."""
    means = collections.defaultdict(dict)
    for pair, m in costs["durations"].items():
        stage, worker = pair.rsplit("@", 1)
        means[stage][worker] = (m, costs["counts"][pair])
    ratios = {st: max(m for m, _ in ws.values()) / min(m for m, _ in ws.values())
              for st, ws in means.items() if len(ws) > 1 and min(m for m, _ in ws.values()) > 0.01}
    if not ratios:
        return ""
    stage = max(ratios, key=ratios.__getitem__)
    parts = ", ".join(f"{w}: {m:.2f} s from {n} runs" for w, (m, n) in sorted(means[stage].items()))
    return f"; widest stage {stage} ({ratios[stage]:.1f}x): {parts}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="trace two bursts (or a closed loop) on a 2-worker LocalCluster")
    r.add_argument("strategy")
    r.add_argument("seed", type=int)
    r.add_argument("requests", type=int, help="requests per burst (per user with --closed)")
    r.add_argument("tag", help="name of the output file: the code under test (old, new, dask)")
    r.add_argument("--out", default="results/fairness/adaptive-mechanism")
    r.add_argument("--closed", action="store_true", help="two users in a closed loop instead of bursts")
    c = sub.add_parser("counters", help="the counters of recorded runs, as a Markdown table")
    c.add_argument("files", nargs="+")
    args = parser.parse_args(argv)
    (run if args.command == "run" else report)(args)


if __name__ == "__main__":
    sys.exit(main())

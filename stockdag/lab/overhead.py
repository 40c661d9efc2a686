"""Where a distributed request's time goes: the orchestration overhead against the centralized run.

:func:`measure` runs the centralized executor and each distributed variant (granularity x stream intervals x
strategy) on one LocalCluster, in interleaved blocks of requests with one in flight, then throughput rounds,
and splits each distributed request from its own stage trace into compute, submit, gaps and return, beside
Dask's floor (a no-op task's round trip) and the best schedule of the run's own stage costs. ``stockdag
overhead`` is its command. The method and why it is built so (blocks, lead-in requests, the floor):
``docs/research/methodology.md``, "Where a distributed request's time goes".
"""
from __future__ import annotations

import dataclasses
import itertools
import logging
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field

import dask

from ..pipeline.bounds import best_schedule, critical_path
from ..pipeline.graph import task_groups
from ..pipeline.table import active_table


@dataclass(frozen=True)
class Variant:
    """One way of running a request: ``centralized``, or distributed with these settings."""

    mode: str
    granularity: str = "stage"
    batching: str = "dask"
    strategy: str = "dask"
    submit: str = "task"  # a one-task request: "task" (Client.submit, the default) or "graph" (its delayed graph)

    @property
    def label(self) -> str:
        if self.mode == "centralized":
            return "centralized"
        return f"{self.granularity}/{self.batching}/{self.strategy}" + ("/graph" if self.submit == "graph" else "")

    @property
    def tasks(self) -> int:
        return len(task_groups(self.granularity, active_table())) if self.mode == "distributed" else 0


def split(submitted: float, trace, received: float) -> dict[str, float]:
    """A request's wall time split into compute, submit, gaps and return (see the module docstring)."""
    first = min(t.start for t in trace)
    last = max(t.end for t in trace)
    # the union of stage intervals: stages side by side on two workers count once
    busy, end = 0.0, first
    for t in sorted(trace, key=lambda t: t.start):
        if t.end > end:
            busy += t.end - max(t.start, end)
            end = t.end
    durations = {t.id: t.end - t.start for t in trace}
    return {
        "total": received - submitted,
        "compute": sum(durations.values()),
        "submit": max(first - submitted, 0.0),
        "gaps": (last - first) - busy,
        "return": max(received - last, 0.0),
        "critical_path": critical_path(durations).seconds,
        "work": sum(durations.values()),
        "durations": durations,
    }


@dataclass
class Measurement:
    """Everything one run measured, per profile and variant."""

    workers: int
    machine: dict
    commands: str
    latency: dict = field(default_factory=dict)      # profile -> label -> [split dicts]
    throughput: dict = field(default_factory=dict)   # profile -> label -> [req/s per round]
    predictions: dict = field(default_factory=dict)  # profile -> label -> [next_close per request]
    floor: dict = field(default_factory=dict)        # stream-interval preset -> [no-op task round trip, s]

    def summary(self) -> dict:
        """p50s, overheads and ratios to centralized (with the spread of per-request ratios)."""
        out = {}
        for profile, by_label in self.latency.items():
            central = by_label["centralized"]
            c50 = statistics.median(x["total"] for x in central)
            cp = statistics.median(max(x["critical_path"], x["work"] / max(self.workers, 1)) for x in central)
            # one schedule of the run's median stage costs (not one per request: with 3 workers that is 177,147
            # assignments a call)
            costs = [x["durations"] for x in central if "durations" in x]
            best = best_schedule({i: statistics.median(d[i] for d in costs) for i in costs[0]}, self.workers) if costs else None
            rows = {}
            for label, xs in by_label.items():
                p50 = statistics.median(x["total"] for x in xs)
                ratios = sorted(x["total"] / c["total"] for x, c in zip(xs, central))
                tasks = _tasks(label)
                row = {
                    "p50": p50, "latency_ratio": p50 / c50,
                    "ratio_q25": _q(ratios, 0.25), "ratio_q75": _q(ratios, 0.75),
                    "overhead_per_request": p50 - c50,
                    "overhead_per_task": (p50 - c50) / tasks if tasks else 0.0,
                    "tasks": tasks,
                    **{f"{k}_p50": statistics.median(x[k] for x in xs) for k in ("compute", "submit", "gaps", "return")},
                    "bound_ratio": p50 / cp,
                    "best_schedule_ratio": p50 / best if best else None,
                }
                tp = self.throughput.get(profile, {}).get(label)
                ctp = self.throughput.get(profile, {}).get("centralized")
                if tp and ctp:
                    tr = sorted(a / b for a, b in zip(tp, ctp))
                    row.update(throughput=statistics.median(tp), throughput_ratio=statistics.median(tr),
                               throughput_ratio_min=tr[0], throughput_ratio_max=tr[-1])
                rows[label] = row
            out[profile] = {"centralized_p50": c50, "critical_path_bound": cp, "best_schedule": best, "variants": rows,
                            "floor_ratio": {b: f["p50"] / c50 + 1 for b, f in self.floors().items()}}
        return out

    def floors(self) -> dict:
        """Dask's floor per stream-interval preset: p50 and quartiles of a no-op task's round trip (s)."""
        out = {}
        for b, xs in self.floor.items():
            xs = sorted(xs)
            out[b] = {"p50": statistics.median(xs), "q25": _q(xs, 0.25), "q75": _q(xs, 0.75), "n": len(xs)}
        return out

    def table(self) -> str:
        lines = []
        for profile, s in self.summary().items():
            lines.append(f"profile {profile}: centralized p50 {1000 * s['centralized_p50']:.1f} ms; "
                         f"bound max(critical path, work/{self.workers}) {1000 * s['critical_path_bound']:.1f} ms; "
                         + (f"best schedule on {self.workers} worker(s), no overhead, {1000 * s['best_schedule']:.1f} ms"
                            if s["best_schedule"] else "best schedule: too many assignments to try"))
            lines.append(f"  {'variant':<26}{'tasks':>6}{'p50 ms':>9}{'ratio (q25-q75)':>20}{'+ms/req':>9}{'+ms/task':>9}"
                         f"{'/bound':>8}{'/best':>7}{'compute':>9}{'submit':>8}{'gaps':>7}{'return':>8}{'thru ratio (min-max)':>22}")
            for label, r in s["variants"].items():
                tr = (f"{r['throughput_ratio']:.2f} ({r['throughput_ratio_min']:.2f}-{r['throughput_ratio_max']:.2f})"
                      if "throughput_ratio" in r else "")
                lines.append(
                    f"  {label:<26}{r['tasks']:>6}{1000 * r['p50']:>9.1f}"
                    f"{r['latency_ratio']:>8.3f} ({r['ratio_q25']:.2f}-{r['ratio_q75']:.2f})"
                    f"{1000 * r['overhead_per_request']:>9.1f}{1000 * r['overhead_per_task']:>9.2f}{r['bound_ratio']:>8.2f}"
                    f"{r['best_schedule_ratio'] or float('nan'):>7.2f}"
                    f"{1000 * r['compute_p50']:>9.1f}{1000 * r['submit_p50']:>8.1f}{1000 * r['gaps_p50']:>7.1f}"
                    f"{1000 * r['return_p50']:>8.1f}{tr:>22}"
                )
            for b, f in self.floors().items():
                lines.append(f"  Dask's floor ({b} intervals): a no-op task's round trip on an idle cluster p50 {1000 * f['p50']:.1f} ms "
                             f"(q25-q75 {1000 * f['q25']:.1f}-{1000 * f['q75']:.1f}, n={f['n']}): a one-task request pays at least "
                             f"that, {s['floor_ratio'][b]:.3f}x centralized here")
        return "\n".join(lines)


def _q(values, q):
    return values[min(len(values) - 1, int(q * len(values)))]


def _tasks(label: str) -> int:
    return 0 if label == "centralized" else len(task_groups(label.split("/")[0], active_table()))


def variants(granularities, batchings, strategies, submits=("task",)) -> list[Variant]:
    """Centralized, then every combination (``submits`` only differ for the one-task ``request`` granularity)."""
    out = [Variant("centralized")]
    for g, b, s, sub in itertools.product(granularities, batchings, strategies, submits):
        v = Variant("distributed", g, b, s, sub if g == "request" else "task")
        if v not in out:
            out.append(v)
    return out


def measure(profiles=("pretrained", "refit"), *, workers: int = 1, requests: int = 16, batch: int = 8, rounds: int = 2,
            granularities=("stage", "branch", "request"), batchings=("dask", "fast"), strategies=("dask",),
            submits=("task",), seed: int = 0, block: int = 4, client=None, progress=None) -> Measurement:
    """Measure every variant on the same requests, interleaved (see the module docstring)."""
    from distributed import Client, LocalCluster

    from ..run import CentralizedExecutor, DistributedExecutor
    from ..run import batching as batching_mod
    from ..run.distributed import round_trip
    from ..run.isolated import ctrl_c_left_to_this_process, leave_ctrl_c_to_the_parent
    from ..run.worker_settings import worker_config
    from . import demo

    vs = variants(granularities, batchings, strategies, submits)
    m = Measurement(workers, demo.machine_facts(), " ".join(sys.argv))
    with dask.config.set({"stockdag.cache.backend": "none"}):
        mixes = {p: demo.request_mix(2 + requests + rounds * batch, seed=seed, profile=p) for p in profiles}
    fresh = lambda r: dataclasses.replace(r, request_id=uuid.uuid4().hex)  # noqa: E731
    own = []
    if client is None:
        with ctrl_c_left_to_this_process():  # its worker processes: Ctrl-C stops this process, which closes them
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                   dashboard_address="127.0.0.1:0", silence_logs=logging.WARNING, config=worker_config())
        client = Client(cluster)
        own = [client, cluster]
        client.run(leave_ctrl_c_to_the_parent)  # also once started, as the server does: the mask alone did not hold here
    try:
        # the baseline in a process of its own: this one hosts the client (and the LocalCluster's scheduler)
        central = CentralizedExecutor(isolated=True)
        own.insert(0, central)
        m.machine["baseline"] = central.facts()
        executors = {}
        current: list = [None, None]  # strategy and batching now installed

        def executor(v: Variant):
            if current[0] != v.strategy:
                executors.clear()  # a new executor installs the strategy (dask, named: it removes the earlier plugin)
                current[0] = v.strategy
                current[1] = None
            if current[1] != v.batching:
                batching_mod.apply(client, batching_mod.PRESETS[v.batching])
                current[1] = v.batching
            if (v.granularity, v.submit) not in executors:
                ex = DistributedExecutor(client=client, strategy=v.strategy, granularity=v.granularity,
                                         configure_cluster=True if own else None)  # a cluster started here is ours
                ex.submit_one_task = v.submit == "task"
                executors[v.granularity, v.submit] = ex
            return executors[v.granularity, v.submit]

        def run_one(v: Variant, request):
            if v.mode == "centralized":
                t0 = time.time()
                traced = central.run(request)
                return traced, split(t0, traced.trace, time.time())
            ex = executor(v)
            t0 = time.time()
            result = ex.run(fresh(request))
            return result, split(t0, result.trace, time.time())

        # warm-up: every worker imports, loads and runs each stage under every variant
        for p in profiles:
            for r in mixes[p][:2]:
                for v in vs:
                    run_one(v, r)
        for k, first in enumerate(range(0, requests, block)):
            for p in profiles:
                rs = mixes[p][2 + first: 2 + min(first + block, requests)]
                order = vs[k % len(vs):] + vs[:k % len(vs)]
                for v in order:
                    run_one(v, rs[0])  # the lead-in: the block's requests now follow one of their own variant
                    for r in rs:
                        result, parts = run_one(v, r)
                        m.latency.setdefault(p, {}).setdefault(v.label, []).append(parts)
                        m.predictions.setdefault(p, {}).setdefault(v.label, []).append(result.prediction.next_close)
                progress and progress(p, first + len(rs) - 1)
            presets = list(dict.fromkeys(v.batching for v in vs if v.mode == "distributed"))
            for b in presets[k % len(presets):] + presets[:k % len(presets)]:
                if current[1] != b:
                    batching_mod.apply(client, batching_mod.PRESETS[b])
                    current[1] = b
                for i in range(block + 1):  # the first is the block's lead-in, as for the requests
                    took = round_trip(client)  # after a pause: the floor of a request longer than the intervals
                    if i:
                        m.floor.setdefault(b, []).append(took)
        for k in range(rounds):
            for p in profiles:
                reqs = mixes[p][2 + requests + k * batch: 2 + requests + (k + 1) * batch]
                order = vs[k % len(vs):] + vs[:k % len(vs)]
                for v in order:
                    ex = executor(v) if v.mode == "distributed" else None  # installing is not timed
                    todo = [fresh(r) for r in reqs]
                    t0 = time.perf_counter()
                    if ex is None:
                        for r in todo:
                            central.run(r)
                    else:
                        client.gather([ex.submit(r) for r in todo])
                    m.throughput.setdefault(p, {}).setdefault(v.label, []).append(len(reqs) / (time.perf_counter() - t0))
        # the cluster goes back to the configured intervals, not those of the last variant measured
        batching_mod.apply(client, batching_mod.as_config(batching_mod.effective()))
    finally:
        for x in own:
            x.close()
    # lists in the same order as the centralized run's (the column the ratios read)
    m.latency = {p: {"centralized": by["centralized"], **{k: v for k, v in by.items() if k != "centralized"}}
                 for p, by in m.latency.items()}
    return m

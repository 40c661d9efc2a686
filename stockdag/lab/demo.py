"""Centralized vs distributed on the same requests: the comparison behind ``stockdag demo``.

Both executors get the same list of distinct requests. Warm-up requests
(imports, worker start-up, first model fits) are run first and excluded.
The cache is off (``backend: none``) so each request does all of its work in
both modes. Reported: median single-request latency (one request in flight)
and throughput with ``in_flight`` requests at once; the centralized baseline
processes one request at a time by definition. The two executors are
interleaved (request by request for latency, in halves for throughput) so that
a machine busy with other work slows both alike.
"""
from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime as dt
import itertools
import logging
import random
import statistics
import time
import uuid
from dataclasses import dataclass, field

import dask

from ..domain.data.prices import BundledPrices
from ..pipeline.request import Request, parse_request
from ..pipeline.result import PredictionResult


def request_mix(n: int, seed: int = 0, symbols=None,
                start="2011-06-01", end="2013-02-28", **kwargs) -> list[Request]:
    """``n`` distinct (symbol, trading day) requests drawn with a seeded RNG.

    ``symbols`` None: the bundled symbols with ``stockdag.data.min_history`` days of prices before ``start``.
    """
    rng = random.Random(seed)
    data = BundledPrices()
    if symbols is None:
        from .. import config
        from ..domain.data.symbols import symbols_with_history

        day_before = dt.date.fromisoformat(start) - dt.timedelta(days=1)
        symbols = symbols_with_history(day_before, int(config.get("data.min_history")), data.name)
    days = {s: [d for d in data.history(s, None, 0).loc[start:end].index.date] for s in symbols}
    pairs = sorted({(s, d) for s in symbols for d in days[s]})
    chosen = rng.sample(pairs, n)
    return [parse_request(s, d, **kwargs) for s, d in chosen]


def _slower(latency: float, baseline: float) -> str:
    """A latency against a baseline in words, so that a ratio above 1 is not read as a gain."""
    if latency > baseline:
        return f"{latency / baseline:.2f}x slower"
    if latency < baseline:
        return f"{baseline / latency:.2f}x faster"
    return "same"


@dataclass
class Comparison:
    """Measured in one run; ratios are distributed / centralized."""

    requests: int
    workers: int
    in_flight: int
    profile: str
    centralized_latency: list[float] = field(default_factory=list)
    distributed_latency: list[float] = field(default_factory=list)
    centralized_throughput: float = 0.0
    distributed_throughput: float = 0.0
    example: PredictionResult | None = None
    strategies: dict = field(default_factory=dict)  # strategy -> {"latency": [...], "throughput": float, "example": ...}
    dashboard: str | None = None
    machine: dict = field(default_factory=dict)
    granularity: str = ""  # the pipeline granularity asked for (``load``, ``auto`` or a fixed one)
    #: phase (latency, throughput) -> granularity -> requests the executor built with it (auto/load resolved per request)
    built: dict = field(default_factory=lambda: {"latency": {}, "throughput": {}})
    floor: list[float] = field(default_factory=list)  # Dask's floor: a no-op task's round trip (s), interleaved

    @property
    def floor_p50(self) -> float | None:
        """Seconds: the median of Dask's floor (a no-op task's round trip), None when none was measured."""
        return statistics.median(self.floor) if self.floor else None

    @property
    def floor_ratio(self) -> float | None:
        """The latency ratio of Dask's floor alone: 1 + a no-op task's round trip / the centralized p50 (what a one-task request pays at least)."""
        if not self.floor:
            return None
        return 1 + self.floor_p50 / statistics.median(self.centralized_latency)

    @property
    def latency_ratio(self) -> float:
        return statistics.median(self.distributed_latency) / statistics.median(self.centralized_latency)

    @property
    def overhead_per_request(self) -> float:
        """Seconds: distributed p50 minus centralized p50 (one request in flight)."""
        return statistics.median(self.distributed_latency) - statistics.median(self.centralized_latency)

    @property
    def throughput_ratio(self) -> float:
        return self.distributed_throughput / self.centralized_throughput

    def table(self) -> str:
        """Latency and throughput per executor, with ratios to centralized (and to ``dask`` when compared)."""
        cl = statistics.median(self.centralized_latency)
        ct = self.centralized_throughput
        dask_row = self.strategies.get("dask")
        # requests in flight: never more than there are requests
        head = ["executor", "p50 latency (s), 1 in flight", f"throughput (req/s), {min(self.in_flight, self.requests)} in flight",
                "latency vs centralized", "throughput / centralized"]
        if dask_row and len(self.strategies) > 1:
            head += ["latency vs dask", "throughput / dask"]
        rows = [head, ["centralized", f"{cl:.3f}", f"{ct:.2f}", "-", "1.00x"] + (["", ""] if len(head) > 5 else [])]
        for name, r in self.strategies.items():
            dl = statistics.median(r["latency"])
            row = [f"distributed {name} ({self.workers} workers)", f"{dl:.3f}", f"{r['throughput']:.2f}",
                   _slower(dl, cl), f"{r['throughput'] / ct:.2f}x"]
            if len(head) > 5:
                row += [_slower(dl, statistics.median(dask_row["latency"])), f"{r['throughput'] / dask_row['throughput']:.2f}x"]
            rows.append(row)
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        lines = ["  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r)) for r in rows]
        lines.insert(1, "-" * len(lines[0]))
        return "\n".join(lines)

    def built_text(self) -> str:
        """``granularity load: latency phase 16 branch; throughput phase 14 request, 2 branch``: what each phase ran."""
        phases = "; ".join(f"{phase} phase " + ", ".join(f"{n} {g}" for g, n in sorted(counts.items(), key=lambda x: -x[1]))
                           for phase, counts in self.built.items() if counts)
        return f"granularity {self.granularity}: {phases} (requests built each way)"

    def trace_table(self) -> str:
        if self.example is None:
            return ""
        t0 = min(t.start for t in self.example.trace)
        lines = [f"{'id':<4} {'stage':<16} {'worker':<24} {'start(ms)':>9} {'dur(ms)':>8}"]
        for t in self.example.trace:
            lines.append(f"{t.id:<4} {t.stage:<16} {t.worker:<24} {1000 * (t.start - t0):>9.1f} {1000 * (t.end - t.start):>8.1f}")
        return "\n".join(lines)


def machine_facts() -> dict:
    """The machine facts every result records (:func:`stockdag.lab.experiments.facts.machine`, one collector and
    its keys, without its seconds-long capacity probe), the versions a comparison depends on, and the Dask settings
    of the workers it starts (:func:`stockdag.run.worker_settings.facts`)."""
    from ..run import worker_settings
    from .experiments import facts

    versions = facts.versions()
    return {**facts.machine(measure_capacity=False), **{k: versions[k] for k in ("python", "stockdag", "dask")},
            "worker_settings": worker_settings.facts()}


def compare(requests: int = 16, workers: int = 2, in_flight: int = 16, profile: str | None = None,
            seed: int = 0, warmup: int | None = None, client=None, show_progress: bool = False,
            strategies: tuple[str, ...] = ("dask",), granularity: str | None = None) -> Comparison:
    """Run the same requests centralized and distributed (under each placement strategy); see the module docstring."""
    from ..run import CentralizedExecutor, DistributedExecutor
    from ..run.distributed import round_trip
    from ..run.isolated import ctrl_c_left_to_this_process
    from ..run.worker_settings import worker_config

    def bar(total, desc):
        if not show_progress:
            return None
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit="req")

    warmup = 2 * workers if warmup is None else warmup
    with dask.config.set({"stockdag.cache.backend": "none"}):
        reqs = request_mix(warmup + 2 * requests, seed=seed, profile=profile)
    warm, single, batch = reqs[:warmup], reqs[warmup:warmup + requests], reqs[warmup + requests:]
    cmp = Comparison(requests, workers, in_flight, single[0].profile, machine=machine_facts())

    from distributed import Client, LocalCluster, as_completed


    def central_batch(rs):
        t = time.perf_counter()
        for r in rs:  # one at a time: the centralized server has no concurrency
            central.run(r)
        return len(rs) / (time.perf_counter() - t)

    with contextlib.ExitStack() as stack:
        # the baseline in a process of its own: this one hosts the client (and the LocalCluster's scheduler)
        central = stack.enter_context(CentralizedExecutor(isolated=True))
        for r in warm:
            central.run(r)
        own = client is None  # a cluster started here is ours to configure (stockdag.configure_cluster is for others')
        if client is None:
            with ctrl_c_left_to_this_process():  # its worker processes: Ctrl-C stops this process, which closes them
                cluster = stack.enter_context(LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                                           host="127.0.0.1", dashboard_address=dask.config.get("stockdag.dashboard_address"),
                                                           silence_logs=logging.WARNING, config=worker_config()))
            client = stack.enter_context(Client(cluster))
        cmp.dashboard = client.dashboard_link
        cmp.machine["baseline"] = central.facts()  # where the baseline ran, with the cluster alive
        central_rounds = []
        for strategy in strategies:
            # dask, named, leaves Dask's own placement (no plugin): the executor removes an earlier strategy's
            dist = DistributedExecutor(client=client, strategy=strategy, granularity=granularity,
                                       configure_cluster=True if own else None)
            cmp.granularity = dist.granularity

            def count(phase, before):  # what this phase built: auto and load decide per request
                for g, n in (dist.granularities - before).items():
                    cmp.built[phase][g] = cmp.built[phase].get(g, 0) + n
            fresh = lambda rs: [dataclasses.replace(r, request_id=uuid.uuid4().hex) for r in rs]  # noqa: E731
            # every worker imports the libraries and runs each stage (and a learning strategy sees them) first
            client.gather([dist.submit(r) for r in fresh(warm)])
            b = bar(4 * requests, f"centralized and distributed {strategy} ({workers} workers), interleaved")
            latency = []
            before = collections.Counter(dist.granularities)
            # interleaved (A B B A ...), so a machine busy with something else slows both alike
            for i, (r, d) in enumerate(zip(single, fresh(single))):
                for step in ("central", "dist") if i % 2 == 0 else ("dist", "central"):
                    t = time.perf_counter()
                    if step == "central":
                        central.run(r)
                        cmp.centralized_latency.append(time.perf_counter() - t)
                    else:
                        res = dist.run(d)
                        latency.append(time.perf_counter() - t)
                    b and b.update(1)
                cmp.floor.append(round_trip(client))  # Dask's own round trip, measured between the same requests

            def dist_batch(rs):
                t = time.perf_counter()
                pending = iter(fresh(rs))
                ac = as_completed([dist.submit(r) for r in itertools.islice(pending, in_flight)])
                for fut in ac:
                    fut.result()
                    b and b.update(1)
                    nxt = next(pending, None)
                    if nxt is not None:
                        ac.add(dist.submit(nxt))
                return len(rs) / (time.perf_counter() - t)

            count("latency", before)
            before = collections.Counter(dist.granularities)
            # throughput in two interleaved halves: centralized, distributed, distributed, centralized
            half = max(len(batch) // 2, 1)
            first, second = batch[:half], batch[half:] or batch[:half]
            c1 = central_batch(first)
            b and b.update(len(first))
            d1, d2 = dist_batch(first), dist_batch(second)
            c2 = central_batch(second)
            b and b.update(len(second))
            b and b.close()
            count("throughput", before)
            central_rounds += [c1, c2]
            cmp.strategies[strategy] = {"latency": latency, "throughput": (d1 + d2) / 2, "example": res,
                                        "throughput_ratio_rounds": [d1 / c1, d2 / c2]}
        cmp.centralized_throughput = statistics.mean(central_rounds)
        first = cmp.strategies[strategies[0]]
        cmp.distributed_latency, cmp.distributed_throughput, cmp.example = first["latency"], first["throughput"], first["example"]
    return cmp

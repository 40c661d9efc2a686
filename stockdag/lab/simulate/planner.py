"""``stockdag plan``: the cheapest EC2 cluster and strategy predicted to hold a p99 objective at a rate.

For each instance type and placement strategy (every one in
:data:`stockdag.placement.STRATEGIES`), machine counts are tried upward from
the core bound (enough vCPUs for the offered CPU work at 90% utilisation) and
each cluster is simulated at the rate; the first count that holds ``p99 <= S``
without saturating (achieved throughput within 5% of what a server keeping up
would show over the window, no errors) is that pair's
cheapest, and a count is skipped once it costs more than the best found.

Assumptions (``stockdag.lab.simulate.*`` in the configuration): one Dask worker per
instance with one thread per vCPU, each vCPU as fast as a core of the machine
the stage costs were measured on times ``speeds[family]`` (no GIL contention),
a link of ``link_latency`` s and ``bandwidth`` bytes/s, and the scheduler
overheads fitted on loopback.
Prices are :mod:`stockdag.deploy.prices` (their date is printed).
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from ... import config
from ...deploy import prices
from ...errors import InvalidRequest
from ...pipeline.bounds import critical_path
from ...pipeline.table import STAGES
from ...placement import STRATEGIES
from ..bench.loadgen import BenchConfig
from .model import SimConfig, SimWorker, simulate

HEADROOM = 0.9  # most CPU utilisation a planned cluster may run at
COUNTS = (1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 40, 48, 64, 96, 128, 192, 256)


def speed(instance_type: str) -> float:
    """Per-vCPU speed of an instance type relative to the measuring machine (``stockdag.simulate.speeds``, assumed)."""
    return float((config.get("simulate.speeds") or {}).get(instance_type.split(".")[0], 1.0))


def scheduler_type() -> str:
    return str(config.get("simulate.scheduler_instance_type"))


def ec2_workers(instance_type: str, count: int, group: str | None = None) -> list[SimWorker]:
    """``count`` simulated instances of one type, one worker each (threads = vCPUs)."""
    row = prices.EC2_PRICES.get(instance_type)
    if row is None:
        raise InvalidRequest(f"instance type {instance_type!r} is not in the price table "
                             f"({prices.PRICES_DATE}); known: {', '.join(prices.EC2_PRICES)}")
    group = group or instance_type.replace(".", "_").replace("-", "_")
    latency, bandwidth = float(config.get("simulate.link_latency")), float(config.get("simulate.bandwidth"))
    return [SimWorker(f"{group}-{i}", row[1], speed(instance_type), latency, bandwidth, f"{group}-{i}")
            for i in range(count)]


def hourly(workers_by_type: dict[str, int]) -> float:
    return sum(prices.EC2_PRICES[t][0] * n for t, n in workers_by_type.items()) + prices.EC2_PRICES[scheduler_type()][0]


@dataclasses.dataclass
class Choice:
    instance_type: str
    machines: int
    strategy: str
    hourly_usd: float
    p50_ms: float
    p99_ms: float
    throughput: float

    def spec(self, name: str = "planned", ami: str | None = None, security_group: str | None = None) -> dict:
        """A kind ec2 cluster spec (a mapping that :func:`stockdag.deploy.parse_spec` accepts)."""
        group = self.instance_type.split(".")[0]
        vcpu, mem = prices.EC2_PRICES[self.instance_type][1:]
        return {
            "name": name, "kind": "ec2", "strategy": self.strategy,
            "worker_groups": [{"name": group, "count": self.machines, "threads": vcpu,
                               "memory_limit": f"{max(1, int(mem * 0.8))}GiB", "instance_type": self.instance_type}],
            "ec2": {"region": prices.PRICES_REGION, "ami": ami or "ami-0123456789abcdef0",
                    "security_groups": [security_group or "sg-0123456789abcdef0"],
                    "scheduler_instance_type": scheduler_type()},
        }


@dataclasses.dataclass
class PlanResult:
    rate: float
    p99_s: float
    choice: Choice | None
    reason: str | None
    tried: list[dict]

    def to_dict(self) -> dict:
        return {"rate": self.rate, "p99_s": self.p99_s, "simulated": True,
                "choice": dataclasses.asdict(self.choice) if self.choice else None, "reason": self.reason,
                "prices_date": prices.PRICES_DATE, "tried": self.tried}


def _simulate(costs, overheads, workers, strategy, rate, requests, seed=0, granularity="stage") -> dict:
    # at least 10 simulated seconds: a shorter window cannot show a queue building up
    bench = BenchConfig("sim://", rate=rate, duration=max(requests / rate, 10.0), warmup=2.0, timeout=60.0, seed=seed)
    s = simulate(SimConfig("distributed", workers, strategy, granularity=granularity), costs, overheads, bench,
                 seed=seed).summary
    lat = s.latency_ms or {}
    p99 = lat.get("p99", math.inf)
    # a short window's throughput counts the drain of the last requests: compare with what a server that keeps
    # up would show over the same window (duration + a typical latency), not with the bare rate
    keeps_up = s.ok / (s.duration + lat.get("p50", math.inf) / 1000) if s.ok else 0.0
    return {"p50_ms": lat.get("p50", math.inf), "p99_ms": p99, "throughput": s.throughput,
            "errors": sum(s.errors.values()), "saturated": s.throughput < 0.95 * min(rate, keeps_up)}


def critical_path_p99(costs, overheads, speed: float = 1.0) -> float:
    """Seconds: p99 over the measured requests of their critical path at ``speed``, plus the request overhead."""
    cp = [critical_path(row, STAGES).seconds for row in costs.samples]  # samples are in the default table's order
    return float(np.percentile(cp, 99)) / speed + overheads.request


def plan(rate: float, p99: float, costs, overheads, *, instance_types=None, max_machines: int = 64,
         max_hourly: float | None = None, strategies=None, requests: int = 600, progress=None,
         granularity: str = "stage") -> PlanResult:
    """Search for the cheapest (instance type, machines, strategy) holding ``p99`` seconds at ``rate`` req/s.

    ``granularity`` is the ``stockdag.pipeline.granularity`` the planned cluster runs requests with.
    """
    if rate <= 0 or p99 <= 0:
        raise InvalidRequest("--rate and --p99 must be > 0")
    if max_machines < 1:
        raise InvalidRequest("--max-machines must be >= 1")
    types = list(instance_types or config.get("simulate.instance_types"))
    for t in types:
        ec2_workers(t, 1)  # validates the name
    strategies = list(strategies or STRATEGIES)
    fastest = max(speed(t) for t in types)
    floor = critical_path_p99(costs, overheads, fastest)
    if floor > p99:
        return PlanResult(rate, p99, None, f"no cluster can hold p99 <= {p99:g} s: the critical path alone takes "
                          f"{floor:.3f} s at p99 (profile {costs.profile}, measured stage costs at the fastest speed "
                          f"{fastest:g}, plus {overheads.request * 1000:.0f} ms request overhead)", [])
    cpu = costs.mean_request()
    best: Choice | None = None
    tried = []
    for t in types:
        vcpu = prices.EC2_PRICES[t][1]
        # 10% headroom: a cluster loaded past 90% cannot be shown stable in a short simulated window
        n_min = max(1, math.ceil(rate * cpu / speed(t) / (HEADROOM * vcpu)))
        counts = [n for n in COUNTS if n_min <= n <= max_machines]
        if n_min <= max_machines and n_min not in counts:
            counts.insert(0, n_min)
        for strategy in strategies:
            for n in counts:
                cost = hourly({t: n})
                if (best is not None and cost > best.hourly_usd) or (max_hourly is not None and cost > max_hourly):
                    break
                r = _simulate(costs, overheads, ec2_workers(t, n), strategy, rate, requests, granularity=granularity)
                ok = r["p99_ms"] <= p99 * 1000 and not r["saturated"] and not r["errors"]
                tried.append({"instance_type": t, "machines": n, "strategy": strategy, "hourly_usd": round(cost, 4),
                              **r, "holds": ok})
                if progress is not None:
                    progress(tried[-1])
                if ok:
                    c = Choice(t, n, strategy, round(cost, 4), r["p50_ms"], r["p99_ms"], r["throughput"])
                    if best is None or (c.hourly_usd, c.p99_ms) < (best.hourly_usd, best.p99_ms):
                        best = c
                    break
    if best is None:
        limit = f"up to {max_machines} machines" + (f" and ${max_hourly:g}/h" if max_hourly is not None else "")
        if not tried:
            why = (f"the core bound alone needs more than {max_machines} machines of {', '.join(types)}"
                   if max_hourly is None else f"no cluster of {', '.join(types)} fits the budget")
        else:
            b = min(tried, key=lambda r: r["p99_ms"])
            why = (f"the best tried was {b['machines']} x {b['instance_type']} with {b['strategy']}: "
                   f"p99 {b['p99_ms'] / 1000:.3f} s, {b['throughput']:.1f} req/s (simulated)")
        return PlanResult(rate, p99, None, f"no cluster of {limit} holds p99 <= {p99:g} s at {rate:g} req/s: {why}", tried)
    return PlanResult(rate, p99, best, None, tried)

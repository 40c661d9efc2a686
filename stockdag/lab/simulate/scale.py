"""The design report's test cases at n machines, simulated from a run's calibration.

Cases (n = 5 competing models): 1 centralized; 2 one machine for the n tasks;
3 fewer than n machines (2-4); 4 n machines (5); then 8-64 machines, with one
instance type (homogeneous) or two alternating (mixed), every strategy in
:data:`stockdag.placement.STRATEGIES` plus the replicated baseline, at rates up
to past each cluster's capacity (the lower of its core bound and, distributed, its one scheduler's bound), over
several seeds. :func:`run_scale` computes the table (one row per
simulated point) and stores it as ``<out>/simulate/scale.csv`` (``out``: the
run folder, which a committed run must be asked for explicitly);
:func:`charts` draws it; :func:`section` is the REPORT section and
:func:`add_to_report` puts it into ``<run>/REPORT.md`` (between markers, so it
is replaced, not repeated); :func:`build` does all three (one call for
``make experiment``). Every figure says *simulated*.
"""
from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ... import config
from ...deploy import prices
from ...pipeline.granularity import resolve_granularity
from ...placement import STRATEGIES
from ..bench.loadgen import BenchConfig
from . import calibrate
from .model import SimConfig, shape, simulate
from .planner import ec2_workers, hourly, scheduler_type

MACHINES = (1, 2, 3, 4, 5, 8, 16, 32, 64)
LOADS = (0.25, 0.5, 0.75, 0.9, 1.1)   # fractions of each row's capacity (:func:`capacity`)
SEEDS = (0, 1, 2)   # enough for a 95% interval over seeds (stockdag.lab.experiments.stats.MIN_REPEATS)
FILE = os.path.join("simulate", "scale.csv")
BEGIN, END = "<!-- stockdag.lab.simulate.scale: begin -->", "<!-- stockdag.lab.simulate.scale: end -->"


def case(machines: int, n: int = 5) -> str:
    if machines == 1:
        return "2: one machine for n tasks"
    if machines < n:
        return "3: fewer than n machines"
    if machines == n:
        return "4: n machines (one a task)"
    return "beyond n"


def cluster(machines: int, kind: str, types: Sequence[str]):
    """Workers and instance counts of a homogeneous (``types[0]``) or mixed (alternating ``types``) cluster."""
    use = [types[0]] if kind == "homogeneous" else list(types)
    counts = {t: machines // len(use) + (1 if i < machines % len(use) else 0) for i, t in enumerate(use)}
    workers = []
    for t, c in counts.items():
        if c:
            workers += ec2_workers(t, c)
    return workers, {t: c for t, c in counts.items() if c}


def capacity(strategy: str, core_bound: float, scheduler_bound: float) -> tuple[float, str]:
    """The rate a configuration cannot exceed, and what bounds it: ``cores``, or ``scheduler`` for a distributed
    request whose tasks pass the one scheduler (centralized and replicated requests do not)."""
    if strategy not in ("centralized", "replicated") and scheduler_bound < core_bound:
        return scheduler_bound, "scheduler"
    return core_bound, "cores"


def run_scale(folder: str, *, machines: Sequence[int] = MACHINES, loads: Sequence[float] = LOADS,
              types: Sequence[str] = ("c5.large", "c5.xlarge"), strategies: Sequence[str] | None = None,
              requests: int = 300, min_duration: float = 10.0, objective: float = 1.0, seed: int = 0,
              seeds: Sequence[int] | None = None, progress: bool = False, out: str | None = None) -> pd.DataFrame:
    """Simulate the test cases and the scale curves from ``folder``'s calibration; store and return the table.

    Each point is an open-loop run of ``requests`` requests at its rate, but
    at least ``min_duration`` simulated seconds (after a 2 s warm-up): a window
    shorter than a few request latencies cannot show a queue building up.
    Rates are ``loads`` times the row's :func:`capacity` (``load`` in the
    table), and where the scheduler binds before the cores also the top load
    times the core bound: a grid of fractions of the core bound alone skips,
    where the scheduler binds first, every rate between the last one it holds
    and the next. Every point runs once per seed
    of ``seeds`` (default: ``seed`` alone), all strategies with the same seeds
    (paired). The table goes to ``<out>/simulate/scale.csv`` (``out``: see :func:`output_folder`).
    """
    out = output_folder(folder, out)
    cal = calibrate.load(folder, store_in=out)
    costs, ov = calibrate.inputs(cal)
    grain = cal.get("granularity", "stage")  # the measured run's stockdag.pipeline.granularity
    cpu = costs.mean_request()
    strategies = list(strategies or STRATEGIES)
    seeds = [seed] if seeds is None else [int(s) for s in seeds]
    jobs = [(1, "homogeneous", "centralized")]
    for m in machines:
        for kind in (("homogeneous", "mixed") if m > 1 else ("homogeneous",)):
            jobs += [(m, kind, s) for s in strategies] + [(m, kind, "replicated")]
    plans = []
    for m, kind, strategy in jobs:
        workers, counts = cluster(m, kind, types)
        threads = sum(w.threads for w in workers)
        if strategy == "centralized":
            config, threads = SimConfig("centralized"), 1
        elif strategy == "replicated":
            config = SimConfig("replicated", replicas=threads)
        else:
            config = SimConfig("distributed", workers, strategy, granularity=grain)
        # tasks of a distributed request on an idle cluster (``load`` fuses more under load); every instance type has
        # at least 2 vCPUs, so the centralized row carries the same figure
        n_tasks = len(shape(resolve_granularity(grain, max(threads, 2))).names)
        bound = threads / cpu
        sched = 1 / (n_tasks * ov.task) if ov.task > 0 else math.inf
        cap, binds = capacity(strategy, bound, sched)
        rates = [f * cap for f in loads]
        if cap < bound and loads:  # past the scheduler's bound too: a granularity that fuses under load may get there
            rates.append(max(loads) * bound)
        plans.append((m, kind, strategy, config, counts, threads, n_tasks, bound, sched, cap, binds, rates))
    bar = None
    if progress:  # on stderr: scripts/sweep.sh shows it on the terminal (papermill --log-output)
        from ..progress import PointProgress

        # a simulated point takes well under a second: a line every few seconds, not one a point
        bar = PointProgress(sum(len(p[-1]) for p in plans) * len(seeds), "simulated points (scale grid)",
                            announce=False, mininterval=5.0)
    rows = []
    for m, kind, strategy, config, counts, threads, n_tasks, bound, sched, cap, binds, rates in plans:
        usd = hourly(counts) if strategy != "centralized" else prices.EC2_PRICES[types[0]][0]
        for rate in rates:
            f = rate / cap
            for sd in seeds:
                if bar is not None:
                    bar.start(f"{strategy}, {m} x {kind} at load {f:g} of its capacity, seed {sd}")
                bench = BenchConfig("sim://", rate=rate, duration=max(requests / rate, min_duration), warmup=2.0,
                                    timeout=600.0, seed=sd)
                s = simulate(config, costs, ov, bench, seed=sd).summary
                lat = s.latency_ms or {}
                p99 = lat.get("p99", math.inf)
                keeps_up = s.ok / (s.duration + lat.get("p50", math.inf) / 1000) if s.ok else 0.0  # see planner
                rows.append({
                    "case": "1: centralized" if strategy == "centralized" else case(m), "machines": m, "cluster": kind,
                    "instances": " + ".join(f"{c} x {t}" for t, c in counts.items()) if strategy != "centralized" else f"1 x {types[0]} (1 thread)",
                    "strategy": strategy, "threads": threads, "core_bound_rps": bound, "load": f, "rate": rate,
                    "throughput": s.throughput, "p50_ms": lat.get("p50", math.nan), "p99_ms": p99,
                    "saturated": bool(s.throughput < 0.95 * min(rate, keeps_up)), "hourly_usd": usd,
                    "granularity": grain, "tasks_per_request": n_tasks, "scheduler_bound_rps": sched,
                    "capacity_rps": cap, "bound": binds, "seed": sd, "requests": s.ok, "simulated": True,
                })
                if bar is not None:
                    bar.done()
    if bar is not None:
        bar.close()
    table = pd.DataFrame(rows)
    table.attrs["objective_s"] = objective
    path = os.path.join(out, FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    table.to_csv(path, index=False)
    return table


def output_folder(folder: str, out: str | None = None, option: str = "-p out") -> str:
    """Where the scale grid's files go: ``out``, else the run folder, refused in one line when git tracks it."""
    from ..experiments.paths import derived_out

    return derived_out(folder, out, f"{FILE}, charts/scale_*.png and the REPORT section", option)


def _per_seed(table: pd.DataFrame, objective: float) -> pd.DataFrame:
    """One row per (machines, cluster, strategy, seed): p50 at the lowest load, best throughput, and the highest rate
    up to the :func:`capacity` of a point holding ``p99 <= objective`` s unsaturated (NaN: none holds it). An unsaturated point serves all it
    is offered; its ``throughput`` is lower by the drain after the window (ok / (window + the last latencies))."""
    if "seed" not in table:  # a table made before seeds were: one seed
        table = table.assign(seed=0)
    out = []
    for (m, kind, strategy, sd), g in table.groupby(["machines", "cluster", "strategy", "seed"], sort=False):
        g = g.sort_values("rate")
        sched = float(g["scheduler_bound_rps"].iloc[0]) if "scheduler_bound_rps" in g else math.inf
        cap = capacity(strategy, float(g["core_bound_rps"].iloc[0]), sched)[0]
        # past its capacity a point cannot hold in steady state, whatever a window of seconds shows of its queue
        ok = g[(g["p99_ms"] <= objective * 1000) & ~g["saturated"] & (g["rate"] <= cap * (1 + 1e-9))]
        out.append({"machines": m, "cluster": kind, "strategy": strategy, "seed": sd,
                    "p50": float(g["p50_ms"].iloc[0]), "max_throughput": float(g["throughput"].max()),
                    "held": float(ok["rate"].max()) if len(ok) else math.nan})
    return pd.DataFrame(out)


def summarize(table: pd.DataFrame, objective: float = 1.0) -> pd.DataFrame:
    """One row per (machines, cluster, strategy), means over the seeds: p50 at the lowest load, best throughput
    (and its spread over the seeds: max - min), what bounds it, and the cost per million predictions at the highest
    rate that holds ``p99 <= objective`` s unsaturated."""
    seeds = _per_seed(table, objective)
    out = []
    for (m, kind, strategy), g in table.groupby(["machines", "cluster", "strategy"], sort=False):
        p = seeds[(seeds["machines"] == m) & (seeds["cluster"] == kind) & (seeds["strategy"] == strategy)]
        held = float(p["held"].mean()) if p["held"].notna().all() else math.nan  # a seed holding nothing: none
        usd = float(g["hourly_usd"].iloc[0])
        sched = float(g["scheduler_bound_rps"].iloc[0]) if "scheduler_bound_rps" in g else math.inf
        cap, binds = capacity(strategy, float(g["core_bound_rps"].iloc[0]), sched)
        out.append({
            "case": g["case"].iloc[0], "machines": m, "cluster": kind, "instances": g["instances"].iloc[0],
            "strategy": strategy, "seeds": len(p), "p50_low_load_ms": round(float(p["p50"].mean())),
            "max_throughput": round(float(p["max_throughput"].mean()), 2),
            "max_throughput_spread": round(float(np.ptp(p["max_throughput"])), 2) if len(p) > 1 else None,
            "core_bound_rps": round(float(g["core_bound_rps"].iloc[0]), 2),
            "capacity_rps": round(cap, 2), "bound": binds,
            f"rate_at_p99<={objective:g}s": round(held, 2) if held == held else None,
            "usd_per_hour": round(usd, 4),
            "usd_per_million": round(usd / (held * 3600) * 1e6, 2) if held == held else None,
        })
    return pd.DataFrame(out)


def _ties(r) -> str:
    """The strategies tied with a ranking's best, as the tables print them."""
    if r is None or not r.judged:
        return "not judged"
    return ", ".join(r.tied) or "none"


def best_with_ties(table: pd.DataFrame, summ: pd.DataFrame, objective: float = 1.0) -> pd.DataFrame:
    """Per (machines, cluster): the distributed strategy of the highest max throughput and the strategies tied with it
    (column ``tied``), and the one of the lowest p50 at low load with its ties (``lowest_p50``); ranked by
    :func:`stockdag.lab.experiments.stats.rank`: seeds paired, a 95% interval on the ratios, ``not judged`` below its
    minimum of seeds."""
    from ..experiments import stats

    seeds = _per_seed(table, objective)
    dist = summ[~summ["strategy"].isin(["centralized", "replicated"])]
    out = []
    for (m, kind), g in dist.groupby(["machines", "cluster"], sort=False):
        p = seeds[(seeds["machines"] == m) & (seeds["cluster"] == kind) & seeds["strategy"].isin(set(g["strategy"]))]
        by = {k: v for k, v in p.groupby("strategy", sort=False)}
        r = stats.rank({k: dict(zip(v["seed"], v["max_throughput"])) for k, v in by.items()}, "max_throughput", False)
        low = stats.rank({k: dict(zip(v["seed"], v["p50"])) for k, v in by.items()}, "p50", True)
        row = g[g["strategy"] == (r.best if r is not None else g["strategy"].iloc[0])].iloc[0].to_dict()
        row["tied"] = _ties(r)
        if low is not None:
            row["lowest_p50"] = f"{low.best_value:.0f} {low.best}" + (f" (tied: {_ties(low)})" if low.judged else "")
        else:
            row["lowest_p50"] = f"{row['p50_low_load_ms']} {row['strategy']}"
        out.append(row)
    return pd.DataFrame(out)


def bound_note(summ: pd.DataFrame, table: pd.DataFrame) -> str:
    """What bounds the distributed max req/s and how ties were judged, computed from the table."""
    from ..experiments.stats import MIN_REPEATS

    dist = summ[(summ["cluster"] == "homogeneous") & ~summ["strategy"].isin(["centralized", "replicated"])]
    if "scheduler_bound_rps" not in table or not len(dist):
        return ""
    sched, tasks = float(table["scheduler_bound_rps"].iloc[0]), _tasks(table)
    follows = "capacity_rps" in table
    by = dist.drop_duplicates("machines").set_index("machines")
    bound_by = sorted(int(m) for m in by.index[by["bound"] == "scheduler"])
    if bound_by:
        m = bound_by[0]
        first = (f"from {m} machines on the scheduler binds first (core bound {by['core_bound_rps'].loc[m]:g} req/s)"
                 + (f", so distributed rates there are fractions of {sched:.0f} req/s (plus one past the core bound)"
                    if follows else ""))
        over = dist[dist["max_throughput"] > sched]
        if len(over):
            top = over.loc[over["max_throughput"].idxmax()]
            first += (f"; a request fused under load (granularity {table['granularity'].iloc[0]}) passes it once, so an "
                      f"overloaded point gets past that bound at seconds of latency ({top['strategy']} at "
                      f"{int(top['machines'])} machines: {top['max_throughput']:g} req/s)")
    else:
        first = "at every size the cores bind first"
    held_col = next((c for c in summ.columns if c.startswith("rate_at_p99")), None)
    gaps = []
    for m in sorted(int(x) for x in by.index):
        rows = dist[(dist["machines"] == m) & dist["usd_per_million"].notna()]
        if held_col and len(rows):
            r = rows.loc[rows["usd_per_million"].idxmin()]
            if r[held_col] < 0.8 * r["capacity_rps"]:
                gaps.append(f"{m} machines: {r[held_col]:g} req/s, {r[held_col] / r['capacity_rps']:.0%} of its bound "
                            f"{r['capacity_rps']:g}")
    if gaps:
        first += ("; the cheapest distributed cost is at a rate well below the bound where the grid has no rate between "
                  "the last that holds the objective and the bound (" + "; ".join(gaps) + "): the grid raises it there, "
                  "not the machines")
    loads = ", ".join(f"{x:g}" for x in sorted(table["load"].unique()))
    of = "each row's bound" if follows else "the core bound (a table made before rates followed the bound)"
    n = int(summ["seeds"].min())
    ties = (f"ties with the best judged over {n} paired seeds (95% interval)" if n >= MIN_REPEATS else
            f"{n} seed(s) a point, fewer than the {MIN_REPEATS} a tie needs: every pick among strategies within a few "
            "per cent of each other may be the seed's")
    return (f"Max req/s of a distributed request is bound by the lower of the core bound (vCPUs / CPU s per request) "
            f"and one scheduler's {tasks} tasks x {1e3 / (sched * tasks):.2f} ms = {sched:.0f} req/s: {first}. "
            f"Offered rates: {loads} of {of}; {ties}.")


def _tasks(table: pd.DataFrame) -> int:
    """Tasks of one distributed request in the table (12 before granularity was modelled: one a stage)."""
    return int(table["tasks_per_request"].iloc[0]) if "tasks_per_request" in table else 12


def charts(table: pd.DataFrame, folder: str, objective: float = 1.0) -> dict[str, str]:
    """Throughput vs machines with the core bound, p99 vs load, cost per million predictions; all labelled simulated."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = os.path.join(folder, "charts")
    os.makedirs(out_dir, exist_ok=True)
    summ = summarize(table, objective)
    homo = summ[summ["cluster"] == "homogeneous"]
    made = {}

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for strategy, g in homo[homo["strategy"] != "centralized"].groupby("strategy", sort=False):
        ax.plot(g["machines"], g["max_throughput"], marker="o", ms=3, label=f"{strategy} (simulated)")
    bound = homo.drop_duplicates("machines")
    ax.plot(bound["machines"], bound["core_bound_rps"], "k--", label="core bound (vCPUs / CPU s per request)")
    if "scheduler_bound_rps" in table:
        ax.axhline(float(table["scheduler_bound_rps"].iloc[0]), color="grey", ls=":",
                   label=f"one Dask scheduler's bound (1 / ({_tasks(table)} tasks x task overhead))")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set(xlabel="machines", ylabel="achieved throughput (req/s)",
           title="SIMULATED: throughput vs machines (homogeneous)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=6)
    fig.tight_layout()
    made["scale_throughput.png"] = os.path.join(out_dir, "scale_throughput.png")
    fig.savefig(made["scale_throughput.png"], dpi=110)
    plt.close(fig)

    top = int(table["machines"].max())
    fig, ax = plt.subplots(figsize=(7, 4.5))
    t = table[(table["machines"] == top) & (table["cluster"] == "homogeneous")]
    t = t.groupby(["strategy", "rate"], sort=False)["p99_ms"].mean().reset_index()  # the mean over the seeds
    for strategy, g in t.groupby("strategy", sort=False):
        ax.plot(g["rate"], g["p99_ms"], marker="o", ms=3, label=f"{strategy} (simulated)")
    ax.axhline(objective * 1000, color="k", ls=":", label=f"objective p99 {objective:g} s")
    ax.set_yscale("log")
    ax.set(xlabel="offered rate (req/s)", ylabel="p99 latency (ms), mean over seeds",
           title=f"SIMULATED: p99 vs load, {top} machines")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=6)
    fig.tight_layout()
    made["scale_p99.png"] = os.path.join(out_dir, "scale_p99.png")
    fig.savefig(made["scale_p99.png"], dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for (strategy, kind), g in summ[summ["strategy"] != "centralized"].groupby(["strategy", "cluster"], sort=False):
        g = g.dropna(subset=["usd_per_million"])
        if len(g):
            ax.plot(g["machines"], g["usd_per_million"], marker="o", ms=3, ls="-" if kind == "homogeneous" else "--",
                    label=f"{strategy}, {kind} (simulated)")
    ax.set_xscale("log", base=2)
    ax.set(xlabel="machines", ylabel="USD per million predictions",
           title=f"SIMULATED: cost per million predictions at p99 <= {objective:g} s\n"
                 f"(EC2 on-demand {prices.PRICES_REGION} prices of {prices.PRICES_DATE})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=5, ncol=2)
    fig.tight_layout()
    made["scale_cost.png"] = os.path.join(out_dir, "scale_cost.png")
    fig.savefig(made["scale_cost.png"], dpi=110)
    plt.close(fig)
    return made


def _md(frame: pd.DataFrame) -> str:
    cols = list(frame.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join("n/a" if v is None or (isinstance(v, float) and v != v) else str(v) for v in r) + " |"
              for r in frame.itertuples(index=False)]
    return "\n".join(lines)


def section(folder: str, table: pd.DataFrame | None = None, objective: float = 1.0, out: str | None = None) -> str:
    """The REPORT section (markdown) from ``<out>/simulate/scale.csv`` (or ``table``; ``out``: the run folder)."""
    out = out or folder
    if table is None:
        table = pd.read_csv(os.path.join(out, FILE))
    cal = calibrate.load(folder, store_in=out)
    summ = summarize(table, objective)
    cases = summ[(summ["machines"] <= 5) & (summ["cluster"] == "homogeneous")]
    big = summ[summ["machines"] > 5]
    best = pd.concat([best_with_ties(table, big, objective), big[big["strategy"] == "replicated"]])
    best = best.sort_values(["machines", "cluster", "strategy"])
    sched = float(table["scheduler_bound_rps"].iloc[0]) if "scheduler_bound_rps" in table else math.nan
    o = cal["overheads"]
    lines = [
        "## Test cases at n machines (SIMULATED)",
        "",
        f"Every number in this section is **simulated** by `stockdag.lab.simulate`, calibrated on this run's centralized and "
        f"1-worker points ({len(cal['samples'])} traced requests; overheads: request {o['request'] * 1e3:.1f} ms, hop "
        f"{o['hop'] * 1e3:.2f} ms, task {o['task'] * 1e3:.2f} ms, distributed ones from {cal['distributed_overheads_from']}); "
        "check it against the measured points with `stockdag simulate validate " + folder + "`. Machines are EC2 "
        "instances, one worker each with a thread per vCPU, each vCPU as fast as a core of the measuring machine (assumed), "
        f"links {config.get('simulate.link_latency') * 1e3:g} ms / {config.get('simulate.bandwidth') / 1e6:g} MB/s (assumed). Prices: on-demand {prices.PRICES_REGION} of {prices.PRICES_DATE}, "
        f"workers plus a {scheduler_type()} scheduler. Cost per million predictions is at the highest simulated rate, up to the configuration's bound, holding "
        f"p99 <= {objective:g} s unsaturated (mean over the seeds; none where a seed holds it at no rate).",
        "",
        "### Cases 1-4 (n = 5), simulated",
        "",
        _md(cases),
        "",
        "### 8-64 machines: the best distributed strategy per cluster and the replicated baseline, simulated",
        "",
        _md(best),
        "",
        f"One Dask scheduler spends {o['task'] * 1e3:.2f} ms per task (fitted), so a distributed request of "
        f"{_tasks(table)} tasks cannot be served faster than about {sched:.0f} req/s whatever the machines "
        "(simulated); replicated whole requests behind a load balancer are not bound by it.",
        "",
        bound_note(summ, table),
        "",
        *[f"![{d}](charts/{n})\n" for n, d in (("scale_throughput.png", "SIMULATED throughput vs machines"),
                                             ("scale_p99.png", "SIMULATED p99 vs load"),
                                             ("scale_cost.png", "SIMULATED cost per million predictions"))
          if os.path.exists(os.path.join(out, "charts", n))],
        f"Not modelled: Dask's work stealing, the GIL within a multi-threaded worker, the strategy's own planning time on "
        "the scheduler (HEFT over many workers costs milliseconds per request), EC2 CPU credits (t3). The whole table "
        f"is in `{FILE}`.",
    ]
    return "\n".join(lines)


def index_lines(folder: str, objective: float = 1.0) -> list[str]:
    """A run's simulated test cases, compact, for ``results/REPORT.md``: the best strategy at each machine count."""
    if not os.path.exists(os.path.join(folder, FILE)):
        return []
    table = pd.read_csv(os.path.join(folder, FILE))
    summ = summarize(table, objective)
    homo = summ[summ["cluster"] == "homogeneous"]
    best = best_with_ties(table, homo, objective)
    rep = homo[homo["strategy"] == "replicated"].set_index("machines")
    rows = []
    for r in best.to_dict("records"):
        rows.append({"case": r["case"], "machines": r["machines"], "best distributed strategy": r["strategy"],
                     "tied with it": r["tied"], "p50 ms": r["p50_low_load_ms"], "lowest p50 ms": r["lowest_p50"],
                     "max req/s": r["max_throughput"],
                     "spread over seeds": r["max_throughput_spread"], "bound": r["bound"] or "n/a",
                     "replicated max req/s": rep["max_throughput"].get(r["machines"]),
                     "usd per million": r["usd_per_million"]})
    central = homo[homo["strategy"] == "centralized"]
    head = (f"SIMULATED (calibrated on this run; `{FILE}`): centralized on 1 machine "
            f"{central['max_throughput'].iloc[0]:g} req/s, p50 {central['p50_low_load_ms'].iloc[0]:g} ms. "
            "Homogeneous clusters, the best distributed strategy at each size:") if len(central) else \
        f"SIMULATED (calibrated on this run; `{FILE}`), the best distributed strategy at each size:"
    note = bound_note(summ, table)
    return [f"- {head}", "", _md(pd.DataFrame(rows)), "", *([note, ""] if note else [])]


def add_to_report(folder: str, objective: float = 1.0, out: str | None = None) -> bool:
    """Put the simulated section into ``<out>/REPORT.md`` (``out``: the run folder, whose REPORT.md must exist; another
    folder gets a REPORT.md of the section alone) if ``<out>/simulate/scale.csv`` exists; return whether it did."""
    out = out or folder
    path = os.path.join(out, "REPORT.md")
    if not os.path.exists(os.path.join(out, FILE)) or (out == folder and not os.path.exists(path)):
        return False
    text = ""
    if os.path.exists(path):
        with open(path) as f:
            text = f.read()
    if BEGIN in text and END in text:
        text = text[:text.index(BEGIN)].rstrip("\n") + "\n" + text[text.index(END) + len(END):].lstrip("\n")
    block = f"{BEGIN}\n{section(folder, objective=objective, out=out)}\n{END}\n"
    with open(path, "w") as f:
        f.write((text.rstrip("\n") + "\n\n" if text.strip() else "") + block)
    return True


def build(folder: str, objective: float = 1.0, out: str | None = None, **kwargs) -> pd.DataFrame:
    """Everything at once, for ``make experiment``: simulate, draw, and put the section into the REPORT (in ``out``)."""
    out = output_folder(folder, out, "out=")
    table = run_scale(folder, objective=objective, out=out, **kwargs)
    charts(table, out, objective)
    add_to_report(folder, objective, out=out)
    return table

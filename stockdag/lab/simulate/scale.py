"""The design report's test cases at n machines, simulated from a run's calibration.

Cases (n = 5 competing models): 1 centralized; 2 one machine for the n tasks;
3 fewer than n machines (2-4); 4 n machines (5); then 8-64 machines, with one
instance type (homogeneous) or two alternating (mixed), every strategy in
:data:`stockdag.placement.STRATEGIES` plus the replicated baseline, at rates up
to past the core bound. :func:`run_scale` computes the table (one row per
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
LOADS = (0.25, 0.5, 0.75, 0.9, 1.1)   # fractions of the core bound
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


def run_scale(folder: str, *, machines: Sequence[int] = MACHINES, loads: Sequence[float] = LOADS,
              types: Sequence[str] = ("c5.large", "c5.xlarge"), strategies: Sequence[str] | None = None,
              requests: int = 300, min_duration: float = 10.0, objective: float = 1.0, seed: int = 0,
              progress: bool = False, out: str | None = None) -> pd.DataFrame:
    """Simulate the test cases and the scale curves from ``folder``'s calibration; store and return the table.

    Each point is an open-loop run of ``requests`` requests at its rate, but
    at least ``min_duration`` simulated seconds (after a 2 s warm-up): a window
    shorter than a few request latencies cannot show a queue building up.
    The table goes to ``<out>/simulate/scale.csv`` (``out``: see :func:`output_folder`).
    """
    out = output_folder(folder, out)
    cal = calibrate.load(folder, store_in=out)
    costs, ov = calibrate.inputs(cal)
    grain = cal.get("granularity", "stage")  # the measured run's stockdag.pipeline.granularity
    cpu = costs.mean_request()
    strategies = list(strategies or STRATEGIES)
    jobs = [(1, "homogeneous", "centralized")]
    for m in machines:
        for kind in (("homogeneous", "mixed") if m > 1 else ("homogeneous",)):
            jobs += [(m, kind, s) for s in strategies] + [(m, kind, "replicated")]
    bar = None
    if progress:  # on stderr: scripts/sweep.sh shows it on the terminal (papermill --log-output)
        from ..progress import PointProgress

        # a simulated point takes well under a second: a line every few seconds, not one a point
        bar = PointProgress(len(jobs) * len(loads), "simulated points (scale grid)", announce=False, mininterval=5.0)
    rows = []
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
        usd = hourly(counts) if strategy != "centralized" else prices.EC2_PRICES[types[0]][0]
        for f in loads:
            if bar is not None:
                bar.start(f"{strategy}, {m} x {kind} at load {f:g} of the core bound")
            rate = f * bound
            bench = BenchConfig("sim://", rate=rate, duration=max(requests / rate, min_duration), warmup=2.0,
                                timeout=600.0, seed=seed)
            s = simulate(config, costs, ov, bench, seed=seed).summary
            lat = s.latency_ms or {}
            p99 = lat.get("p99", math.inf)
            keeps_up = s.ok / (s.duration + lat.get("p50", math.inf) / 1000) if s.ok else 0.0  # see planner
            rows.append({
                "case": "1: centralized" if strategy == "centralized" else case(m), "machines": m, "cluster": kind,
                "instances": " + ".join(f"{c} x {t}" for t, c in counts.items()) if strategy != "centralized" else f"1 x {types[0]} (1 thread)",
                "strategy": strategy, "threads": threads, "core_bound_rps": bound, "load": f, "rate": rate,
                "throughput": s.throughput, "p50_ms": lat.get("p50", math.nan), "p99_ms": p99,
                "saturated": bool(s.throughput < 0.95 * min(rate, keeps_up)), "hourly_usd": usd,
                "granularity": grain, "tasks_per_request": n_tasks,
                "scheduler_bound_rps": 1 / (n_tasks * ov.task) if ov.task > 0 else math.inf, "simulated": True,
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


def summarize(table: pd.DataFrame, objective: float = 1.0) -> pd.DataFrame:
    """One row per (machines, cluster, strategy): p50 at the lowest load, best throughput, and cost per
    million predictions at the highest simulated rate that holds ``p99 <= objective`` s unsaturated."""
    out = []
    for (m, kind, strategy), g in table.groupby(["machines", "cluster", "strategy"], sort=False):
        g = g.sort_values("rate")
        ok = g[(g["p99_ms"] <= objective * 1000) & ~g["saturated"]]
        best_rate = float(ok["rate"].max()) if len(ok) else math.nan
        usd = float(g["hourly_usd"].iloc[0])
        out.append({
            "case": g["case"].iloc[0], "machines": m, "cluster": kind, "instances": g["instances"].iloc[0],
            "strategy": strategy, "p50_low_load_ms": round(float(g["p50_ms"].iloc[0])),
            "max_throughput": round(float(g["throughput"].max()), 2),
            "core_bound_rps": round(float(g["core_bound_rps"].iloc[0]), 2),
            f"rate_at_p99<={objective:g}s": round(best_rate, 2) if best_rate == best_rate else None,
            "usd_per_hour": round(usd, 4),
            "usd_per_million": round(usd / (best_rate * 3600) * 1e6, 2) if best_rate == best_rate else None,
        })
    return pd.DataFrame(out)


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
    for strategy, g in t.groupby("strategy", sort=False):
        ax.plot(g["rate"], g["p99_ms"], marker="o", ms=3, label=f"{strategy} (simulated)")
    ax.axhline(objective * 1000, color="k", ls=":", label=f"objective p99 {objective:g} s")
    ax.set_yscale("log")
    ax.set(xlabel="offered rate (req/s)", ylabel="p99 latency (ms)", title=f"SIMULATED: p99 vs load, {top} machines")
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
    big = summ[summ["machines"] > 5].sort_values(["machines", "cluster", "max_throughput"], ascending=[True, True, False])
    best = pd.concat([big[big["strategy"] != "replicated"].groupby(["machines", "cluster"]).head(1),
                      big[big["strategy"] == "replicated"]]).sort_values(["machines", "cluster", "strategy"])
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
        f"workers plus a {scheduler_type()} scheduler. Cost per million predictions is at the highest simulated rate holding "
        f"p99 <= {objective:g} s.",
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
    summ = summarize(pd.read_csv(os.path.join(folder, FILE)), objective)
    homo = summ[summ["cluster"] == "homogeneous"]
    dist = homo[~homo["strategy"].isin(["centralized", "replicated"])]
    best = dist.sort_values(["machines", "max_throughput"], ascending=[True, False]).groupby("machines").head(1)
    rep = homo[homo["strategy"] == "replicated"].set_index("machines")
    rows = []
    for r in best.itertuples():
        rows.append({"case": r.case, "machines": r.machines, "best distributed strategy": r.strategy,
                     "p50 ms": r.p50_low_load_ms, "max req/s": r.max_throughput,
                     "replicated max req/s": rep["max_throughput"].get(r.machines),
                     "usd per million": r.usd_per_million})
    central = homo[homo["strategy"] == "centralized"]
    head = (f"SIMULATED (calibrated on this run; `{FILE}`): centralized on 1 machine "
            f"{central['max_throughput'].iloc[0]:g} req/s, p50 {central['p50_low_load_ms'].iloc[0]:g} ms. "
            "Homogeneous clusters, the best distributed strategy at each size:") if len(central) else \
        f"SIMULATED (calibrated on this run; `{FILE}`), the best distributed strategy at each size:"
    return [f"- {head}", "", _md(pd.DataFrame(rows)), ""]


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

"""``stockdag report``: charts and REPORT.md from run folders alone.

Three steps, each its own function: :func:`compute` reads a run folder into a
:class:`ReportData` (numbers only, from :mod:`.analysis`), :func:`draw` makes
every chart of :data:`CHARTS` from it (:mod:`.plots`), and :func:`markdown`
writes the text. A new chart is one entry of :data:`CHARTS`.
"""
from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from ..bench.summary import MIN_SAMPLES
from . import analysis, plots, stats


@dataclass
class ReportData:
    """Everything a report shows, computed from the run folder alone."""

    run: analysis.RunData
    agg: pd.DataFrame        # per configuration and load, mean and CI over repeats
    sat: pd.DataFrame        # per configuration: best throughput, knee, low-load latency
    lim: dict                # physical limits from the measured stage costs
    stages: pd.DataFrame     # one row per traced (request, stage)
    drift: dict              # CPU-speed probes and slowed points
    width: pd.DataFrame      # speed-ups by pipeline width (empty unless the run swept several pipelines)
    kinds: set               # cluster kinds the points ran on, as recorded


@dataclass(frozen=True)
class Chart:
    """A chart of the report: its caption and how to draw it from the data into a file."""

    caption: str
    draw: Callable[[ReportData, str], None]  # may draw nothing when the run has no data for it


#: every chart of a report, by file name under ``charts/``: the one place a chart is named
CHARTS: dict[str, Chart] = {
    "latency_cdf.png": Chart("Latency CDF per configuration (lowest load)",
                             lambda d, path: plots.latency_cdf(d.run.records, path)),
    "throughput.png": Chart("Achieved vs offered throughput, with the core bound and saturation knees",
                            lambda d, path: plots.throughput_vs_load(d.agg, d.lim, path)),
    "p99.png": Chart("p99 latency vs load, with the critical path", lambda d, path: plots.p99_vs_load(d.agg, d.lim, path)),
    "speedup.png": Chart("Speed-up vs workers against the ideal line, the effective cores and the critical-path bound",
                         lambda d, path: plots.speedup(d.sat, d.lim, path)),
    "width_speedup.png": Chart("Latency and throughput speed-up vs pipeline width (competing models), with each "
                               "pipeline's critical-path and core bounds",
                               lambda d, path: plots.width_speedup(d.width, path)),
    "gantt.png": Chart("One median request per configuration: which worker ran each stage",
                       lambda d, path: plots.gantt(d.stages, path)),
    "stages.png": Chart("Mean time per stage", lambda d, path: plots.stage_costs(d.stages, path)),
}
#: the interactive page beside the charts
INTERACTIVE = "charts.html"


def _fmt(v, spec=".2f"):
    return "n/a" if v is None or (isinstance(v, float) and v != v) else format(v, spec)


def _table(frame: pd.DataFrame) -> str:
    cols = list(frame.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in frame.iterrows():
        lines.append("| " + " | ".join(str(r[c]) for c in cols) + " |")
    return "\n".join(lines)


def answered_lines(data: ReportData) -> list[str]:
    """:func:`answer` of the run; in a run that served configurations both ways, of those served as its first-listed
    centralized baseline was (a process of its own, as a user runs it), the others being compared in their own section."""
    served = _served_apart(data.run)
    kind = served.get(analysis.central_label(data.run.config, data.sat["label"])) if served else None
    if not kind:
        return answer(data.sat, data.lim, data.run.config["machine"], data.agg)
    keep = data.sat["label"].map(lambda label: served.get(label) == kind)
    agg = data.agg[data.agg["label"].map(lambda label: served.get(label) == kind)]
    others = [label for label, how in served.items() if how != kind]
    return [f"Of the configurations served `{kind}` ({', '.join(data.sat.loc[keep, 'label'])}); the others "
            f"({', '.join(others)}) are compared with their twins in \"The server in a process of its own against in "
            "the sweep's process\"."] + answer(data.sat[keep], data.lim, data.run.config["machine"], agg)


def answer(sat: pd.DataFrame, lim: dict, machine: dict, agg: pd.DataFrame | None = None) -> list[str]:
    """The research question answered in sentences computed from the numbers.

    ``agg`` (:func:`analysis.aggregate`) tells whether the lowest load already queued requests: then the latency
    sentence gives way to :func:`saturated_lines` (throughput against its bound).
    """
    out = []
    queued = analysis.in_system_at_lowest_load(agg) if agg is not None else None
    base = sat[sat["mode"] == "centralized"]
    if base.empty:
        return ["No centralized baseline in this run: ratios cannot be given."]
    # several centralized machines (a fast and a slow one): distribution is measured against the best single machine
    b = base.sort_values(["max_throughput", "p50_low_load_ms"], ascending=[False, True]).iloc[0]
    dist = sat[sat["mode"] == "distributed"]
    rep = sat[sat["mode"] == "replicated"]
    # the capacity the bound was computed with (re-measured per block in newer runs), not only the one at the start
    cores, cap = machine.get("cores"), lim.get("parallel_capacity", machine.get("parallel_capacity"))
    which = (f" ({b['label']}, the best of {len(base)} single machines by throughput, then p50; every configuration against "
             "each is below)" if len(base) > 1 else "")
    out.append(f"Centralized baseline{which}: {b['max_throughput']:.2f} req/s at best, p50 {b['p50_low_load_ms']:.0f} ms "
               "at the lowest load.")
    if not dist.empty:
        best_t = dist.loc[dist["max_throughput"].idxmax()]
        best_l = dist.loc[dist["p50_low_load_ms"].idxmin()]
        verdict = "improves" if best_t["max_throughput"] > 1.05 * b["max_throughput"] else "does not improve"
        # a testbed configuration's bound is its machines' quotas (the test-case table), not this host's cores
        bound = ("against its machines' bound in the test-case table below" if best_t["label"] in _testbed(sat) else
                 f"against a bound of {_fmt(lim.get('throughput_bound_rps'))} req/s ({cap} effective of {cores} cores)")
        out.append(f"Throughput: distributing the stages {verdict} it here: the best distributed configuration "
                   f"({best_t['label']}) reached {best_t['max_throughput']:.2f} req/s = "
                   f"{best_t['max_throughput'] / b['max_throughput']:.2f}x centralized, {bound}.")
        why = bound_exceeded(sat, lim)
        if why:
            out.append(why)
        lverdict = "lower" if best_l["p50_low_load_ms"] < 0.95 * b["p50_low_load_ms"] else "not lower"
        if queued is not None and queued > QUEUED:
            out += saturated_lines(sat, lim, queued)
        else:
            out.append(f"Latency: the best distributed p50 at low load ({best_l['label']}, {best_l['p50_low_load_ms']:.0f} ms) "
                       f"is {lverdict} than centralized ({b['p50_low_load_ms'] / best_l['p50_low_load_ms']:.2f}x speed-up; "
                       f"the critical path allows at most {_fmt(lim.get('latency_speedup_bound'))}x).")
        ranked = dist.sort_values("max_throughput", ascending=False)
        if len(ranked) > 1 and "max_throughput_ci" in ranked and ranked["max_throughput_ci"].iloc[0] > 0:
            a, b2 = ranked.iloc[0], ranked.iloc[1]
            if a["max_throughput"] - a["max_throughput_ci"] <= b2["max_throughput"] + b2["max_throughput_ci"]:
                out.append(f"The two best distributed throughputs ({a['label']}, {b2['label']}) lie within each other's "
                           "95% intervals: no strategy wins on throughput in this run.")
        out.append("Strategies by best throughput: " + ", ".join(
            f"{r['label']} {r['max_throughput']:.2f}" for _, r in ranked.iterrows()) + " req/s.")
        ranked = dist.sort_values("p50_low_load_ms")
        out.append("Strategies by p50 at low load: " + ", ".join(
            f"{r['label']} {r['p50_low_load_ms']:.0f}" for _, r in ranked.iterrows()) + " ms.")
    if not rep.empty:
        r = rep.loc[rep["max_throughput"].idxmax()]
        out.append(f"Replicated baseline ({r['label']}, whole requests on separate processes): "
                   f"{r['max_throughput']:.2f} req/s = {r['max_throughput'] / b['max_throughput']:.2f}x centralized.")
    return out


def _load_text(loop: str, load: float) -> str:
    return f"open loop {load:g} req/s" if loop == "open" else f"closed loop {int(load)} user" + ("" if int(load) == 1 else "s")


def _ratio_text(r: stats.Ratio, spec: str = ".2f") -> str:
    """``1.18x [1.10-1.27]``, or ``1.18x`` where too few repeats give no interval."""
    if not r.judged:
        return f"{r.value:{spec}}x"
    return f"{r.value:{spec}}x [{r.low:{spec}}-{r.high:{spec}}]"


def _metric_values(rows: pd.DataFrame, col: str) -> dict[str, dict[int, float]]:
    """``{label: {repeat: value}}`` of one column (the shape :mod:`.stats` takes)."""
    return {label: {int(r): float(v) for r, v in zip(g["repeat"], g[col])} for label, g in rows.groupby("label", sort=False)}


#: the metrics strategies are ranked on: (summary column, words, unit, format, lower is better, at which loads)
RANKED_METRICS = (("p50_ms", "p50", "ms", ".0f", True, "every"), ("throughput", "throughput", "req/s", ".2f", False, "top"))


def _served_apart(run) -> dict[str, str]:
    """``{label: process | thread}`` when the run served configurations both ways (compared only within a kind), else {}."""
    kinds = analysis.server_kinds(run) if hasattr(run, "points") else {}
    return kinds if len({k for k in kinds.values() if k in ("process", "thread")}) > 1 else {}


def _groups(run) -> list[tuple[str, pd.DataFrame]]:
    """Distributed points by (cluster, workers, pipeline, and how the server ran when the run served both ways): the
    configurations that differ only in their strategy."""
    s = run.summary
    dist = s[s["mode"] == "distributed"] if len(s) else s
    if dist.empty:
        return []
    pipe_of = {c["label"]: c.get("pipeline") for c in run.config.get("configurations", [])}
    kinds = _served_apart(run)
    dist = dist.assign(_cluster=dist["cluster"].fillna("").astype(str), _pipe=dist["label"].map(pipe_of).fillna(""),
                       _served=dist["label"].map(lambda label: kinds.get(label, "")))
    out = []
    for (cluster, workers, pipe, served), g in dist.groupby(["_cluster", "workers", "_pipe", "_served"], sort=False):
        where = f"cluster `{os.path.basename(cluster) or 'embedded LocalCluster'}`, {int(workers)} worker" + (
            "" if int(workers) == 1 else "s") + (f", pipeline `{pipe}`" if pipe else "") + (
            f", server {served}" if served else "")
        out.append((where, g))
    return out


def strategy_lines(run) -> list[str]:
    """For each (cluster, profile, load): the best strategy, those tied with it, and each one's ratio to ``random``.

    Computed from the run's per-repeat points (:mod:`.stats`); says so where too few repeats allow no judgement.
    """
    profile = run.config.get("params", {}).get("profile")
    out = []
    for where, g in _groups(run):
        if g["label"].nunique() < 2:
            continue
        top = max(g["load"]) if len(g) else None
        for (loop, load), at in g.groupby(["loop", "load"], sort=True):
            for col, words, unit, spec, lower, when in RANKED_METRICS:
                if when == "top" and load != top:
                    continue
                ranking = stats.rank(_metric_values(at, col), words, lower)
                if ranking is None:
                    continue
                head = (f"{where}, profile `{profile}`, {_load_text(loop, load)}, {words}: best "
                        f"{ranking.best} {ranking.best_value:{spec}} {unit}")
                others = sorted(ranking.versus_best.items(), key=lambda kv: kv[1].value, reverse=lower)
                listed = ", ".join(f"{k} {_ratio_text(r)}" for k, r in others)
                if not ranking.judged:
                    out.append(f"{head} (the others, as a ratio to it: {listed}); {ranking.repeats} repeat(s): "
                               f"no tie can be judged (it takes {stats.MIN_REPEATS}).")
                    continue
                tied = ranking.tied
                out.append(f"{head}; " + (f"statistically tied with it: {', '.join(tied)}" if tied
                                          else "no other strategy is tied with it")
                           + f" (ratios to it: {listed}).")
        out += _random_lines(where, g)
    return out


def _random_lines(where: str, g: pd.DataFrame) -> list[str]:
    """Each strategy's ratio to the ``random`` control (Böhm and Beránek 2020 found random placement competitive)."""
    control = g[g["strategy"] == "random"]["label"].unique()
    if len(control) == 0:
        return [f"{where}: no `random` control ran, so no strategy here is shown to beat chance placement."]
    out = []
    low = g["load"].min()
    for (loop, load), at in g.groupby(["loop", "load"], sort=True):
        for col, words, _unit, _spec, lower, when in RANKED_METRICS:
            if (when == "top" and load != g["load"].max()) or (when == "every" and load != low):
                continue
            ratios = stats.versus(_metric_values(at, col), control[0])
            if not ratios:
                continue
            better = [k for k, r in ratios.items() if r.judged and ((r.high < 1) if lower else (r.low > 1))]
            # named, not left to be inferred: a strategy whose interval reaches random's is no better than chance here
            not_better = [k for k, r in ratios.items() if r.judged and k not in better]
            if not all(r.judged for r in ratios.values()):
                verdict = f"; too few repeats to judge (it takes {stats.MIN_REPEATS})."
            elif not better:
                verdict = "; none is shown better than random."
            else:
                verdict = f"; better than random: {', '.join(better)}" + (
                    f"; not shown better than random: {', '.join(not_better)}." if not_better else ".")
            out.append(f"{where}, {_load_text(loop, load)}, {words} against `random`: "
                       + ", ".join(f"{k} {_ratio_text(r)}" for k, r in ratios.items()) + verdict)
    return out


def server_lines(data: ReportData) -> list[str]:
    """Each configuration the run served both ways (:func:`analysis.server_twins`): in a process of its own against
    in the sweep's, as ratios process / thread paired by repeat (p50 at the lowest load, throughput at the highest,
    the median request's stage time at the lowest load), then how many moved which way."""
    twins = analysis.server_twins(data.run)
    if not twins:
        return []
    s = data.run.summary
    stage = (analysis.compute_tax(data.stages).set_index("label")["stage_ms"] if len(data.stages)
             else pd.Series(dtype=float))
    out: list[str] = []
    moved: dict[str, list[stats.Ratio]] = {"p50": [], "throughput": []}
    for proc, thread in twins:
        pair = s[s["label"].isin([proc, thread])]
        parts = []
        for col, pick, key, words, unit, spec in (("p50_ms", min, "p50", "p50 at the lowest load", "ms", ".0f"),
                                                  ("throughput", max, "throughput", "throughput at the highest load",
                                                   "req/s", ".2f")):
            for loop, g in pair.groupby("loop", sort=True):
                at = g[g["load"] == pick(g["load"])]
                values = _metric_values(at, col)
                if proc not in values or thread not in values:
                    continue
                reps = sorted(set(values[proc]) & set(values[thread]))
                r = stats.paired_ratio([values[proc][i] for i in reps], [values[thread][i] for i in reps])
                if r.n == 0:
                    continue
                moved[key].append(r)
                mean = {k: sum(values[k][i] for i in reps) / len(reps) for k in (proc, thread)}
                parts.append(f"{words} ({_load_text(loop, float(at['load'].iloc[0]))}) {mean[proc]:{spec}} against "
                             f"{mean[thread]:{spec}} {unit} ({_ratio_text(r)})")
        if proc in stage.index and thread in stage.index:
            parts.append(f"stage time at the lowest load {stage[proc]:.0f} against {stage[thread]:.0f} ms "
                         f"({stage[proc] / stage[thread]:.2f}x)")
        if parts:
            out.append(f"{proc} against {thread}: " + "; ".join(parts) + ".")
    tally = []
    for key, better in (("p50", "the lower p50"), ("throughput", "the higher throughput")):
        rs = moved[key]
        if not rs:
            continue
        won = [r for r in rs if (r.value < 1 if key == "p50" else r.value > 1)]
        shown = [r for r in won if r.judged and not r.tied]
        tally.append(f"{len(won)} of {len(rs)} had {better}" + (
            f" ({len(shown)} with an interval that excludes 1)" if all(r.judged for r in rs) else ""))
    if tally:
        judged = all(r.judged for rs in moved.values() for r in rs)
        out.append("In a process of its own, " + " and ".join(tally) + (
            "." if judged else f" (point estimates: it takes {stats.MIN_REPEATS} repeats to judge a difference)."))
    return out


def server_section(data: ReportData) -> list[str]:
    """The REPORT.md section on where the server ran (empty unless some configuration was served both ways)."""
    lines = server_lines(data)
    if not lines:
        return []
    return ["## The server in a process of its own against in the sweep's process", "",
            "Configurations served both ways in this run, interleaved in its order: `process` is `stockdag serve` in a "
            "process of its own, as a user runs it; `thread` serves from the sweep's process, beside the load generator. "
            f"Ratios are process / thread; method: {stats.METHOD}.", "",
            *[f"- {line}" for line in lines], ""]


def strategy_section(run) -> list[str]:
    """The REPORT.md section "Which strategy, with confidence" (empty when no two strategies ran side by side)."""
    lines = strategy_lines(run)
    if not lines:
        return []
    return ["## Which strategy, with confidence", "",
            f"Method: {stats.METHOD}; a ratio's interval is shown where the run has at least {stats.MIN_REPEATS} "
            "repeats. p50 is ranked at every load, throughput at the highest.", "",
            *[f"- {s}" for s in lines], ""]


def versus_centralized_lines(run) -> list[str]:
    """Each configuration against the centralized baseline: p50 at the lowest load, throughput at the highest,
    paired by repeat, grouped by the verdict the numbers give (loses, tied, beats; or only slower/faster where too
    few repeats allow no judgement)."""
    s = run.summary
    if not len(s) or (s["mode"] == "centralized").sum() == 0:
        return []
    bases = list(dict.fromkeys(s[s["mode"] == "centralized"]["label"]))
    # several centralized machines (a fast and a slow one): every configuration against each, so the answer
    # "distribution against the best single machine" is there, not only against the first; a run that served
    # both ways compares each configuration with the baseline served its own way
    served = _served_apart(run)
    return [line for base in bases for line in _versus_one_centralized(
        s[s["label"].map(lambda label: served.get(label, "")) == served.get(base, "")] if served else s, base, named=len(bases) > 1)]


def _versus_one_centralized(s: pd.DataFrame, base: str, named: bool) -> list[str]:
    out = []
    for metric, loadpick, lower, words in (("p50_ms", min, True, "p50 at the lowest load"),
                                           ("throughput", max, False, "throughput at the highest load")):
        verdicts: dict[str, list[str]] = {}
        for (loop, load), at in s.groupby(["loop", "load"], sort=True):
            if load != loadpick(s[s["loop"] == loop]["load"]):
                continue
            for label, r in stats.versus(_metric_values(at, metric), base).items():
                better = (r.value < 1) if lower else (r.value > 1)
                if not r.judged:
                    verdict = (f"{'faster' if lower else 'higher'} than centralized" if better else
                               f"{'slower' if lower else 'lower'} than centralized") + \
                              f" ({r.n} repeat{'' if r.n == 1 else 's'}: not judged)"
                elif r.tied:
                    verdict = "tied with centralized"
                else:
                    verdict = "beats centralized" if better else "loses to centralized"
                verdicts.setdefault(verdict, []).append(f"{label} {_ratio_text(r)}")
        if verdicts:
            head = (f"Against {base}, {words} (ratio to its): " if named else
                    f"Against centralized, {words} (ratio to centralized's): ")
            out.append(head + "; ".join(f"{v}: {', '.join(items)}" for v, items in verdicts.items()) + ".")
    return out


#: requests in the centralized server at once (throughput x p50, Little's law) above which its lowest load queues
QUEUED = 1.5


def saturated_lines(sat: pd.DataFrame, lim: dict, queued: float) -> list[str]:
    """At a load where requests queue, p50 is mostly waiting: compare throughput with its bound, not p50 with the
    critical path (which bounds one request alone)."""
    bound = lim.get("throughput_bound_rps")
    head = (f"Latency is not compared with the critical path here: at the lowest load the centralized server held "
            f"{queued:.1f} requests at once (throughput x p50), so p50 is mostly queueing.")
    if not bound:
        return [head]
    return [head + f" Throughput against the bound of {bound:.2f} req/s ({lim.get('parallel_capacity')} effective cores / "
            f"{lim['total_work_s']:.2f} s of work a request): " + ", ".join(
                f"{r['label']} {r['max_throughput'] / bound:.2f}" for _, r in
                sat.sort_values("max_throughput", ascending=False).iterrows()) + " of it."]


def _testbed(sat: pd.DataFrame) -> set:
    """The labels of ``sat`` that ran on a testbed's scaled machines (``on_testbed``, set by :func:`compute`)."""
    return set(sat.loc[sat["on_testbed"], "label"]) if "on_testbed" in sat else set()


def bound_exceeded(sat: pd.DataFrame, lim: dict) -> str | None:
    """Why a measured throughput lies above the core bound, when one does (never left without a word).

    Testbed configurations are not held to this host's core bound: their machines' quotas bound them."""
    bound = lim.get("throughput_bound_rps")
    sat = sat[~sat["label"].isin(_testbed(sat))] if not sat.empty else sat
    if not bound or sat.empty:
        return None
    over = sat[sat["max_throughput"] > bound]
    if over.empty:
        return None
    names = ", ".join(f"{r['label']} {r['max_throughput']:.3f}" for _, r in over.iterrows())
    return (f"Above the bound: {names} req/s exceed {bound:.3f} req/s. The bound divides the best measured parallel "
            f"capacity ({lim.get('parallel_capacity')}) by the stage work per request measured in the centralized points "
            f"({lim.get('total_work_s', float('nan')):.2f} s); on a shared machine both are taken at other moments than "
            "the throughput (see Measurement conditions), and stage times include waiting for a core, so the bound is an "
            "estimate here, not a limit.")


def oversubscribed(sat: pd.DataFrame, machine: dict) -> str | None:
    """A warning when some configuration runs more processes than the machine has cores (as the demo says)."""
    cores = machine.get("cores")
    if sat.empty or not cores:
        return None
    many = sat[(sat["mode"] != "centralized") & (sat["workers"] > cores) & ~sat["label"].isin(_testbed(sat))]
    if many.empty:
        return None
    return (f"{', '.join(many['label'])}: {int(many['workers'].max())} worker processes on {cores} cores share the cores, "
            f"so throughput cannot scale past {cores}x; such configurations can only add overhead on this machine.")


#: the caveat of a run recorded before the in-process server turned Nagle's algorithm off (commit 3c9e3cd)
NAGLE = ("Recorded before commit 3c9e3cd: the in-process server's connections kept Nagle's algorithm on, so a response "
         "could wait for the client's delayed ACK, up to ~40 ms a request on a kept-alive connection (Linux's delayed-ACK "
         "timeout). Every configuration paid it, so absolute latencies here are too "
         "high and latency ratios are pulled towards 1; compare within this run, and prefer later runs.")


#: how the sweep ran each configuration's server (config.json's server.how; "thread" for runs that predate the key)
SERVED = {
    "process": "Each configuration's server ran as `stockdag serve` in a process of its own, as a user runs it; the "
               "load generator ran in the sweep's process.",
    "thread": "Each configuration's server ran in the sweep's own process, beside the load generator: in centralized "
              "mode the pipeline shared the interpreter and its GIL with the client's event loop, in distributed mode "
              "the embedded LocalCluster's scheduler did too; compare within this run only.",
}


def _clusters(p: dict) -> str:
    """Where the run's configurations ran: the one cluster of the run, or each configuration's."""
    own = sorted({os.path.splitext(os.path.basename(c["cluster"]))[0] for c in p.get("configurations") or []
                  if c.get("cluster")})
    if own:
        return "clusters per configuration: " + ", ".join(f"`{c}`" for c in own)
    return f"cluster `{p.get('cluster') or 'embedded LocalCluster'}`"


def served_lines(run) -> list[str]:
    """Where the servers under test ran: one sentence of :data:`SERVED`, or, in a run that served configurations both
    ways, which ran how (each point's own record; what each kind is, from ``config.json``)."""
    kinds = analysis.server_kinds(run) if hasattr(run, "points") else {}
    seen = {k for k in kinds.values() if k in SERVED}
    if len(seen) < 2:
        return [SERVED[seen.pop() if seen else analysis.server_how(run.config)]]
    server = run.config.get("server")
    what = server.get("kinds", {}) if isinstance(server, dict) else {}
    by: dict[str, list[str]] = {}
    for label, how in kinds.items():
        by.setdefault(how, []).append(label)
    return ["The servers under test ran in two ways, interleaved in this run (as each point recorded): " + "; ".join(
        f"{how}, {what.get(how, how)}: {', '.join(labels)}" for how, labels in by.items()) + "."]



def conditions(run, d: dict) -> list[str]:
    """The measurement conditions: run order, CPU-speed probe spread, slowed points, capacity per block."""
    order = run.config.get("order")
    lines = []
    if order:
        lines.append("Configurations ran in a seeded random order within each repeat: "
                     + "; ".join(f"repeat {i}: " + ", ".join(o) for i, o in enumerate(order)) + ".")
    else:
        lines.append("This run predates interleaving: its configurations ran one after another in a fixed order, so "
                     "a drift of the machine during the run shows as a difference between configurations.")
    if "server" not in run.config:
        lines.append(NAGLE)
    lines += served_lines(run)
    if isinstance(run.config.get("server"), dict) and run.config["server"].get("testbed"):
        lines.append("On the testbed: " + run.config["server"]["testbed"] + ".")
    if not d.get("probes"):
        lines.append("This run has no CPU-speed probes (recorded before they existed): how fast the machine was at each "
                     "point cannot be checked, and its capacity was measured once, at the start.")
        return lines
    lines.append(f"CPU-speed probe over {d['probes']} points: median {1000 * d['median_s']:.1f} ms, range "
                 f"{1000 * d['min_s']:.1f}-{1000 * d['max_s']:.1f} ms (slowest/fastest {d['spread']:.2f}x).")
    if d.get("capacity"):
        lines.append(f"Parallel capacity re-measured per block: {d['capacity'][0]:g}-{d['capacity'][1]:g}x.")
    slow = d["slow_points"]
    if slow:
        lines.append(f"Measured while the machine was more than {100 * (analysis.SLOW_MACHINE - 1):.0f}% slower than its "
                     "median (compare these with care): " + ", ".join(
                         f"{p['label']} at {p['load']:g} (repeat {p['repeat']}, +{p['slower_pct']:.0f}%)" for p in slow) + ".")
    else:
        lines.append(f"No point was measured while the machine was more than {100 * (analysis.SLOW_MACHINE - 1):.0f}% "
                     "slower than its median (single-thread probe).")
    lines += capacity_lines(d)
    return lines + starved_lines(run, d)


def starved_lines(run, d: dict) -> list[str]:
    """A testbed run's points where a machine did not get its quota (:func:`analysis.starved`), with the rule used."""
    if not d.get("cpu_points"):
        return []
    rules = {json.dumps(m["cpu"]["rule"], sort_keys=True) for m in getattr(run, "points", []) if m.get("cpu")}
    rule = json.loads(rules.pop()) if len(rules) == 1 else None
    why = (f"busy in at least {100 * rule['busy']:.0f}% of the point, it used less than {100 * rule['starved_use']:.0f}% "
           f"of its quota while it had work, and the host had less than {rule['starved_idle']:g} CPU idle"
           if rule else "busy, under its quota, the host without idle CPU (each point's record holds its rule)")
    hit = d.get("starved_points") or []
    if not hit:
        return [f"No testbed machine was starved at any of the {d['cpu_points']} points with CPU records "
                f"(starved: {why})."]
    return [f"Measured with a starved testbed machine ({why}; compare these with care): " + ", ".join(
        f"{p['label']} at {p['load']:g} (repeat {p['repeat']}, {', '.join(p['machines'])})" for p in hit) + "."]


def capacity_lines(d: dict) -> list[str]:
    """The points whose block found less parallel capacity than the run's median (the probe alone cannot see it)."""
    if not d.get("capacity"):
        return []
    low = d.get("low_capacity_points") or []
    pct = f"{100 * (analysis.SLOW_MACHINE - 1):.0f}%"
    if not low:
        return [f"No point's block measured a parallel capacity more than {pct} below the run's median "
                f"({d['capacity_median']:g}x)."]
    blocks = {}
    for p in low:
        blocks.setdefault((p["label"], p["repeat"], p["capacity"]), []).append(p["load"])
    return [f"Measured in a block whose parallel capacity was more than {pct} below the run's median "
            f"({d['capacity_median']:g}x), i.e. with fewer cores free than the others had (compare these with care): "
            + ", ".join(f"{label} (repeat {rep}, capacity {cap:g}x, at {', '.join(f'{x:g}' for x in loads)})"
                        for (label, rep, cap), loads in blocks.items()) + "."]


def tasks_text(tasks: dict[str, tuple[int, ...]]) -> str:
    """``the 9 scheduler tasks`` or ``the 1-12 scheduler tasks`` a request of this run's configurations was built as."""
    counts = sorted({n for ns in tasks.values() for n in ns})
    if not counts:
        return "the scheduler tasks"
    span = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
    return f"the {span} scheduler task{'' if counts == [1] else 's'}"


#: a pause between two consecutive points longer than this (seconds) suggests the sweep stopped and was resumed
RESUME_GAP_S = 600.0


def out_of_order(run) -> list[dict]:
    """The points that finished after a point the sweep runs later (``config.json``'s ``order``, then the loads):
    the sweep runs its points in that order and a resume skips finished ones, so these were measured again on a
    resume (after their first measurement was removed). Empty when the run recorded no order."""
    orders, params = run.config.get("order"), run.config.get("params") or {}
    loads = [("open", float(r)) for r in (params.get("rates") or [])] + [("closed", float(u)) for u in (params.get("users") or [])]
    if not orders:
        return []
    timed = []
    for m in run.points:
        try:
            planned = (m["repeat"], orders[m["repeat"]].index(m["config"]["label"]), loads.index((m["loop"], float(m["load"]))))
        except (KeyError, IndexError, ValueError, TypeError):
            return []  # a point the recorded order does not place: no claim either way
        if m.get("finished"):
            timed.append((m["finished"], planned, m))
    late, latest = [], None
    for _, planned, m in sorted(timed, key=lambda t: (t[0], t[1])):
        if latest is not None and planned < latest:
            late.append(m)
        else:
            latest = planned
    return late


def _superseded(run) -> int:
    """How many earlier measurements of points measured again the run keeps in ``superseded/``."""
    d = os.path.join(run.folder, "superseded")
    return len([n for n in os.listdir(d) if n.endswith(".json")]) if os.path.isdir(d) else 0


def provenance_lines(run) -> list[str]:
    """Which code measured the points: a dirty tree, points of other commits (a resume), points measured out of
    the sweep's order (a resume), or a pause that suggests one; and the earlier measurements kept."""
    g = run.config.get("git") or {}
    commit = (g.get("commit") or "?")[:10]
    out = []
    if g.get("dirty"):
        out.append(f"Started from a working tree with uncommitted changes on `{commit}`: the code that measured it is "
                   "not exactly that commit.")
    late = out_of_order(run)
    if late:
        blocks = {}
        for m in late:
            blocks.setdefault(m["config"]["label"], []).append(m)
        when = sorted(m["finished"] for m in late)
        where = "; ".join(f"{label}, repeat {ms[0]['repeat']}, at " + ", ".join(f"{m['load']:g}" for m in ms)
                          for label, ms in blocks.items())
        out.append(f"Resumed: {len(late)} point(s) finished after points the sweep runs later in its recorded order, so "
                   f"they were measured again on a resume ({where}; finished {when[0]}"
                   + (f" to {when[-1]}" if when[-1] != when[0] else "") + ").")
    if kept := _superseded(run):
        out.append(f"`superseded/` keeps {kept} earlier measurement(s) of points measured again (its README.md says "
                   "why); the report reads the points in `points/`.")
    per_point = [m.get("git") for m in run.points]
    if per_point and all(per_point):
        other = {}
        for m in run.points:
            c = m["git"]
            if (c.get("commit"), bool(c.get("dirty"))) != (g.get("commit"), bool(g.get("dirty"))):
                other.setdefault(f"`{(c.get('commit') or '?')[:10]}`" + (" (dirty)" if c.get("dirty") else ""), []).append(m)
        if other:
            out.append("Resumed with other code: " + "; ".join(f"{len(ms)} point(s) measured at {k}" for k, ms in other.items())
                       + f", not at the run's `{commit}`.")
        else:
            out.append(f"Every point recorded the run's commit `{commit}`" + (" (dirty)" if g.get("dirty") else "") + ".")
        return out
    finished = sorted(dt.datetime.fromisoformat(m["finished"]) for m in run.points if m.get("finished"))
    if len(finished) > 1:
        gap = max((b - a).total_seconds() for a, b in zip(finished, finished[1:]))
        head = (f"Its points recorded no commit of their own (before the sweep recorded one per point); the longest "
                f"pause between two finished points is {gap:.0f} s")
        if gap > RESUME_GAP_S:
            out.append(head + ", so the sweep was probably stopped and resumed (code and machine may differ after it).")
        elif late:
            out.append(head + f", under {RESUME_GAP_S / 60:.0f} min, but the resume above measured points with code "
                       "this run cannot name (the same commit only if the tree was not changed in between).")
        else:
            out.append(head + f", under {RESUME_GAP_S / 60:.0f} min, so nothing suggests a resume.")
    return out


def baseline_share(run) -> float | None:
    """The CPUs of the machine the centralized baseline ran on, when that was a testbed machine (else None)."""
    for m in run.points:
        server = m.get("server") or {}
        machines = ((m.get("cluster") or {}).get("cluster") or {}).get("machines") or {}
        if m["config"]["mode"] == "centralized" and server.get("machine") in machines:
            return machines[server["machine"]].get("cpu_share")
    return None


def predictions(lim: dict, tasks: dict[str, tuple[int, ...]] | None = None, share: float | None = None) -> list[str]:
    """What the measured limits imply beyond this machine (bounds, not measurements).

    ``tasks``: the tasks a request of each distributed configuration was built as (:func:`analysis.tasks_per_request`).
    ``share``: the CPUs of the baseline's testbed machine (:func:`baseline_share`): stage times are then that
    machine's, and the bound counts such machines, not cores.
    """
    if not lim:
        return []
    costs = lim.get("stage_costs_s") or {}
    width = analysis.parallel_width(costs)
    work = (f"{lim['total_work_s']:.2f} s of stage work on a machine like the baseline's ({share:g} CPU), so a cluster "
            f"of C such machines" if share else f"{lim['total_work_s']:.2f} CPU-seconds of stage work, so a cluster of C "
            "cores")
    return [
        f"Throughput: each request costs {work} serves at most {1 / lim['total_work_s']:.2f} x C req/s, whichever way the stages are placed; "
        f"stage distribution reaches it only while transfers and {tasks_text(tasks or {})} per request stay small "
        "beside the work, whereas replicating whole requests moves no data.",
        f"Latency: no number of machines brings one request below its critical path, {1000 * lim['critical_path_s']:.0f} ms "
        f"here ({' -> '.join(lim['critical_path'])}): at most {lim['latency_speedup_bound']:.2f}x faster than "
        f"centralized, reached with about {width} workers (the widest set of stages that can run at once) and only by "
        "strategies that spread a request's models; more workers than that can raise throughput, not lower latency.",
    ]


def compute(folder: str) -> ReportData:
    """Every number of a run's report, from its folder alone (nothing is written)."""
    run = analysis.load_run(folder)
    agg = analysis.aggregate(run.summary)
    width = analysis.width_table(run) if len(analysis.pipelines_swept(run)) > 1 else pd.DataFrame()
    sat = analysis.saturation(agg)
    on = testbed_labels(run)  # their bounds are their machines' quotas, not this host's cores
    sat = sat.assign(on_testbed=sat["label"].isin(on)) if not sat.empty else sat
    return ReportData(run=run, agg=agg, sat=sat, lim=analysis.limits(run.records, run.config),
                      stages=analysis.stage_table(run.records), drift=analysis.drift(run.summary), width=width,
                      kinds=analysis.cluster_kinds(run))


def draw(data: ReportData, charts_dir: str) -> list[str]:
    """Draw every chart of :data:`CHARTS` (and the interactive page) into ``charts_dir``; return the names drawn."""
    os.makedirs(charts_dir, exist_ok=True)
    drawn = []
    for name, chart in CHARTS.items():
        path = os.path.join(charts_dir, name)
        if os.path.exists(path):
            os.remove(path)  # a chart this run has no data for must not survive from an earlier build
        chart.draw(data, path)
        if os.path.exists(path):
            drawn.append(name)
    plots.bokeh_page(data.agg, data.run.records, data.lim, os.path.join(charts_dir, INTERACTIVE),
                     f"stockdag run {data.run.config['run_id']}")
    return drawn


def configurations_table(data: ReportData) -> pd.DataFrame:
    """The report's table of configurations: ratios to centralized, intervals and tails as text."""
    sat, run = data.sat, data.run
    base = sat[sat["mode"] == "centralized"]
    table = sat.copy()
    if not base.empty:
        table["throughput_vs_centralized"] = (table["max_throughput"] / base.iloc[0]["max_throughput"]).round(2)
        table["p50_speedup"] = (base.iloc[0]["p50_low_load_ms"] / table["p50_low_load_ms"]).round(2)
    table["strategy"] = table["strategy"].fillna("-")
    repeats = int(run.summary["repeat"].nunique()) if len(run.summary) else 1
    ci = (lambda v, h, spec: f"{v:{spec}} ± {h:{spec}}") if repeats > 1 else (lambda v, h, spec: f"{v:{spec}}")
    table["max_throughput"] = [ci(v, h, ".2f") for v, h in zip(table["max_throughput"], table["max_throughput_ci"])]
    table["p50_low_load_ms"] = [ci(v, h, ".0f") for v, h in zip(table["p50_low_load_ms"], table["p50_low_load_ms_ci"])]
    table["knee_rate"] = table["knee_rate"].round(2)
    table["tail_low_load_ms"] = [analysis.tail_text(p, mx, n) for p, mx, n in
                                 zip(table["p99_low_load_ms"], table["max_low_load_ms"], table["n_low_load"])]
    # the all-requests tail is already the p99 or the max by the same rule: tail_text only words it
    table["all_requests_low_load_ms"] = [f"p50 {a:.0f}, {analysis.tail_text(t, t, n)}" if a == a else "n/a"
                                         for a, t, n in zip(table["all_p50_low_load_ms"], table["all_tail_low_load_ms"],
                                                            table["n_all_low_load"])]
    labels = data.stages["label"].unique() if len(data.stages) else []
    tax = analysis.compute_tax(data.stages, analysis.central_label(data.run.config, labels)).set_index("label")
    # the compute tax: the stages' own time against the baseline's, so a slower compute cannot hide in a ratio
    table["stage_ms_low_load"] = [f"{tax.at[label, 'stage_ms']:.0f}" if label in tax.index else "n/a" for label in table["label"]]
    table["compute_tax"] = [f"{tax.at[label, 'tax']:.2f}x" if label in tax.index and tax.at[label, "tax"] == tax.at[label, "tax"]
                            else "n/a" for label in table["label"]]
    table["cache_hits_low_load"] = cache_hits_text(run.summary, table["label"])
    slow = {}
    for point in {p["point"]: p for p in [*data.drift.get("slow_points", []),
                                           *data.drift.get("low_capacity_points", []),
                                           *data.drift.get("starved_points", [])]}.values():
        slow[point["label"]] = slow.get(point["label"], 0) + 1
    if data.drift.get("probes") or data.drift.get("cpu_points"):
        # points of this configuration measured on a machine > 15% slower (probe), with > 15% less capacity,
        # or with a starved testbed machine
        table["slowed_points"] = [slow.get(label, 0) for label in table["label"]]
    return table.drop(columns=["max_throughput_ci", "p50_low_load_ms_ci", "p99_low_load_ms", "max_low_load_ms",
                               "n_low_load", "all_p50_low_load_ms", "all_tail_low_load_ms", "n_all_low_load"])


def width_answer(width: pd.DataFrame) -> list[str]:
    """From which width each distributed or replicated configuration pays, with and without the extra steps.

    A ratio whose own points or baseline were measured with less of the machine (``flagged``,
    :func:`analysis.width_table`) is left out of every sentence, and a last sentence names what was left out.
    """
    if width.empty:
        return []
    out = []
    flagged = width["flagged"].astype(bool) if "flagged" in width else pd.Series(False, index=width.index)
    left_out, width = width[flagged], width[~flagged]
    others = width[width["mode"] != "centralized"]
    others = others.assign(cfg=others["label"].str.replace(r" \[[^]]*\]$", "", regex=True))
    for (cfg, steps), g in others.groupby(["cfg", "steps"], sort=False):
        g = g.sort_values("models")
        tag = f" with {steps}" if steps else " without extra steps"
        for what, col in (("throughput", "throughput_speedup"), ("latency", "latency_speedup")):
            pays = g[g[col] > 1.05]
            first = (f"pays from {_models(pays['models'].iloc[0])} ({pays[col].iloc[0]:.2f}x)" if not pays.empty
                     else f"does not pay up to {_models(g['models'].max())} (best {g[col].max():.2f}x)")
            out.append(f"{cfg}{tag}: {what} {first}.")
    out += _width_against_replicated(others)
    out += _width_limits(width)
    if not left_out.empty:
        out.append("Left out of the sentences above, measured on a slowed machine or with less parallel capacity than "
                   "the rest (Measurement conditions): " + ", ".join(
                       f"{r.label} ({r.flagged}; throughput {r.throughput_speedup:.2f}x, latency {r.latency_speedup:.2f}x)"
                       for r in left_out.itertuples()) + ". This run claims nothing from them.")
    return out


def _models(n) -> str:
    return f"{int(n)} model" + ("" if int(n) == 1 else "s")


def _width_against_replicated(others: pd.DataFrame) -> list[str]:
    """Distributed throughput over the replicated baseline's, pipeline by pipeline (the other way to use 2 cores)."""
    rep, dist = others[others["mode"] == "replicated"], others[others["mode"] == "distributed"]
    if rep.empty or dist.empty:
        return []
    out = []
    for steps, d in dist.groupby("steps", sort=False):
        r = rep[rep["steps"] == steps].set_index("pipeline")["max_throughput"]
        ratios = [(int(row.models), row.max_throughput / r[row.pipeline]) for row in d.sort_values("models").itertuples()
                  if row.pipeline in r.index]
        if ratios:
            tag = f"with {steps}" if steps else "without extra steps"
            out.append(f"Throughput, distributed over replicated x2 ({tag}): "
                       + ", ".join(f"{x:.2f}x at {_models(n)}" for n, x in ratios)
                       + (": replication keeps the cores busier at every width." if all(x < 0.97 for _, x in ratios)
                          else "."))
    return out


def _width_limits(width: pd.DataFrame) -> list[str]:
    """What each pipeline's own limits say beyond the machine measured here, and any figure above its bound."""
    base = width[width["mode"] == "centralized"].sort_values(["models", "steps"])
    dist = width[width["mode"] == "distributed"]
    out = []
    if len(base) > 1 and base["latency_speedup_bound"].notna().any():
        lo, hi = base.iloc[0], base.loc[base["latency_speedup_bound"].idxmax()]
        best = dist.loc[dist["latency_speedup"].idxmax()] if not dist.empty else None
        out.append(
            f"Beyond this machine: the critical path allows a latency speed-up of {lo['latency_speedup_bound']:.2f}x at "
            f"{_models(lo['models'])} and up to {hi['latency_speedup_bound']:.2f}x at {_models(hi['models'])}"
            f"{' with ' + hi['steps'] if hi['steps'] else ''} (total work / critical path, with as many workers as "
            "stages can run at once)"
            + (f"; on {int(best['workers'])} workers the best measured is {best['latency_speedup']:.2f}x "
               f"({best['label']}), so a wide pipeline has room that only more machines can use, a narrow one has none."
               if best is not None else "."))
    above = width[(width["mode"] != "centralized")
                  & (width["throughput_speedup"] > 1.02 * width["throughput_speedup_bound"])]
    if not above.empty:
        ratio = above["stage_time_ratio"] if "stage_time_ratio" in above else pd.Series(float("nan"), index=above.index)
        faster = above[ratio < 1]
        out.append(
            "Measured above its throughput bound: " + ", ".join(
                f"{r.label} {r.throughput_speedup:.2f}x > {r.throughput_speedup_bound:.2f}x" for r in above.itertuples())
            + ". The bound divides the effective cores by the stage work measured in the centralized server"
            + ("; " + ", ".join(f"{r.label}'s stages took {r.stage_time_ratio:.2f}x that time" for r in faster.itertuples())
               + ", so its own bound is higher by as much." if not faster.empty else
               "; the stages of these configurations did not run faster than there (median stage time per request), "
                 "so the excess is not explained by this run's numbers."))
    return out


def width_section(data: ReportData) -> list[str]:
    """The REPORT.md section of a run that swept several pipelines (the width experiment, experiments/params/width.yaml)."""
    if data.width.empty:
        return []
    cols = ["pipeline", "models", "steps", "label", "throughput_speedup", "throughput_speedup_bound",
            "latency_speedup", "latency_speedup_bound", "critical_path_s", "total_work_s", "stage_time_ratio", "flagged"]
    table = data.width[cols].copy()
    table["steps"] = table["steps"].replace("", "-")
    table["flagged"] = table["flagged"].replace("", "-")
    for col in cols[4:-1]:
        table[col] = [_fmt(v, ".2f" if col.endswith(("bound", "speedup", "ratio")) else ".3f") for v in table[col]]
    return [
        "## Width: speed-up vs the number of competing models",
        "",
        *[f"- {s}" for s in width_answer(data.width)],
        "",
        _table(table),
        "",
        "Each speed-up is over the centralized run of the *same* pipeline; its bounds come from that pipeline's own "
        "measured stage costs (`latency_speedup_bound`: total work / critical path; `throughput_speedup_bound`: effective "
        "cores / total work, over the centralized throughput). A ratio above 1.05 counts as paying. "
        "`stage_time_ratio`: the median request's stage time over the same pipeline's centralized one, at the lowest "
        "load; `flagged`: whose points were measured on a slowed machine or with less parallel capacity (the sentences "
        "above leave those rows out).",
        "",
    ]


def cache_hits_text(summary: pd.DataFrame, labels) -> list[str]:
    """Per configuration, its cache hit rates at its lowest load (mean over repeats), e.g. ``prices 100%, news 0%``."""
    cols = [c for c in summary.columns if c.endswith("_hit_rate")]
    out = []
    for label in labels:
        g = summary[summary["label"] == label]
        g = g[g["load"] == g["load"].min()] if len(g) else g
        rates = [(c.removesuffix("_hit_rate"), g[c].mean()) for c in cols if len(g) and g[c].notna().any()]
        out.append(", ".join(f"{k} {100 * v:.0f}%" for k, v in rates) if rates else "n/a")
    return out


def markdown(data: ReportData, drawn: list[str]) -> str:
    """REPORT.md of a run: its numbers in sentences and tables, and the charts ``drawn``."""
    run, sat, lim = data.run, data.sat, data.lim
    folder = run.folder
    m, p, v, g = run.config["machine"], run.config["params"], run.config["versions"], run.config["git"]
    base = sat[sat["mode"] == "centralized"]
    costs = lim.get("stage_costs_s", {})
    lines = [
        f"# stockdag run {run.config['run_id']}",
        "",
        f"Commit `{g.get('commit')}`{' (with uncommitted changes)' if g.get('dirty') else ''}, started {run.config.get('started')}. "
        f"Machine: {m.get('cpu_model')}, {m.get('cores')} cores (measured parallel capacity {m.get('parallel_capacity')}x), "
        f"{m.get('memory_gib')} GiB, load average at start {m.get('load_average')}. "
        f"dask {v.get('dask')}, Python {v.get('python')}.",
        "",
        f"Profile `{p['profile']}`, cache `{p['cache']}`, request mix `{p['mix']}` over {', '.join(p['symbols'])} "
        f"({p['start']}..{p['end']}), {p['duration']:g} s measured after {p['warmup']:g} s warm-up per point, "
        f"{p['repeats']} repeat(s), load: " + (f"open loop {p['rates']} req/s" if p.get("rates") else "")
        + (f" closed loop {p['users']} users" if p.get("users") else "") + f", {_clusters(p)}.",
        "",
        *(["## Answer on this machine",
           "",
           *[f"- {s}" for s in answered_lines(data)],
           *[f"- {s}" for s in versus_centralized_lines(run)],
           "",
           "## What this predicts for larger clusters",
           "",
           *[f"- {s}" for s in predictions(lim, analysis.tasks_per_request(run), baseline_share(run))],
           ""] if data.width.empty else []),  # pooled over pipelines of different sizes they would mislead
        *test_cases_section(data),
        *strategy_section(run),
        *server_section(data),
        *holdout_section(folder),
        *width_section(data),
        "## Configurations",
        "",
        _table(configurations_table(data)),
        "",
        "`max_throughput`: best achieved req/s over the load levels (mean over repeats, ± the 95% t interval when "
        "there are repeats); `knee_rate`: highest offered "
        "rate still served at >= 90%; latencies from each request's intended send time (open loop), lowest load level; "
        "`p50_low_load_ms` and `tail_low_load_ms` cover successful requests, `all_requests_low_load_ms` every request "
        "(a failure counts with the time it took, a timeout at least the timeout). A p99 is given only where a point "
        f"has at least {MIN_SAMPLES['p99']} requests; below that the tail is the max of the n requests. "
        "`slowed_points`: points measured while the CPU-speed probe was more than 15% slower than the run's median, or in "
        "a block whose parallel capacity was more than 15% below the run's median, or (testbed) with a starved machine. "
        "`stage_ms_low_load`: the median request's stage time at the lowest load (its stages' traced durations "
        "summed: compute, without orchestration or queueing); `compute_tax`: that time over centralized's (above "
        "1.00x the configuration's stages themselves ran slower); `cache_hits_low_load`: the share of requests whose "
        "retriever's answer came from the cache, at the lowest load. Compare configurations at equal hit rates.",
        "",
        "## Measurement conditions",
        "",
        *[f"- {s}" for s in conditions(run, data.drift)],
        *[f"- {s}" for s in provenance_lines(run)],
        "",
        "## Physical limits (from the measured stage costs)",
        "",
        *(["Several pipelines ran here: these limits pool their stage costs; each pipeline's own are in the width "
           "table above.", ""] if not data.width.empty else []),
        f"Total work per request {_fmt(lim.get('total_work_s'), '.3f')} s; critical path "
        f"{_fmt(lim.get('critical_path_s'), '.3f')} s ({' -> '.join(lim.get('critical_path', []))}); "
        f"latency speed-up bound {_fmt(lim.get('latency_speedup_bound'))}x; throughput bound "
        f"{_fmt(lim.get('throughput_bound_rps'))} req/s ({lim.get('parallel_capacity')} effective CPUs / total work).",
        "",
        "| stage | " + " | ".join(costs) + " |",
        "|---|" + "---|" * len(costs),
        "| mean ms | " + " | ".join(f"{1000 * c:.1f}" for c in costs.values()) + " |",
        "",
        "## Charts",
        "",
        *[f"![{CHARTS[name].caption}](charts/{name})\n" for name in drawn],
        f"Interactive: [charts/{INTERACTIVE}](charts/{INTERACTIVE}).",
        "",
        "## Caveats",
        "",
        *([f"- {warn}"] if (warn := oversubscribed(sat, m)) else []),
        *([f"- {why}"] if (why := bound_exceeded(sat, lim)) and base.empty else []),
        *(["- One host: distributed workers are processes on the same cores as the server, the scheduler and the load "
           "generator; network transfers are loopback. Cluster specs of kind `emulated` add CPU quotas and link delays; "
           "`ec2` runs for real."] if not {"ec2", "testbed"} & set(data.kinds) else []),  # the kinds each point recorded
        *(["- Emulated cluster: worker CPU shares are cgroup quotas and link delays a delaying transport; the centralized "
           "baseline runs outside the quotas, on a whole core, so it has an advantage over the distributed configurations."]
          if "emulated" in data.kinds else []),
        *[f"- {s}" for s in testbed_caveats(run)],
        "- Confidence intervals are 95% t intervals over repeats; with one repeat there are none, and shared-machine noise "
        "shows only in the probes above.",
        "- Remake everything here with `stockdag report " + folder + "` (a committed run: `--out DIR` writes it there, "
        "`--in-place` rewrites the run's own files).",
    ]
    return "\n".join(lines) + "\n"


def test_cases_section(data: ReportData) -> list[str]:
    """The design report's test cases, MEASURED, per number of machines (testbed runs: machines of stated shares)."""
    if "testbed" not in data.kinds:
        return []
    t = analysis.test_cases(data.run, data.lim)
    if t.empty:
        return []
    central = analysis.central_label(data.run.config, data.run.summary["label"].unique())

    def cell(v) -> str:
        return _ratio_text(v) if isinstance(v, stats.Ratio) else "" if v is None or (isinstance(v, float) and v != v) else str(v)

    cols = {"case": "test case", "cluster": "cluster", "machines": "machines",
            "p50_speedup_vs_centralized": "p50 speed-up vs centralized",
            "p50_speedup_vs_whole_requests": "p50 speed-up vs whole requests",
            "latency_bound": "critical-path bound", "best_p50": "best p50 (ties)",
            "throughput_speedup_vs_centralized": "throughput speed-up vs centralized",
            "throughput_speedup_vs_whole_requests": "throughput speed-up vs whole requests",
            "throughput_bound": "core bound", "best_throughput": "best throughput (ties)"}
    shown = t.reindex(columns=list(cols)).rename(columns=cols)
    for c in shown.columns:
        shown[c] = [cell(round(v, 2) if isinstance(v, float) else v) for v in shown[c]]
    return ["## Test cases (MEASURED)", "",
            f"Against `{central}` (test case 1) and against whole requests (granularity `request`) on the same "
            "machines: the best strategy's ratio, paired by repeat, with its 95% interval where there are at least "
            f"{stats.MIN_REPEATS} repeats; p50 at the lowest load, throughput at the highest. Bounds from the centralized "
            "machine's stage costs: the critical path for latency, the machines' CPU over the centralized machine's "
            "for throughput.", "", _table(shown), ""]


def holdout_section(folder: str) -> list[str]:
    """The simulator out of sample (``stockdag simulate holdout RUN`` wrote it), when it ran on this run."""
    from ..simulate.validate import HOLDOUT_FILE, holdout_lines

    path = os.path.join(folder, HOLDOUT_FILE)
    if not os.path.exists(path):
        return []
    with open(path) as f:
        result = json.load(f)
    return ["## The simulator, out of sample (SIMULATED)", "", *holdout_lines(result),
            "", f"From `{HOLDOUT_FILE}`; remake it with `stockdag simulate holdout {folder}`.", ""]


def testbed_labels(run) -> set:
    """The configurations whose points ran on a testbed, as each point recorded its deployment."""
    return {m["config"]["label"] for m in run.points
            if ((m.get("cluster") or {}).get("cluster") or {}).get("kind") == "testbed"}


def testbed_caveats(run) -> list[str]:
    """Where a run used the testbed: which configurations ran on its scaled machines, and which outside them.

    Computed from what each point recorded of its deployment: a baseline measured on the host's whole cores beside
    quarter-core machines is not "the same machines", and the REPORT must say so whenever it happens.
    """
    on, off = set(), set()
    for meta in run.points:
        kind = ((meta.get("cluster") or {}).get("cluster") or {}).get("kind")
        (on if kind == "testbed" else off).add(meta["config"]["label"])
    if not on:
        return []
    out = [f"Testbed (scaled machines: network namespaces with CPU quotas and capped links): {', '.join(sorted(on))}; "
           "absolute times are those of the scaled machines, compare ratios."]
    if off:
        out.append(f"Not on the testbed's machines: {', '.join(sorted(off))} ran in this host's own processes, outside "
                   "every quota, so a ratio between them and a testbed configuration compares unequal machines.")
    return out


def build(folder: str, out: str | None = None) -> dict:
    """Remake every chart of a run folder and write its REPORT.md; return the key numbers.

    Everything written (``charts/``, the CSV tables, ``REPORT.md``) goes to ``out``, by default the run folder
    itself; with another ``out`` the run folder is only read, and its simulated test cases (``simulate/scale.csv``,
    when experiments/scale.ipynb ran) are copied there with their charts redrawn, so the REPORT keeps that section.
    """
    out = out or folder
    data = compute(folder)
    drawn = draw(data, os.path.join(out, "charts"))
    data.run.summary.to_csv(os.path.join(out, "summary.csv"), index=False)
    data.agg.to_csv(os.path.join(out, "aggregate.csv"), index=False)
    data.sat.to_csv(os.path.join(out, "saturation.csv"), index=False)
    if not data.width.empty:
        data.width.to_csv(os.path.join(out, "width.csv"), index=False)
    with open(os.path.join(out, "REPORT.md"), "w") as f:
        f.write(markdown(data, drawn))
    from ..simulate import scale  # the simulated test cases, when experiments/scale.ipynb ran

    if os.path.abspath(out) != os.path.abspath(folder) and os.path.exists(os.path.join(folder, scale.FILE)):
        table = pd.read_csv(os.path.join(folder, scale.FILE))
        os.makedirs(os.path.dirname(os.path.join(out, scale.FILE)), exist_ok=True)
        table.to_csv(os.path.join(out, scale.FILE), index=False)
        scale.charts(table, out)
    scale.add_to_report(folder, out=out)
    return {"saturation": data.sat, "limits": data.lim, "aggregate": data.agg, "drift": data.drift, "width": data.width}


def scale_index_lines(folder: str) -> list[str]:
    """The simulated test cases of a run (``stockdag.lab.simulate.scale``), if it has them."""
    from ..simulate.scale import index_lines

    return index_lines(folder)


def build_index(results_dir: str = "results") -> str:
    """results/REPORT.md: every committed run's answer, newest first, with links."""
    runs = sorted((d for d in os.listdir(results_dir) if os.path.exists(os.path.join(results_dir, d, "config.json"))), reverse=True)
    lines = ["# stockdag results", "",
             "Each folder is one run: `config.json` (parameters, versions, commit, machine), raw per-request records "
             "(`points/*.parquet`), `summary.csv`, charts and the executed notebook. `stockdag report results/<run>` "
             "remakes a run's charts and REPORT.md from the folder alone; `stockdag report results` remakes this page.", ""]
    for d in runs:
        folder = os.path.join(results_dir, d)
        with open(os.path.join(folder, "config.json")) as f:
            cfg = json.load(f)
        if not os.path.exists(os.path.join(folder, "REPORT.md")):
            build(folder)
        run = analysis.load_run(folder)
        sat = analysis.saturation(analysis.aggregate(run.summary))
        swept = len(analysis.pipelines_swept(run)) > 1
        if swept:  # the width experiment: its answer is per pipeline, not pooled
            found, chart = width_answer(analysis.width_table(run)), "width_speedup"
        else:
            found, chart = answer(sat, analysis.limits(run.records, run.config), cfg["machine"],
                                 analysis.aggregate(run.summary)), "throughput"
        lines += [f"## [{d}]({d}/REPORT.md)", "",
                  f"{len(sat)} configurations, {len(run.summary)} points; machine {cfg['machine'].get('cores')} cores "
                  f"(parallel capacity {cfg['machine'].get('parallel_capacity')}x); commit `{(cfg['git'].get('commit') or '')[:10]}`.", "",
                  *[f"- {s}" for s in found],
                  *(["- Its latencies carry up to ~40 ms a request of Nagle's delay on the server's connections (fixed "
                     "since, in 3c9e3cd): compare within the run only."] if "server" not in cfg else []), "",
                  *scale_index_lines(folder),
                  # a run made before its chart existed links none (the page links only committed files)
                  *([f"![{chart}]({d}/charts/{chart}.png)"] if os.path.exists(os.path.join(folder, "charts", f"{chart}.png")) else []),
                  ""]
    path = os.path.join(results_dir, "REPORT.md")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path

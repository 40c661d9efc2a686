"""Charts of a run folder: PNG (matplotlib) and one interactive HTML page (Bokeh).

Each function takes what :mod:`stockdag.lab.experiments.analysis` computes from
the folder, so ``stockdag report results/<run>`` remakes every chart.
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers and in CI
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ...pipeline.bounds import stage_layers
from ...pipeline.table import order_stage_ids, spec_for_ids, stage_table


def _table(ids=()):
    """The stage table of the pipeline these (traced) stage ids belong to; the default one when empty."""
    return stage_table(spec_for_ids(ids))


def _colors(labels):
    cmap = plt.get_cmap("tab10")
    return {label: cmap(i % 10) for i, label in enumerate(labels)}


def _finish(fig, ax, path: str, xlabel: str, ylabel: str, title: str, **grid) -> None:
    """Label, grid, legend, save and close: the common end of every single-axes chart."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3, **grid)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def latency_cdf(records: pd.DataFrame, path: str) -> None:
    """CDF of per-request latency for each configuration, at its lowest load level."""
    ok = records[records["status"] == 200]
    labels = list(dict.fromkeys(ok["label"]))
    colors = _colors(labels)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label in labels:
        g = ok[ok["label"] == label]
        low = g[g["load"] == g["load"].min()]
        lat = np.sort(low["latency"].to_numpy()) * 1000
        ax.step(lat, np.arange(1, len(lat) + 1) / len(lat), where="post", color=colors[label],
                label=f"{label} ({low['loop'].iloc[0]} {low['load'].iloc[0]:g})")
    _finish(fig, ax, path, "latency (ms, from intended send time)", "fraction of requests", "Latency CDF at the lowest load level")


def throughput_vs_load(agg: pd.DataFrame, lim: dict, path: str) -> None:
    """Achieved vs offered throughput (open loop), with the ideal line, the core bound and each knee."""
    g = agg[agg["loop"] == "open"]
    if g.empty:
        return
    labels = list(dict.fromkeys(g["label"]))
    colors = _colors(labels)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    top = float(g["offered_rate"].max())
    ax.plot([0, top], [0, top], color="grey", ls=":", label="achieved = offered")
    if lim.get("throughput_bound_rps"):
        ax.axhline(lim["throughput_bound_rps"], color="black", ls="--",
                   label=f"core bound {lim['throughput_bound_rps']:.2f} req/s ({lim['parallel_capacity']:g} effective cores / {lim['total_work_s']:.2f} s work)")
    for label in labels:
        d = g[g["label"] == label].sort_values("load")
        ax.errorbar(d["offered_rate"], d["throughput"], yerr=d["throughput_ci"], marker="o", capsize=3,
                    color=colors[label], label=label)
        kept = d[d["throughput"] >= 0.9 * d["offered_rate"]]
        if not kept.empty:
            k = kept.iloc[-1]
            ax.scatter([k["offered_rate"]], [k["throughput"]], s=120, facecolors="none", edgecolors=colors[label])
    _finish(fig, ax, path, "offered load (req/s)", "achieved throughput (req/s)", "Throughput vs offered load (circle: saturation knee)")


def p99_vs_load(agg: pd.DataFrame, lim: dict, path: str) -> None:
    g = agg.sort_values("load")
    labels = list(dict.fromkeys(g["label"]))
    colors = _colors(labels)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label in labels:
        d = g[g["label"] == label]
        # tail_ms is the p99 where a point has >= 100 requests, else their max (hollow markers)
        ax.errorbar(d["offered_rate"], d["tail_ms"], yerr=d["tail_ci"], marker="o", capsize=3, color=colors[label], label=label)
        few = d[d["n_ok"] < 100]
        ax.scatter(few["offered_rate"], few["tail_ms"], s=60, facecolors="white", edgecolors=colors[label], zorder=3)
    if lim.get("critical_path_s"):
        ax.axhline(1000 * lim["critical_path_s"], color="black", ls="--", label=f"critical path {1000 * lim['critical_path_s']:.0f} ms")
    ax.set_yscale("log")
    _finish(fig, ax, path, "offered load (req/s)", "p99 latency (ms, log; hollow: max of n < 100)", "Tail latency vs load", which="both")


def speedup(sat: pd.DataFrame, lim: dict, path: str) -> None:
    """Throughput and latency speed-up over the centralized baseline vs workers, beside their limits."""
    base = sat[sat["mode"] == "centralized"]
    if base.empty:
        return
    b = base.iloc[0]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4.2))
    others = sat[sat["mode"] != "centralized"]
    ws = sorted(set(others["workers"]) | {1})
    cap = lim.get("parallel_capacity") or lim.get("cores") or 1
    a1.plot(ws, ws, color="grey", ls=":", label="ideal (x workers)")
    a1.axhline(cap, color="black", ls="--", label=f"effective cores ({cap:g})")
    a2.axhline(lim.get("latency_speedup_bound", np.nan), color="black", ls="--",
               label=f"critical-path bound ({lim.get('latency_speedup_bound', float('nan')):.2f}x)")
    a2.axhline(1.0, color="grey", ls=":")
    for (mode, strategy), g in others.groupby(["mode", "strategy"], dropna=False, sort=False):
        g = g.sort_values("workers")
        name = mode if mode == "replicated" else f"{mode} {strategy}"
        a1.plot(g["workers"], g["max_throughput"] / b["max_throughput"], marker="o", label=name)
        a2.plot(g["workers"], b["p50_low_load_ms"] / g["p50_low_load_ms"], marker="o", label=name)
    a1.set_title("Throughput speed-up (best achieved)")
    a2.set_title("Latency speed-up (p50, lowest load)")
    for ax in (a1, a2):
        ax.set_xlabel("workers / processes")
        ax.set_ylabel("x centralized")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def gantt(stages: pd.DataFrame, path: str) -> None:
    """One typical request (median latency at the lowest load) per configuration: stage bars per worker."""
    if stages.empty:
        return
    labels = list(dict.fromkeys(stages["label"]))
    fig, axes = plt.subplots(len(labels), 1, figsize=(9, 1.6 + 1.3 * len(labels)), squeeze=False)
    cmap = plt.get_cmap("tab20")
    order = order_stage_ids(stages["id"].unique())
    color = {sid: cmap(i % 20) for i, sid in enumerate(order)}
    for ax, label in zip(axes[:, 0], labels):
        g = stages[stages["label"] == label]
        g = g[g["load"] == g["load"].min()]
        total = g.groupby("request").apply(lambda d: (d["start"] + d["duration"]).max(), include_groups=False)
        req = total.index[np.argsort(total.to_numpy())[len(total) // 2]]
        d = g[g["request"] == req]
        workers = sorted(d["worker"].unique())
        for _, r in d.iterrows():
            y = workers.index(r["worker"])
            ax.barh(y, 1000 * r["duration"], left=1000 * r["start"], color=color[r["id"]], edgecolor="black", lw=0.3)
            if r["duration"] * 1000 > 25:
                ax.text(1000 * (r["start"] + r["duration"] / 2), y, r["id"], ha="center", va="center", fontsize=6)
        ax.set_yticks(range(len(workers)), [w.split("://")[-1][-21:] for w in workers], fontsize=6)
        ax.set_title(f"{label}: one median request ({1000 * total[req]:.0f} ms)", fontsize=8)
        ax.grid(alpha=0.3, axis="x")
    axes[-1, 0].set_xlabel("ms since the request's first stage")
    from matplotlib.patches import Patch

    names = dict(zip(stages["id"], stages["stage"]))
    fig.legend(handles=[Patch(color=color[sid], label=f"{sid} {names[sid]}") for sid in order],
               loc="lower center", ncol=6, fontsize=6, frameon=False)
    fig.tight_layout(rect=(0, 0.3 / (1.6 + 1.3 * len(labels)) * 2, 1, 1))  # room for the legend
    fig.savefig(path, dpi=110)
    plt.close(fig)


def stage_costs(stages: pd.DataFrame, path: str) -> None:
    """Mean time per stage for each configuration (the pipeline's cost profile)."""
    if stages.empty:
        return
    m = stages.groupby(["id", "label"])["duration"].mean().unstack("label").reindex(order_stage_ids(stages["id"].unique())) * 1000
    ax = m.plot.bar(figsize=(9, 4))
    ax.set_ylabel("mean ms")
    ax.set_title("Mean time per stage")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=7)
    ax.figure.tight_layout()
    ax.figure.savefig(path, dpi=110)
    plt.close(ax.figure)


def bokeh_page(agg: pd.DataFrame, records: pd.DataFrame, lim: dict, path: str, title: str) -> None:
    """Interactive versions of the throughput, p99 and CDF charts in one self-contained HTML file."""
    from bokeh.io import save
    from bokeh.layouts import column
    from bokeh.models import HoverTool
    from bokeh.palettes import Category10_10
    from bokeh.plotting import figure
    from bokeh.resources import INLINE

    labels = list(dict.fromkeys(agg["label"]))
    color = {lab: Category10_10[i % 10] for i, lab in enumerate(labels)}
    tp = figure(title="Throughput vs offered load", x_axis_label="offered req/s", y_axis_label="achieved req/s",
                width=800, height=350, tools="pan,wheel_zoom,box_zoom,reset,save")
    p99 = figure(title="p99 latency vs offered load (the max where a point has < 100 requests)", x_axis_label="offered req/s", y_axis_label="p99 (or max of n) ms",
                 y_axis_type="log", width=800, height=350, tools="pan,wheel_zoom,box_zoom,reset,save")
    cdf = figure(title="Latency CDF (lowest load)", x_axis_label="latency ms", y_axis_label="fraction",
                 width=800, height=350, tools="pan,wheel_zoom,box_zoom,reset,save")
    for lab in labels:
        d = agg[agg["label"] == lab].sort_values("load")
        tp.line(d["offered_rate"], d["throughput"], color=color[lab], legend_label=lab)
        tp.scatter(d["offered_rate"], d["throughput"], color=color[lab], size=7)
        p99.line(d["offered_rate"], d["tail_ms"], color=color[lab], legend_label=lab)  # p99, or max where n < 100
        p99.scatter(d["offered_rate"], d["tail_ms"], color=color[lab], size=7)
        r = records[(records["label"] == lab) & (records["status"] == 200)]
        if len(r):
            low = np.sort(r[r["load"] == r["load"].min()]["latency"].to_numpy()) * 1000
            cdf.line(low, np.arange(1, len(low) + 1) / len(low), color=color[lab], legend_label=lab)
    if lim.get("throughput_bound_rps"):
        tp.line([0, float(agg["offered_rate"].max())], [lim["throughput_bound_rps"]] * 2, color="black",
                line_dash="dashed", legend_label="core bound")
    for f in (tp, p99, cdf):
        f.add_tools(HoverTool(tooltips=[("x", "@x{0.00}"), ("y", "@y{0.00}")]))
        f.legend.click_policy = "hide"
        f.legend.label_text_font_size = "8pt"
    save(column(tp, p99, cdf), filename=path, resources=INLINE, title=title)


def pipeline_graph(path: str | None = None, costs: dict[str, float] | None = None, critical: list[str] | None = None):
    """Draw the stage DAG in layers; optionally label stage costs and mark the critical path.

    The pipeline is the one the stages of ``costs`` (or ``critical``) belong to; the default one without them.
    """
    table = _table(costs or critical or ())
    layers = stage_layers(table)
    by_layer: dict[int, list[str]] = {}
    for sid, layer in layers.items():
        by_layer.setdefault(layer, []).append(sid)
    pos = {sid: (layer, -(i - (len(ids) - 1) / 2)) for layer, ids in by_layer.items() for i, sid in enumerate(ids)}
    names = {s.id: s.name for s in table}
    crit = set(zip(critical or [], (critical or [])[1:]))
    tallest = max(len(ids) for ids in by_layer.values())
    fig, ax = plt.subplots(figsize=(11, max(5, 0.45 * tallest)))
    for s in table:
        for i in s.inputs:
            on = (i, s.id) in crit
            ax.annotate("", xy=pos[s.id], xytext=pos[i],
                        arrowprops=dict(arrowstyle="->", color="crimson" if on else "grey", lw=2 if on else 0.8,
                                        shrinkA=18, shrinkB=18))
    for sid, (x, y) in pos.items():
        label = f"{sid}\n{names[sid]}" + (f"\n{1000 * costs[sid]:.0f} ms" if costs and sid in costs else "")
        ax.text(x, y, label, ha="center", va="center", fontsize=7,
                bbox=dict(boxstyle="round", fc="mistyrose" if sid in (critical or []) else "white", ec="black"))
    ax.set_xlim(-0.6, max(layers.values()) + 0.6)
    ax.set_ylim(-max(3, tallest / 2 + 0.5), max(3, tallest / 2 + 0.5))
    ax.axis("off")
    ax.set_title("stockdag pipeline" + (" (red: critical path)" if critical else ""))
    fig.tight_layout()
    if path:
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return fig


def width_speedup(table: pd.DataFrame, path: str) -> None:
    """Throughput and latency speed-up over centralized vs the number of competing models, with the bounds.

    ``table`` is :func:`stockdag.lab.experiments.analysis.width_table`; a line per configuration and
    extra-steps setting, the dashed lines are each pipeline's critical-path (latency) and core
    (throughput) bounds.
    """
    if table.empty:
        return
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.4))
    others = table[table["mode"] != "centralized"]
    for steps, g in table.groupby("steps", sort=False):
        tag = f" +{steps}" if steps else ""
        bounds = g.drop_duplicates("pipeline").sort_values("models")
        a1.plot(bounds["models"], bounds["throughput_speedup_bound"], color="black", ls="--" if not steps else "-.",
                lw=1, label=f"core bound{tag}")
        a2.plot(bounds["models"], bounds["latency_speedup_bound"], color="black", ls="--" if not steps else "-.",
                lw=1, label=f"critical-path bound{tag}")
    for (label_cfg, steps), g in others.assign(cfg=others["label"].str.replace(r" \[[^]]*\]$", "", regex=True)).groupby(
            ["cfg", "steps"], sort=False):
        g = g.sort_values("models")
        tag = f" +{steps}" if steps else ""
        a1.plot(g["models"], g["throughput_speedup"], marker="o", label=f"{label_cfg}{tag}")
        a2.plot(g["models"], g["latency_speedup"], marker="o", label=f"{label_cfg}{tag}")
    a1.set_title("Throughput speed-up (best achieved) vs width")
    a2.set_title("Latency speed-up (p50, lowest load) vs width")
    for ax in (a1, a2):
        ax.axhline(1.0, color="grey", ls=":")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("competing models")
        ax.set_ylabel("x centralized (same pipeline)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

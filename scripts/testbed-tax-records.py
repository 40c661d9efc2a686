"""The compute tax of a committed testbed run, from its own records: where the worker machines' CPU went.

Reads ``points/*.json`` (each machine's cgroup CPU time, quota periods and throttling over the point) and
``points/*.parquet`` (each request's stage trace: which machine ran each stage, for how long) of a run, and prints:

1. the **idle burn**: the CPU of worker machines that ran almost nothing during a point (stages under 12% of
   it), per second of the point: what a worker machine spends with no stage to run;
2. per configuration (median over repeats): stage time and worker-machine CPU per request, beside the
   centralized server's; the CPU that remains once each worker machine's idle burn is taken off; the
   throttled share of quota periods;
3. a least-squares fit over every distributed point: CPU per request = work + burn x worker-machine seconds per
   request;
4. each stage's median time against centralized's (a stretch that grew as stages got shorter would point at
   the quota period; one alike for all stage lengths, at a share of the quota taken by something else).

    PYTHONPATH=$PWD .venv/bin/python scripts/testbed-tax-records.py results/20261207-1700-test-cases-core
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys

import numpy as np
import pandas as pd

#: a worker machine whose stages took less than this share of a point counts as idle in it
IDLE_BUSY = 0.12


def load(run: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(one row per point and machine, one row per measured stage)."""
    machines, stages = [], []
    for fn in sorted(glob.glob(os.path.join(run, "points", "*.json"))):
        m = json.load(open(fn))
        if not m.get("cpu"):
            continue
        rec = pd.read_parquet(fn[:-5] + ".parquet")
        dep = m["cluster"]["cluster"]["machines"]
        by_addr = {v["address"]: k for k, v in dep.items()}
        central_machine = m["config"].get("machine") or "server"
        stage_s = dict.fromkeys(dep, 0.0)
        for trace, warm in zip(rec["trace"], rec["warmup"]):
            for s in json.loads(trace) if trace else []:
                w = s["worker"]
                k = central_machine if w.startswith("local:") else by_addr[w.split("://")[1].rsplit(":", 1)[0]]
                stage_s[k] += s["duration"]
                if not warm:
                    stages.append({"label": m["config"]["label"], "users": m["summary"]["users"], "id": s["id"],
                                   "ms": 1000 * s["duration"]})
        for k, c in m["cpu"]["machines"].items():
            machines.append({"point": m["point"], "label": m["config"]["label"], "mode": m["config"]["mode"],
                             "users": m["summary"]["users"], "repeat": m["repeat"], "machine": k,
                             "role": dep[k]["role"], "share": c["share"], "requests": len(rec), "wall_s": m["cpu"]["wall_s"],
                             "cpu_s": c["cpu_s"], "stage_s": stage_s[k], "periods": c["periods"],
                             "throttled": c["throttled"], "throttled_s": c["throttled_s"],
                             "probe_ms": 1000 * m["probe"]["speed_s"]})
    return pd.DataFrame(machines), pd.DataFrame(stages)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", help="a run folder with points/*.json and points/*.parquet of a testbed sweep")
    args = p.parse_args(argv)
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 30)
    d, st = load(args.run)
    if d.empty:
        print(f"{args.run}: no point with testbed CPU records", file=sys.stderr)
        return 1
    used = d[d["cpu_s"] > 0]
    # the machine that runs the stages: the workers of a distributed configuration, the server of a centralized one
    runs = used[(used["role"] == "worker") | ((used["mode"] == "centralized") & (used["stage_s"] > 0))]

    print("1. idle burn: worker machines that ran stages in under "
          f"{IDLE_BUSY:.0%} of a point (CPU s over the point's wall s)")
    idle = runs[(runs["role"] == "worker") & (runs["stage_s"] < IDLE_BUSY * runs["wall_s"])].copy()
    idle["cpus"] = idle["cpu_s"] / idle["wall_s"]
    # the same less the most its stages could have used (their wall time at the full quota)
    idle["cpus_without_stages"] = (idle["cpu_s"] - idle["share"] * idle["stage_s"]) / (idle["wall_s"] - idle["stage_s"])
    idle["throttled_share"] = idle["throttled"] / idle["periods"]
    q = idle[["cpus", "cpus_without_stages", "throttled_share"]].describe().loc[["count", "min", "50%", "max"]]
    print(q.round(3).to_string())
    burn = float(idle["cpus_without_stages"].median())
    share = float(runs["share"].median())
    print(f"   median {burn:.3f} CPU = {burn / share:.0%} of a {share:g}-CPU quota; while a stage runs beside it the "
          f"stage gets {share - burn:.3f} CPU: x{share / (share - burn):.2f} its time\n")

    g = runs.groupby(["point", "label", "mode", "users", "repeat"]).agg(
        requests=("requests", "first"), wall_s=("wall_s", "first"), cpu_s=("cpu_s", "sum"), stage_s=("stage_s", "sum"),
        machines=("machine", "count"), periods=("periods", "sum"), throttled=("throttled", "sum"),
        probe_ms=("probe_ms", "first")).reset_index()
    g["stage_ms_req"] = 1000 * g["stage_s"] / g["requests"]
    g["cpu_ms_req"] = 1000 * g["cpu_s"] / g["requests"]
    g["machine_s_req"] = g["machines"] * g["wall_s"] / g["requests"]
    dist = g["mode"] == "distributed"
    g["cpu_less_burn_ms_req"] = g["cpu_ms_req"] - np.where(dist, 1000 * burn * g["machine_s_req"], 0.0)
    g["throttled_share"] = g["throttled"] / g["periods"]
    print("2. per configuration and load, median over repeats (ratios to the centralized configuration's at the same load)")
    t = g.groupby(["users", "label"])[["stage_ms_req", "cpu_ms_req", "machine_s_req", "cpu_less_burn_ms_req",
                                       "throttled_share", "probe_ms"]].median().reset_index()
    for users, part in t.groupby("users"):
        base = part[part["label"].str.startswith("centralized")].iloc[0]
        part = part.assign(stage_x=part["stage_ms_req"] / base["stage_ms_req"], cpu_x=part["cpu_ms_req"] / base["cpu_ms_req"],
                           cpu_less_burn_x=part["cpu_less_burn_ms_req"] / base["cpu_less_burn_ms_req"])
        print(f"   {users} user(s)")
        print(part.drop(columns="users").set_index("label").round(2).to_string())
    print()

    x = g[dist]
    a = np.c_[np.ones(len(x)), x["machine_s_req"]]
    (work, b), *_ = np.linalg.lstsq(a, x["cpu_ms_req"].to_numpy(), rcond=None)
    pred = a @ np.array([work, b])
    r2 = 1 - ((x["cpu_ms_req"] - pred) ** 2).sum() / ((x["cpu_ms_req"] - x["cpu_ms_req"].mean()) ** 2).sum()
    c = g[~dist]["cpu_ms_req"]
    print(f"3. fit over {len(x)} distributed points: worker CPU per request = {work:.0f} ms + {b / 1000:.3f} CPU x "
          f"worker-machine seconds per request (R^2 {r2:.2f}); the centralized server used {c.median():.0f} ms per "
          f"request (median of {len(c)} points, {c.min():.0f}-{c.max():.0f})\n")

    print("4. each stage's median time over centralized's (1 user; columns by centralized's time, shortest first)")
    low = st[st["users"] == st["users"].min()]
    med = low.groupby(["label", "id"])["ms"].median().unstack()
    base = med.loc[[x for x in med.index if x.startswith("centralized")][0]]
    order = base.sort_values().index
    out = (med / base)[order]
    out.loc["centralized ms"] = base[order]
    print(out.round(2).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())

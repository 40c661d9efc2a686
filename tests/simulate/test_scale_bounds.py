"""Why the simulated scale table was not monotone (issue 22): the rate grid, the cost's rate, ties between seeds.

Each test is a deterministic simulation (seeded) or a synthetic table; nothing is timed.
"""
from __future__ import annotations

import json
import os
import shutil

import pandas as pd
import pytest

from stockdag.lab.simulate import calibrate, scale
from stockdag.lab.simulate.model import STAGE_IDS

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUN = os.path.join(REPO, "results", "20261129-091417-default")


@pytest.fixture(scope="module")
def slow_scheduler_run(tmp_path_factory):
    """A copy of a committed run whose calibration charges the scheduler 4 ms a task: with 12 tasks a request it
    binds at about 21 req/s, below the core bound of 8 c5.large (16 vCPUs / 0.64 s = 25 req/s), above that of 2."""
    dst = tmp_path_factory.mktemp("scale") / os.path.basename(RUN)
    shutil.copytree(RUN, dst, ignore=shutil.ignore_patterns("simulate", "*.png", "*.ipynb", "*.html"))
    path = calibrate.calibrate(str(dst), sizes={s: 1000.0 for s in STAGE_IDS})
    with open(path) as f:
        cal = json.load(f)
    cal["overheads"]["task"] = 0.004
    cal["granularity"] = "stage"
    with open(path, "w") as f:
        json.dump(cal, f)
    return str(dst)


def _grid(folder, **kw):
    return scale.run_scale(folder, machines=(2, 8), loads=(0.5, 0.9), strategies=["heft"], requests=20,
                           min_duration=4.0, **kw)


@pytest.fixture(scope="module")
def grid(slow_scheduler_run):
    """The grid over three seeds (stored in the run copy's simulate/scale.csv); each test reads its seed 0."""
    return _grid(slow_scheduler_run, seeds=(0, 1, 2))


def test_rates_follow_the_scheduler_bound_where_it_binds_first(grid):
    table = grid[grid["seed"] == 0]
    sched = 1 / (12 * 0.004)
    dist = table[(table["strategy"] == "heft") & (table["cluster"] == "homogeneous")]
    two, eight = dist[dist["machines"] == 2], dist[dist["machines"] == 8]
    assert set(two["bound"]) == {"cores"} and set(eight["bound"]) == {"scheduler"}
    assert sorted(two["rate"]) == pytest.approx([0.5 * two["core_bound_rps"].iloc[0], 0.9 * two["core_bound_rps"].iloc[0]])
    # fractions of the scheduler's bound, then one past the core bound (a fusing granularity may get there)
    core = eight["core_bound_rps"].iloc[0]
    assert sorted(eight["rate"]) == pytest.approx([0.5 * sched, 0.9 * sched, 0.9 * core])
    rep = table[(table["strategy"] == "replicated") & (table["machines"] == 8) & (table["cluster"] == "homogeneous")]
    assert set(rep["bound"]) == {"cores"} and sorted(rep["rate"]) == pytest.approx([0.5 * core, 0.9 * core])


def test_the_cost_is_at_the_highest_rate_the_objective_holds_not_at_a_coarse_grid_point(grid):
    # the old grid (fractions of the core bound) offered 8 machines 12.5 and 22.5 req/s, the second past the
    # scheduler's 20.8: in a 4 s window its queue shows p99 1.5 s, so the old cost was at 22.5 req/s (a rate no
    # steady state holds); in a 30 s window p99 is 5.2 s and the cost fell back to 12.5 req/s (the jump at 64
    # machines). The grid at the bound offers 0.9 x 20.8, and only a rate up to the bound counts as held.
    table = grid[grid["seed"] == 0]
    summ = scale.summarize(table, objective=2.0)
    heft = summ[(summ["strategy"] == "heft") & (summ["machines"] == 8) & (summ["cluster"] == "homogeneous")].iloc[0]
    held = heft["rate_at_p99<=2s"]
    row = table[(table["strategy"] == "heft") & (table["machines"] == 8) & (table["cluster"] == "homogeneous")
                & ((table["load"] - 0.9).abs() < 1e-9)].iloc[0]
    assert row["p99_ms"] <= 2000 and not row["saturated"] and held == pytest.approx(row["rate"], abs=0.01)
    assert held > 0.6 * row["core_bound_rps"]  # well past the old grid's last holding point (0.5 of it)
    assert heft["usd_per_million"] == pytest.approx(heft["usd_per_hour"] / (held * 3600) * 1e6, rel=1e-3)


def _table(values: dict[str, list[float]]) -> pd.DataFrame:
    """A synthetic scale table: one point a strategy and seed, ``values[strategy][seed]`` its throughput."""
    rows = []
    for strategy, per_seed in values.items():
        for sd, v in enumerate(per_seed):
            rows.append({"case": "beyond n", "machines": 8, "cluster": "homogeneous", "instances": "8 x c5.large",
                         "strategy": strategy, "threads": 16, "core_bound_rps": 25.0, "load": 1.1, "rate": 27.5,
                         "throughput": v, "p50_ms": 300.0 + v, "p99_ms": 900.0, "saturated": False,
                         "hourly_usd": 1.0, "tasks_per_request": 9, "scheduler_bound_rps": 137.0, "seed": sd,
                         "capacity_rps": 25.0, "bound": "cores"})
    return pd.DataFrame(rows)


def test_strategies_within_the_seeds_spread_are_reported_tied():
    # the committed run's 8 machines, three seeds of the simulator: dask, heft and adaptive change places by seed;
    # round-robin (there 22.24, 22.19, 22.18: within what three seeds resolve) put 10% below
    table = _table({"dask": [22.51, 22.60, 22.34], "heft": [22.41, 22.55, 22.59], "adaptive": [22.20, 22.65, 22.48],
                    "round-robin": [20.24, 20.19, 20.18]})
    best = scale.best_with_ties(table, scale.summarize(table))
    row = best.iloc[0]
    assert row["strategy"] == "heft"
    assert set(row["tied"].split(", ")) == {"dask", "adaptive"}  # round-robin is below in every seed
    assert row["lowest_p50"].split()[1] == "round-robin"  # the synthetic p50 is 300 ms + throughput
    summ = scale.summarize(table)
    assert summ.set_index("strategy")["max_throughput_spread"]["adaptive"] == pytest.approx(0.45)
    # the old pick, by the first seed alone, was dask
    first = scale.best_with_ties(table[table["seed"] == 0], scale.summarize(table[table["seed"] == 0]))
    assert first["strategy"].iloc[0] == "dask" and first["tied"].iloc[0] == "not judged"


def test_one_seed_judges_no_tie_and_the_note_says_so():
    table = _table({"dask": [22.51], "heft": [22.41]})
    assert scale.best_with_ties(table, scale.summarize(table))["tied"].iloc[0] == "not judged"
    note = scale.bound_note(scale.summarize(table), table)
    assert "1 seed(s) a point, fewer than the 3 a tie needs" in note and "at every size the cores bind first" in note


def test_the_index_and_section_say_what_bounds_max_rps(grid, slow_scheduler_run):
    assert set(grid["seed"]) == {0, 1, 2}
    text = "\n".join(scale.index_lines(slow_scheduler_run))
    assert "from 8 machines on the scheduler binds first" in text
    assert "12 tasks x 4.00 ms = 21 req/s" in text and "judged over 3 paired seeds" in text
    header = next(line for line in text.splitlines() if line.startswith("| case"))
    assert "tied with it" in header and "bound" in header and "spread over seeds" in header
    scale.add_to_report(slow_scheduler_run)
    with open(os.path.join(slow_scheduler_run, "REPORT.md")) as f:
        assert "from 8 machines on the scheduler binds first" in f.read()


def test_a_seed_is_reproduced_and_every_cell_counts_its_requests(grid, slow_scheduler_run, tmp_path):
    a = grid[grid["seed"] == 1].reset_index(drop=True)
    b = _grid(slow_scheduler_run, seed=1, out=str(tmp_path))  # alone: the same points as within the three-seed grid
    pd.testing.assert_frame_equal(a, b)
    # a cell is at least min_duration simulated seconds: more requests than the ``requests`` asked for at high rates
    assert (a["requests"] >= (4.0 * a["rate"]).astype(int) - 1).all()


def test_a_committed_table_says_its_cost_at_64_machines_is_the_grids_not_the_machines():
    # results/20261130-075839-default: 15.59 USD per million at 64 machines after 8.7 at 32, because 0.9 of the core
    # bound (175 req/s) is past the scheduler's 137 and the next rate down is 0.5 of it (97 req/s)
    text = "\n".join(scale.index_lines(os.path.join(REPO, "results", "20261130-075839-default")))
    assert "from 64 machines on the scheduler binds first (core bound 194.57 req/s)" in text
    assert "(64 machines: 97.28 req/s, 71% of its bound 137.37): the grid raises it there, not the machines" in text
    assert "of the core bound (a table made before rates followed the bound)" in text
    assert "1 seed(s) a point, fewer than the 3 a tie needs" in text
    rows = {int(r.split("|")[2]): r for r in text.splitlines() if r.startswith("| ") and "machines" not in r}
    assert "| 344 heft |" in rows[64] and "| round-robin |" in rows[64]  # the old pick, beside the lowest p50


def test_a_grid_at_the_bound_has_no_gap_to_explain(grid, slow_scheduler_run):
    grid.to_csv(os.path.join(slow_scheduler_run, scale.FILE), index=False)
    assert "the grid raises it there" not in "\n".join(scale.index_lines(slow_scheduler_run))

"""The main job's progress on the terminal: point i of N, its configuration and an ETA, for the sweep and the
simulated scale grid, read from their own output (no clock is asserted on)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from stockdag.lab.progress import PointProgress
from stockdag.lab.simulate import calibrate, scale
from stockdag.lab.simulate.model import STAGE_IDS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUN = os.path.join(ROOT, "results", "20261129-091417-default")
#: one progress line: "<desc>: i/N done [<elapsed> elapsed, ETA <remaining>]" and what runs (or ran)
LINE = re.compile(r"(?P<desc>[^\r\n]+?): (?P<n>\d+)/(?P<total>\d+) done \[[^\]]* elapsed, ETA [^\]]*\](?:, (?P<what>[^\r\n]*))?")
SMALL_ENV = {"DASK_STOCKDAG__MODELS__WINDOW": "120", "DASK_STOCKDAG__MODELS__ERROR_DAYS": "10",
             "DASK_STOCKDAG__DATA__MIN_HISTORY": "150", "DASK_STOCKDAG__DATA__HISTORY_DAYS": "200",
             "DASK_STOCKDAG__DATA__NEWS_DAYS": "320"}


def lines(text: str, desc: str) -> list[dict]:
    return [m.groupdict() for m in LINE.finditer(text) if m.group("desc").strip().endswith(desc)]


def test_a_point_announces_itself_and_the_count_and_eta_follow(capsys):
    with PointProgress(3, "sweep points", done=1) as bar:  # a resumed grid: one point was done before
        for label in ("centralized at 1 req/s", "distributed w2 heft at 1 req/s"):
            bar.start(label)
            bar.done()
    seen = lines(capsys.readouterr().err, "sweep points")
    assert seen[0]["n"] == "1" and all(s["total"] == "3" for s in seen)
    assert {"now point 2/3: centralized at 1 req/s", "now point 3/3: distributed w2 heft at 1 req/s"} <= {s["what"] for s in seen}
    assert seen[-1]["n"] == "3"


def test_the_scale_grid_names_its_points(tmp_path, capsys):
    dst = tmp_path / os.path.basename(RUN)
    shutil.copytree(RUN, dst, ignore=shutil.ignore_patterns("simulate", "*.png", "*.ipynb", "*.html"))
    calibrate.calibrate(str(dst), sizes={s: 1000.0 for s in STAGE_IDS})
    table = scale.run_scale(str(dst), machines=(1, 2), loads=(0.5,), strategies=["heft"], requests=30, progress=True)
    seen = lines(capsys.readouterr().err, "simulated points (scale grid)")
    assert {s["total"] for s in seen} == {str(len(table))}
    last = seen[-1]
    assert last["n"] == str(len(table)) and last["what"] == f"point {len(table)}/{len(table)} was replicated, 2 x mixed at load 0.5 of its capacity, seed 0"


@pytest.mark.slow
def test_sweep_sh_shows_each_point_and_the_scale_grid_on_the_terminal(tmp_path):
    # the script `make experiment` runs, on a tiny grid, into a scratch results folder
    params = tmp_path / "tiny.yaml"
    params.write_text("configurations: [{mode: centralized}, {mode: distributed, workers: 1, strategy: dask}]\n"
                      "rates: [2.0]\nduration: 1.0\nwarmup: 0.3\nmin_requests: 3\n")
    env = {**os.environ, **SMALL_ENV, "RESULTS": str(tmp_path / "runs"), "RUN_ID": "tiny",
           "VENV": os.path.dirname(os.path.dirname(sys.executable)), "PYTHONPATH": ROOT,
           "SCALE_PARAMS": "{requests: 20, machines: [1, 2], loads: [0.5], strategies: [dask]}",
           # one task a stage: the 1-worker point alone shows the scheduler overheads the scale grid is calibrated on
           "DASK_STOCKDAG__PIPELINE__GRANULARITY": "stage"}
    proc = subprocess.run(["bash", os.path.join(ROOT, "scripts", "sweep.sh"), str(params)], env=env,
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    sweep = lines(proc.stderr, "sweep points")
    assert {s["total"] for s in sweep} == {"2"} and sweep[-1]["n"] == "2"
    started = {s["what"] for s in sweep if s["what"]}
    assert started in ({"now point 1/2: centralized at 2 req/s", "now point 2/2: distributed w1 dask at 2 req/s"},
                       {"now point 1/2: distributed w1 dask at 2 req/s", "now point 2/2: centralized at 2 req/s"}), started
    grid = lines(proc.stderr, "simulated points (scale grid)")
    assert grid and grid[-1]["n"] == grid[-1]["total"] and grid[-1]["what"].startswith(f"point {grid[-1]['total']}/")
    assert (tmp_path / "runs" / "tiny" / "REPORT.md").exists() and (tmp_path / "runs" / "REPORT.md").exists()

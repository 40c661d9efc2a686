"""What is derived from a run goes where the user says, never unasked into a committed run; each command says
what it writes, and ``stockdag plan`` names the run it calibrates on."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import yaml

from stockdag.cli import main
from stockdag.errors import InvalidRequest
from stockdag.lab.experiments.paths import committed
from stockdag.lab.simulate import calibrate, scale
from stockdag.lab.simulate.model import STAGE_IDS

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUN = os.path.join("results", "20261129-091417-default")  # committed, with no simulate/ folder
SIZES = {s: 1000.0 for s in STAGE_IDS}


def _status(folder: str) -> str:
    """What git sees changed or added under ``folder`` (untracked files included)."""
    return subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=all", "--", folder],
                          capture_output=True, text=True, check=True).stdout


@pytest.fixture
def untouched():
    """The committed run is the same afterwards (a test that wrote into it would fail here)."""
    before = _status(RUN)
    yield
    assert _status(RUN) == before
    assert not os.path.exists(os.path.join(REPO, RUN, "simulate"))


@pytest.fixture
def own_run(tmp_path):
    """A run that is not committed (a user's own): a copy outside the repository."""
    dst = tmp_path / "results" / os.path.basename(RUN)
    shutil.copytree(os.path.join(REPO, RUN), dst, ignore=shutil.ignore_patterns("simulate", "*.png", "*.ipynb", "*.html"))
    return str(dst)


def test_committed_means_git_tracks_it(own_run):
    assert committed(os.path.join(REPO, RUN)) and not committed(own_run) and not committed("/nonexistent/run")


def test_calibrate_refuses_a_committed_run_without_out_in_one_line(untouched, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    assert main(["simulate", "calibrate", RUN]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a committed run" in err and "--out DIR" in err, err


def test_calibrate_writes_where_out_says_and_says_so(untouched, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    monkeypatch.setattr(calibrate, "measure_sizes", lambda profile: SIZES)  # (one request run in-process: not the point here)
    assert main(["simulate", "calibrate", RUN, "--out", str(tmp_path / "fit")]) == 0
    path = tmp_path / "fit" / calibrate.FILE
    assert path.exists() and capsys.readouterr().out.startswith(f"wrote {path}: ")


def test_a_fit_made_on_reading_is_stored_in_an_own_run_but_not_in_a_committed_one(untouched, own_run, monkeypatch):
    monkeypatch.setattr(calibrate, "measure_sizes", lambda profile: SIZES)
    committed_fit = calibrate.load(os.path.join(REPO, RUN))
    assert committed_fit["fitted_on"]  # fitted in memory; `untouched` checks nothing was written
    calibrate.load(own_run)
    assert os.path.exists(os.path.join(own_run, calibrate.FILE))


def test_the_scale_grid_goes_to_out_and_refuses_a_committed_run_without_it(untouched, tmp_path, monkeypatch):
    monkeypatch.setattr(calibrate, "measure_sizes", lambda profile: SIZES)
    run = os.path.join(REPO, RUN)
    with pytest.raises(InvalidRequest, match=r"is a committed run \(git tracks it\): give -p out DIR"):
        scale.run_scale(run, machines=(1,), loads=(0.5,), strategies=["heft"], requests=20)
    out = str(tmp_path / "scale-small")
    table = scale.build(run, out=out, machines=(1, 2), loads=(0.5,), strategies=["heft"], requests=20)
    assert len(table) and os.path.exists(os.path.join(out, scale.FILE)) and os.path.exists(os.path.join(out, calibrate.FILE))
    assert os.path.exists(os.path.join(out, "charts", "scale_p99.png"))
    report = open(os.path.join(out, "REPORT.md")).read()
    assert report.startswith(scale.BEGIN) and "(SIMULATED)" in report


def test_plan_names_the_run_it_calibrates_on_and_the_file_it_writes(own_run, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(calibrate, "measure_sizes", lambda profile: SIZES)
    spec = tmp_path / "planned.yaml"
    results = os.path.dirname(own_run)
    assert main(["plan", "--rate", "4", "--p99", "5", "--results", results, "--instance-types", "c5.xlarge",
                 "--max-machines", "2", "--requests", "50", "--out", str(spec)]) == 0
    captured = capsys.readouterr()
    first = captured.err.splitlines()[0]
    assert first == (f"stockdag plan: calibrating on {own_run} (the newest run with profile refit under {results}/; "
                     f"--run chooses; not committed: a local run); writes the cluster spec to {spec}")
    assert f"wrote the spec to {spec}" in captured.out and spec.exists()
    assert os.path.basename(own_run) in open(spec).readline()  # the spec's own first line says what it came from
    assert yaml.safe_load(open(spec))["kind"] == "ec2"

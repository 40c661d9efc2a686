"""``stockdag report RUN`` never rewrites a committed run unasked: ``--out DIR`` writes the report there,
``--in-place`` rewrites the run itself, and without either a committed run is refused in one line."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from stockdag.cli import main
from stockdag.lab.experiments.paths import committed

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUN = os.path.join(REPO, "results", "20261129-091417-default")


def _git(repo, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


SCALED = os.path.join(REPO, "results", "20261129-225208-default")  # with simulate/scale.csv (experiments/scale.ipynb)


def _commit_copy(tmp_path, source: str) -> str:
    """A copy of a committed run, committed in a repository of its own (so nothing here touches this checkout)."""
    repo = tmp_path / "repo"
    run = repo / "results" / os.path.basename(source)
    shutil.copytree(source, run, ignore=shutil.ignore_patterns("*.ipynb", "*.html"))
    _git(tmp_path, "init", "-q", str(repo))
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "run")
    assert committed(str(run)) and _git(repo, "status", "--porcelain") == ""
    return str(run)


@pytest.fixture
def committed_run(tmp_path):
    return _commit_copy(tmp_path, RUN)


def test_a_committed_run_is_refused_in_one_line_without_out_or_in_place(committed_run, capsys):
    assert main(["report", committed_run]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a committed run" in err and "--out DIR" in err and "--in-place" in err, err
    assert _git(os.path.dirname(os.path.dirname(committed_run)), "status", "--porcelain") == ""  # nothing written


def test_out_receives_the_report_and_the_committed_run_stays_as_it_was(committed_run, tmp_path, capsys):
    out = tmp_path / "regenerated"
    assert main(["report", committed_run, "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out / "REPORT.md")
    report = (out / "REPORT.md").read_text()
    assert report.startswith("# stockdag run ") and "](charts/throughput.png)" in report
    assert (out / "charts" / "throughput.png").exists() and (out / "summary.csv").exists()
    assert _git(os.path.dirname(os.path.dirname(committed_run)), "status", "--porcelain") == ""


def test_out_keeps_the_simulated_section_of_a_run_that_has_one(tmp_path, capsys):
    run = _commit_copy(tmp_path, SCALED)
    out = tmp_path / "regenerated"
    assert main(["report", run, "--out", str(out)]) == 0
    report = (out / "REPORT.md").read_text()
    assert "## Test cases at n machines (SIMULATED)" in report and "](charts/scale_throughput.png)" in report
    assert (out / "charts" / "scale_throughput.png").exists() and (out / "simulate" / "scale.csv").exists()
    assert _git(os.path.dirname(os.path.dirname(run)), "status", "--porcelain") == ""


def test_in_place_rewrites_the_committed_run_on_purpose(committed_run, capsys):
    report = os.path.join(committed_run, "REPORT.md")
    with open(report, "w") as f:
        f.write("stale\n")
    assert main(["report", committed_run, "--in-place"]) == 0
    assert capsys.readouterr().out.strip() == report
    with open(report) as f:
        assert f.read().startswith("# stockdag run ")


@pytest.mark.parametrize("option", [["--out", "elsewhere"], ["--in-place"]])
def test_out_and_in_place_are_for_a_run_folder_not_a_folder_of_runs(committed_run, option, capsys):
    results = os.path.dirname(committed_run)
    assert main(["report", results, *option]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{option[0]} is for a run folder" in err, err
    assert not os.path.exists("elsewhere")

"""The simulated test cases at n machines: the table, the REPORT section, the thin notebook."""
from __future__ import annotations

import json
import os
import shutil

import papermill as pm
import pytest

from stockdag.lab.simulate import calibrate, scale
from stockdag.lab.simulate.model import STAGE_IDS

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUN = os.path.join(REPO, "results", "20261129-091417-default")
NOTEBOOK = os.path.join(REPO, "experiments", "scale.ipynb")


@pytest.fixture
def run_copy(tmp_path):
    dst = tmp_path / os.path.basename(RUN)
    shutil.copytree(RUN, dst, ignore=shutil.ignore_patterns("simulate", "*.png", "*.ipynb", "*.html"))
    calibrate.calibrate(str(dst), sizes={s: 1000.0 for s in STAGE_IDS})
    return str(dst)


def test_cases_table_and_report_section_are_labelled_simulated(run_copy):
    table = scale.run_scale(run_copy, machines=(1, 5), loads=(0.5,), strategies=["round-robin"], requests=60)
    assert table["simulated"].all()
    assert set(table["case"]) == {"1: centralized", "2: one machine for n tasks", "4: n machines (one a task)"}
    five = table[(table["machines"] == 5) & (table["cluster"] == "homogeneous") & (table["strategy"] == "round-robin")]
    assert five["threads"].iloc[0] == 10  # 5 x c5.large, 2 vCPUs each
    scale.charts(table, run_copy)
    with open(os.path.join(run_copy, "REPORT.md")) as f:
        before = f.read()
    assert scale.add_to_report(run_copy) and scale.add_to_report(run_copy)  # twice: replaced, not repeated
    with open(os.path.join(run_copy, "REPORT.md")) as f:
        text = f.read()
    assert text.startswith(before.rstrip("\n")) and text.count(scale.BEGIN) == 1
    assert "(SIMULATED)" in text and "simulated" in text and "2025-06-01" in text
    assert "charts/scale_cost.png" in text


def test_notebook_is_thin_and_committed_without_outputs():
    nb = json.load(open(NOTEBOOK))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert not any(c.get("outputs") or c.get("execution_count") for c in code)
    assert "parameters" in code[0]["metadata"]["tags"]
    params = pm.inspect_notebook(NOTEBOOK)
    assert {"run", "machines", "loads", "objective"} <= set(params) and all(p["help"] for p in params.values())


@pytest.mark.slow
def test_notebook_executes(run_copy, tmp_path):
    out = tmp_path / "scale.ipynb"
    pm.execute_notebook(NOTEBOOK, str(out), parameters={"run": run_copy, "machines": [1, 2], "loads": [0.5],
                                                        "strategies": ["heft"], "requests": 40},
                        cwd=REPO, kernel_name="python3", progress_bar=False)
    assert os.path.exists(os.path.join(run_copy, scale.FILE))
    assert scale.BEGIN in open(os.path.join(run_copy, "REPORT.md")).read()


def test_the_scale_table_simulates_the_runs_granularity(run_copy, monkeypatch):
    path = os.path.join(run_copy, calibrate.FILE)
    with open(path) as f:
        cal = json.load(f)
    cal["granularity"] = "auto"  # as a run made with the default setting records it
    with open(path, "w") as f:
        json.dump(cal, f)
    seen, real = [], scale.simulate
    monkeypatch.setattr(scale, "simulate", lambda config, *a, **kw: seen.append(config.granularity) or real(config, *a, **kw))
    table = scale.run_scale(run_copy, machines=(2,), loads=(0.5,), strategies=["round-robin"], requests=40)
    assert set(seen) == {"stage", "auto"}  # the centralized and replicated baselines keep the default; distributed runs auto
    dist = table[table["strategy"] == "round-robin"]
    assert (dist["tasks_per_request"] == 9).all()  # auto on 2 x c5.large: the branches (C1+C6, C2+C3, C5+C4, five models, C12)
    assert dist["scheduler_bound_rps"].iloc[0] == pytest.approx(1 / (9 * cal["overheads"]["task"]))


def test_the_results_index_gets_the_simulated_cases_of_a_run(tmp_path):


    from stockdag.lab.simulate.scale import FILE, index_lines

    run = tmp_path / "run"
    (run / "simulate").mkdir(parents=True)
    assert index_lines(str(run)) == []  # no simulated section: nothing
    shutil.copy(os.path.join(REPO, "results", "20261129-225208-default", FILE), run / FILE)
    text = "\n".join(index_lines(str(run)))
    assert text.startswith("- SIMULATED (calibrated on this run")
    rows = [line for line in text.splitlines() if line.startswith("| ")][1:]  # after the header
    assert [int(r.split("|")[2]) for r in rows] == sorted({1, 2, 3, 4, 5, 8, 16, 32, 64})

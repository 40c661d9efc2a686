"""Every notebook runs through papermill with small parameters, and is committed without outputs."""
import glob
import json
import os
import subprocess

import papermill as pm
import pytest

NOTEBOOKS = sorted(glob.glob("notebooks/*.ipynb")) + ["experiments/sweep.ipynb"]

SMALL_ENV = {"DASK_STOCKDAG__MODELS__WINDOW": "120", "DASK_STOCKDAG__MODELS__ERROR_DAYS": "10",
             "DASK_STOCKDAG__DATA__MIN_HISTORY": "150", "DASK_STOCKDAG__DATA__HISTORY_DAYS": "200",
             "DASK_STOCKDAG__DATA__NEWS_DAYS": "320"}


@pytest.mark.parametrize("path", NOTEBOOKS)
def test_committed_without_outputs_and_with_a_parameters_cell(path):
    nb = json.load(open(path))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert not any(c.get("outputs") or c.get("execution_count") for c in code)
    assert "parameters" in code[0].get("metadata", {}).get("tags", [])
    params = pm.inspect_notebook(path)
    assert params and all(p["help"] for p in params.values()), "every parameter has a typed, commented default"


@pytest.mark.slow
def test_notebooks_execute_where_jupyter_starts_them_and_clean_up(tmp_path, monkeypatch):
    for k, v in SMALL_ENV.items():
        monkeypatch.setenv(k, v)  # the kernel reads these through dask.config
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))  # the kernel's temporary directory: must be empty afterwards
    results = tmp_path / "results"
    # results/ as it was before (a user's own runs of `make experiment` may be there): the notebooks must not change it
    before = subprocess.run(["git", "status", "--porcelain", "results"], capture_output=True, text=True).stdout
    committed = sorted(d for d in os.listdir("results") if os.path.exists(os.path.join("results", d, "config.json")))
    runs = {
        "notebooks/01-data-and-models.ipynb": {"symbols": ["IBM"], "start": "2012-01-01", "end": "2012-02-28", "window": 120},
        "notebooks/02-pipeline.ipynb": {"runs": 1, "train_end": "2011-12-30"},
        "experiments/sweep.ipynb": {"configurations": "[{mode: centralized}]", "rates": "[2.0]", "min_requests": 3,
                                    "duration": 1.0, "warmup": 0.3, "out": str(results), "run_id": "nb"},
        # the default results_dir, from notebooks/: the project's results/ (one committed run, to keep it short)
        "notebooks/03-results.ipynb": {"runs": f"[{committed[0]}]"},
    }
    assert set(runs) == set(NOTEBOOKS)
    for path, params in runs.items():
        out = tmp_path / path.replace("/", "_")
        # Jupyter runs a notebook in its own folder, not the project root
        pm.execute_notebook(path, str(out), parameters=params, cwd=os.path.dirname(path), kernel_name="python3",
                            progress_bar=False)
        executed = json.load(open(out))
        assert all(c.get("execution_count") for c in executed["cells"] if c["cell_type"] == "code"), path
    assert (results / "nb" / "REPORT.md").exists()
    assert json.load(open(results / "nb" / "config.json"))["configurations"][0]["label"] == "centralized"
    assert not [p for p in os.listdir(scratch) if p.startswith("stockdag-models-")]
    assert not os.path.exists("notebooks/results") and not os.path.exists("experiments/results")
    # reading the committed run changed nothing in it
    assert subprocess.run(["git", "status", "--porcelain", "results"], capture_output=True, text=True).stdout == before


def test_results_resolve_to_the_project_folder_from_a_notebook_folder(monkeypatch):
    from stockdag.lab.experiments.paths import resolve

    root = os.getcwd()
    monkeypatch.chdir("notebooks")
    assert resolve(None, "results") == os.path.join(root, "results")
    assert resolve("/abs/elsewhere", "results") == "/abs/elsewhere"


def test_sweep_notebook_help_shows_how_to_pass_lists_with_papermill_p():
    params = pm.inspect_notebook("experiments/sweep.ipynb")
    for name in ("workers", "strategy", "mode", "rates", "users", "symbols", "configurations"):
        assert f"-p {name} '[" in params[name]["help"], name
    assert params["min_requests"]["default"] == "30"

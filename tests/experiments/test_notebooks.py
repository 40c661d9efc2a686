"""Every notebook runs through papermill with small parameters, and is committed without outputs."""
import glob
import json

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
def test_notebooks_execute(tmp_path, monkeypatch):
    for k, v in SMALL_ENV.items():
        monkeypatch.setenv(k, v)  # the kernel reads these through dask.config
    results = tmp_path / "results"
    runs = {
        "notebooks/01-data-and-models.ipynb": {"symbols": ["IBM"], "start": "2012-01-01", "end": "2012-02-28", "window": 120},
        "notebooks/02-pipeline.ipynb": {"runs": 1, "train_end": "2011-12-30"},
        "experiments/sweep.ipynb": {"configurations": [{"mode": "centralized"}], "rates": [2.0],
                                    "duration": 1.0, "warmup": 0.3, "out": str(results), "run_id": "nb"},
        "notebooks/03-results.ipynb": {"results_dir": str(results)},
    }
    assert set(runs) == set(NOTEBOOKS)
    for path, params in runs.items():
        out = tmp_path / path.replace("/", "_")
        pm.execute_notebook(path, str(out), parameters=params, cwd=".", kernel_name="python3", progress_bar=False)
        executed = json.load(open(out))
        assert all(c.get("execution_count") for c in executed["cells"] if c["cell_type"] == "code"), path
    assert (results / "nb" / "REPORT.md").exists()
    assert json.load(open(results / "nb" / "config.json"))["configurations"][0]["label"] == "centralized"

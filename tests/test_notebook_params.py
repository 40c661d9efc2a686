"""One rule for every notebook's list parameters: ``-p symbols '[IBM]'`` means a list wherever it is given."""
from __future__ import annotations

import ast
import glob
import json
import os

import papermill as pm
import pytest

from stockdag.lab.experiments import SweepParams
from stockdag.lab.params import as_list

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = sorted(glob.glob(os.path.join(ROOT, "notebooks", "*.ipynb")) + glob.glob(os.path.join(ROOT, "experiments", "*.ipynb")))
#: the parsers a notebook may hand a list parameter to: the rule itself, or the sweep's parameters (which apply it)
PARSERS = {"as_list", "SweepParams"}


def list_parameters(path: str) -> dict[str, str]:
    """name -> default (as typed) of each list-typed parameter of a notebook."""
    return {name: p["default"] for name, p in pm.inspect_notebook(path).items()
            if p["inferred_type_name"].startswith("list")}


def parsed_names(path: str) -> set[str]:
    """Names a notebook's code (after its parameters cell) passes to :data:`PARSERS`, positionally or by keyword."""
    cells = [c for c in json.load(open(path))["cells"] if c["cell_type"] == "code"][1:]
    names = set()
    for cell in cells:
        src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) in PARSERS:
                names |= {a.id for a in [*node.args, *(k.value for k in node.keywords)] if isinstance(a, ast.Name)}
    return names


@pytest.mark.parametrize("value, item, expected", [
    ("[IBM]", str, ["IBM"]), ("IBM", str, ["IBM"]), (["IBM"], str, ["IBM"]), ("[AAPL, IBM]", str, ["AAPL", "IBM"]),
    ("[1, 2]", int, [1, 2]), (4, int, [4]), ("4", int, [4]), ("[0.5, 1]", float, [0.5, 1.0]), ((1, 2), float, [1.0, 2.0]),
    (None, str, None), ("None", str, None), ("null", int, None), ("[{mode: centralized}]", None, [{"mode": "centralized"}]),
])
def test_as_list_reads_every_form_papermill_passes(value, item, expected):
    assert as_list(value, item) == expected


@pytest.mark.parametrize("value, item", [("[IBM", str), ("[a, b]", int)])
def test_as_list_refuses_in_one_line(value, item):
    with pytest.raises(ValueError) as info:
        as_list(value, item)
    assert "\n" not in str(info.value) and repr(value if item is str else ["a", "b"]) in str(info.value)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_every_list_parameter_of_every_notebook_goes_through_the_one_rule(path):
    params = list_parameters(path)
    assert not set(params) - parsed_names(path), "a list parameter read without stockdag.lab.params.as_list"
    for name, default in params.items():
        # its default typed after -p (papermill passes it as that string) reads as the default itself
        assert as_list(default) == as_list(ast.literal_eval(default)), name


def test_the_sweep_reads_lists_with_the_same_rule():
    p = SweepParams(symbols="[ibm]", rates="[0.5, 1]", workers="2", run_id="t")
    assert (p.symbols, p.rates, p.workers) == (["IBM"], [0.5, 1.0], [2])


@pytest.mark.slow
def test_notebook_01_takes_a_list_given_with_p(tmp_path, monkeypatch):
    # the string papermill's `-p symbols '[IBM]'` hands the kernel (it failed with "unknown symbol '['")
    monkeypatch.setenv("DASK_STOCKDAG__MODELS__ERROR_DAYS", "10")
    out = tmp_path / "01.ipynb"
    pm.execute_notebook(os.path.join(ROOT, "notebooks", "01-data-and-models.ipynb"), str(out),
                        parameters={"symbols": "[IBM]", "start": "2012-01-02", "end": "2012-01-31", "window": 120},
                        cwd=os.path.join(ROOT, "notebooks"), kernel_name="python3", progress_bar=False)
    executed = json.load(open(out))  # (papermill raises on a failed cell: before the rule, the first one)
    assert all(c.get("execution_count") for c in executed["cells"] if c["cell_type"] == "code")

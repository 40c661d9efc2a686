"""The package's layers, and the one direction imports may cross them.

domain (``stockdag.domain``: data, features, sentiment, market, models) knows nothing of Dask or of the
layers above; the system (``pipeline``, ``run``, ``placement``, ``deploy``, ``serve``) builds on the domain;
the lab (``stockdag.lab``: bench, web app, experiments, simulator, demo, overhead, evaluate, train) measures
and explains the system and may import it, never the reverse; the CLI sits on top. The import graph is the
one :mod:`test_import_cycles` walks, so imports inside functions count too.
"""
from __future__ import annotations

import pytest
from test_import_cycles import ROOT, _package, import_graph

#: layer -> the top-level names of ``stockdag`` it holds (the root's own modules are shared by all)
LAYERS = {
    "domain": ("domain",),
    "system": ("pipeline", "run", "placement", "deploy", "serve"),
    "lab": ("lab",),
    "cli": ("cli",),
}
ORDER = ["domain", "system", "lab", "cli"]  # a layer may import itself and those before it
SHARED = {"__init__", "config", "errors"}   # the root's own modules, importable from every layer


def layer_of(module: str, package: str = "stockdag") -> str | None:
    parts = module.split(".")
    if len(parts) < 2 or parts[0] != package:
        return None
    for layer, names in LAYERS.items():
        if parts[1] in names:
            return layer
    return None


def violations(graph, package: str = "stockdag") -> list[str]:
    out = []
    for a, b in graph.edges:
        la, lb = layer_of(a, package), layer_of(b, package)
        if la is None or lb is None:
            continue
        if ORDER.index(lb) > ORDER.index(la):
            out.append(f"{a} ({la}) imports {b} ({lb})")
    return sorted(out)


def test_no_layer_imports_a_layer_above_it():
    found = violations(import_graph())
    assert not found, "imports against the layer order domain < system < lab < cli:\n" + "\n".join(found)


def test_the_root_holds_the_layers_and_nothing_else():
    entries = {p.name for p in ROOT.iterdir() if not p.name.startswith((".", "__pycache__"))}
    modules = {p.stem for p in ROOT.glob("*.py")}
    packages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists()}
    assert modules == SHARED
    assert packages == {name for names in LAYERS.values() for name in names}
    assert entries - {f"{m}.py" for m in modules} - packages <= {"stockdag.yaml", "py.typed"}


@pytest.mark.parametrize("files, expected", [
    ({"pipeline/__init__.py": "from ..lab import tool\n", "lab/__init__.py": "", "lab/tool.py": ""},
     ["pkg.pipeline (system) imports pkg.lab.tool (lab)"]),
    ({"domain/__init__.py": "def f():\n    from ..run import x\n", "run/__init__.py": "", "run/x.py": ""},
     ["pkg.domain (domain) imports pkg.run.x (system)"]),
    ({"lab/__init__.py": "from ..serve import app\n", "serve/__init__.py": "", "serve/app.py": ""}, []),
])
def test_the_rule_catches_an_upward_import(tmp_path, files, expected):
    root = _package(tmp_path, {"__init__.py": "", **files})
    assert violations(import_graph(root, "pkg"), "pkg") == expected

"""No import circle inside ``stockdag/``: a circle means a type or a registry sits in the wrong module.

The graph is read from the source with :mod:`ast`, so it sees imports at module
level *and* inside functions (a deferred import hides a circle from Python, not
from the design). Every ``import x.y``, ``from x import y`` and relative form is
resolved to a module of the package: ``from . import x`` is an edge to the
submodule ``x`` when there is one, else to the package itself. Importing a
submodule also runs its parent package's ``__init__``; that implicit edge is not
counted (it would make every package that re-exports its submodules a circle).
"""
from __future__ import annotations

import ast
import pathlib

import networkx as nx
import pytest

import stockdag

ROOT = pathlib.Path(stockdag.__file__).parent
PACKAGE = "stockdag"


def _modules(root: pathlib.Path = ROOT, package: str = PACKAGE) -> dict[str, pathlib.Path]:
    """Dotted module name -> file, for every ``.py`` under ``root`` (a package is its ``__init__``)."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join([package, *parts])] = path
    return out


def _resolve(name: str, modules) -> str | None:
    """The longest prefix of dotted ``name`` that is a module of the package (None: outside it)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def imports_of(module: str, path: pathlib.Path, modules, nodes=None) -> set[str]:
    """Package modules that ``module`` imports anywhere in its source (module level or in a function);
    only among ``nodes`` when given (e.g. its module-level statements)."""
    is_package = path.name == "__init__.py"
    here = module if is_package else module.rpartition(".")[0]  # what `from . import` is relative to
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))) if nodes is None else nodes:
        if isinstance(node, ast.Import):
            targets = [_resolve(alias.name, modules) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = here.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            targets = []
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                targets.append(sub if sub in modules else _resolve(base, modules))
        else:
            continue
        found.update(t for t in targets if t is not None and t != module)
    return found


def import_graph(root: pathlib.Path = ROOT, package: str = PACKAGE) -> nx.DiGraph:
    modules = _modules(root, package)
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for module, path in modules.items():
        graph.add_edges_from((module, target) for target in imports_of(module, path, modules))
    return graph


def circles(graph: nx.DiGraph) -> list[list[str]]:
    """One circle per strongly connected component of several modules, as a path ``a, b, ..., a``
    starting at its smallest name (so a message and a test can compare it)."""
    out = []
    for component in nx.strongly_connected_components(graph):
        if len(component) > 1:
            cycle = [a for a, _ in nx.find_cycle(graph.subgraph(component))]
            i = cycle.index(min(cycle))
            cycle = cycle[i:] + cycle[:i]
            out.append(cycle + [cycle[0]])
    return sorted(out)


def test_stockdag_has_no_import_circle():
    graph = import_graph()
    found = circles(graph)
    groups = [sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1]
    assert not found, "import circles in stockdag/ (each a -> b -> ... -> a; then every module of its knot):\n" + \
        "\n".join(" -> ".join(c) + "\n    knot: " + ", ".join(next(g for g in groups if c[0] in g)) for c in found)


# -- the walker itself, on a small package written for the test


def _package(tmp_path, files: dict[str, str]) -> pathlib.Path:
    root = tmp_path / "pkg"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.mark.parametrize("a_imports", [
    "from .b import thing",             # relative, module level
    "def f():\n    from . import b",    # `from . import` a submodule, inside a function
    "import pkg.b",                     # absolute
    "from pkg.b import thing",
    "from pkg import b",
])
def test_walker_finds_a_circle_through_every_import_form(tmp_path, a_imports):
    root = _package(tmp_path, {"__init__.py": "", "a.py": a_imports + "\n",
                               "b.py": "def g():\n    from .a import h\n"})
    assert circles(import_graph(root, "pkg")) == [["pkg.a", "pkg.b", "pkg.a"]]


def test_walker_resolves_relative_imports_in_subpackages(tmp_path):
    root = _package(tmp_path, {"__init__.py": "", "config.py": "", "sub/__init__.py": "from .x import y\n",
                               "sub/x.py": "from .. import config\nfrom ..sub import z\n", "sub/z.py": "from . import x\n"})
    graph = import_graph(root, "pkg")
    assert set(graph.successors("pkg.sub.x")) == {"pkg.config", "pkg.sub.z"}
    assert set(graph.successors("pkg.sub")) == {"pkg.sub.x"}
    assert circles(graph) == [["pkg.sub.x", "pkg.sub.z", "pkg.sub.x"]]


def test_walker_passes_a_package_without_circle(tmp_path):
    root = _package(tmp_path, {"__init__.py": "from . import a\n", "a.py": "from . import b\nimport os\n",
                               "b.py": "def f():\n    import json\n"})
    assert circles(import_graph(root, "pkg")) == []

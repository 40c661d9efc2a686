"""What stockdag imports is what setup.cfg declares (issue 24 items 1 and 21).

Imports are read from the source with :mod:`ast` (module level and inside
functions, as ``test_import_cycles`` reads them); an import name is mapped to
the distribution that provides it with
:func:`importlib.metadata.packages_distributions`, and requirements are read
from the installed distributions' metadata: nothing is downloaded.
"""
from __future__ import annotations

import ast
import configparser
import functools
import importlib.metadata as md
import pathlib
import sys

import networkx as nx
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import stockdag

ROOT = pathlib.Path(stockdag.__file__).parent
SETUP_CFG = ROOT.parent / "setup.cfg"


def third_party_imports(path: pathlib.Path) -> set[str]:
    """Top-level names of the non-stdlib, non-stockdag modules ``path`` imports anywhere."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        out |= {n.split(".")[0] for n in names}
    return {n for n in out if n not in sys.stdlib_module_names and n != "stockdag"}


@functools.cache
def _providers() -> dict[str, list[str]]:
    return md.packages_distributions()  # reads every installed distribution's file list: once


def distributions(import_name: str) -> set[str]:
    """Canonical names of the installed distributions providing top-level module ``import_name``."""
    dists = _providers().get(import_name)
    assert dists, f"no installed distribution provides {import_name!r} (install the project's test extra)"
    return {canonicalize_name(d) for d in dists}


def declared() -> dict[str, list[Requirement]]:
    """``install_requires`` and every extra of setup.cfg, as requirements (``""``: install_requires)."""
    cfg = configparser.ConfigParser()
    cfg.read(SETUP_CFG)

    def parse(text: str) -> list[Requirement]:
        lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
        return [Requirement(line) for line in lines if line]

    out = {"": parse(cfg["options"]["install_requires"])}
    out.update({extra: parse(text) for extra, text in cfg["options.extras_require"].items()})
    return out


def closure(requirements: list[Requirement]) -> set[str]:
    """Canonical names of everything installing ``requirements`` brings, read from installed metadata."""
    seen: set[tuple[str, frozenset]] = set()
    names: set[str] = set()
    todo = [(r, frozenset()) for r in requirements]
    while todo:
        req, parent_extras = todo.pop()
        env_ok = req.marker is None or any(req.marker.evaluate({"extra": e}) for e in (parent_extras or {""}))
        if not env_ok:
            continue
        name = canonicalize_name(req.name)
        key = (name, frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        names.add(name)
        try:
            requires = md.requires(req.name) or []
        except md.PackageNotFoundError:
            continue  # not installed here: its own requirements are unknown, its name still counts
        todo.extend((Requirement(r), frozenset(req.extras)) for r in requires)
    return names


def test_every_third_party_import_of_stockdag_is_declared():
    reqs = declared()
    names = {canonicalize_name(r.name) for group in reqs.values() for r in group}
    missing = {}
    for path in sorted(ROOT.rglob("*.py")):
        for imp in third_party_imports(path):
            if not distributions(imp) & names:
                missing.setdefault(imp, path.relative_to(ROOT.parent).as_posix())
    assert not missing, f"imported but declared neither in install_requires nor in an extra: {missing}"


@pytest.mark.parametrize("module", ["stockdag.deploy.ec2", "stockdag.deploy.orphans"])
def test_the_ec2_extra_brings_every_import_of_the_ec2_kind(module):
    """``pip install 'stockdag[ec2]'`` alone (no test extra, which brings boto3 through moto) covers the ec2 kind:
    the module's imports and those of every stockdag module it reaches."""
    from test_import_cycles import _modules, import_graph

    reqs = declared()
    brought = closure(reqs[""] + reqs["ec2"])
    paths = _modules()
    reached = {module} | nx.descendants(import_graph(), module)
    missing = {(imp, m) for m in reached for imp in third_party_imports(paths[m]) if not distributions(imp) & brought}
    assert not missing, f"{module} reaches imports that stockdag[ec2] does not bring: {sorted(missing)}"


def test_distributed_is_bounded_to_the_release_the_suite_runs_on():
    """stockdag uses distributed internals (stockdag.run.internals): the bound must hold the installed release."""
    for name in ("distributed", "dask"):
        [req] = [r for r in declared()[""] if canonicalize_name(r.name) == name]
        assert req.specifier.contains(md.version(name)), f"{req} excludes the installed {name} {md.version(name)}"
        assert any(s.operator in ("<", "<=", "==", "~=") for s in req.specifier), f"{req} has no upper bound"

"""What stockdag imports is what pyproject.toml declares: the core for the core, each extra for its part.

Imports are read from the source with :mod:`ast` (module level and inside
functions, as ``test_import_cycles`` reads them); an import name is mapped to
the distribution that provides it with
:func:`importlib.metadata.packages_distributions`, and requirements are read
from pyproject.toml and the installed distributions' metadata: nothing is downloaded.

Which part of the package each extra enables is :data:`OWNERS`. A module's own
imports, anywhere in it, must be brought by the core and its owner's extra; so
must the module-level imports of every module importing it loads. A function may
import a module of an extra its part does not bring only where the user asked for
that extra's feature and is told what to install: a CLI command that names the
extra (``stockdag.cli.EXTRAS``) and the ec2 kind a spec chooses.
"""
from __future__ import annotations

import ast
import functools
import importlib.metadata as md
import importlib.util
import json
import os
import pathlib
import re
import subprocess
import sys
import tomllib

import networkx as nx
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from test_import_cycles import _modules, import_graph, imports_of

import stockdag

ROOT = pathlib.Path(stockdag.__file__).parent
REPO = ROOT.parent
PYPROJECT = REPO / "pyproject.toml"

#: what each extra enables: module (or package) -> extra, "" the core; a module's owner is its longest entry
OWNERS = {
    "stockdag": "",
    "stockdag.serve": "serve",
    "stockdag.lab.bench": "bench",
    "stockdag.lab.bench.vocabulary": "",  # names only (arrivals, mixes), which the CLI checks options against
    "stockdag.lab.webapp": "webapp",
    "stockdag.lab.simulate": "simulate",
    "stockdag.lab.experiments": "experiments",
    "stockdag.lab.experiments.facts": "",  # the machine facts every result records (the demo's too): stdlib and psutil
    "stockdag.deploy.ec2": "ec2",
    "stockdag.deploy.orphans": "ec2",
    "stockdag.deploy.wheel": "ec2",  # ships this checkout's wheel to EC2 instances through S3 (boto3)
    "stockdag.deploy.ssh": "ssh",  # asyncssh only where a spec of kind ssh starts or fails
    "stockdag.deploy.ssh_remote": "ssh",
    "stockdag.lab.experiments.paths": "",  # where derived files go (`simulate calibrate --out`): stdlib and git
    # the statistics over repeats and seeds (numpy, scipy): the simulated scale grid judges its ties with them too
    "stockdag.lab.experiments.stats": "simulate",
}
#: modules outside stockdag that an extra is for (the ssh kind runs distributed's SSH Scheduler and Worker)
EXTERNAL = {"ssh": ["distributed.deploy.ssh"]}
#: files outside the package run with an extra: notebooks (their code cells) and the scripts' commands
NOTEBOOKS = {"experiments": ["experiments/*.ipynb", "notebooks/*.ipynb"]}
SCRIPTS = {"experiments": ["scripts/sweep.sh"]}
#: extras of a cluster kind a spec chooses: the kind gives its own install hint when its extra is missing
SPEC_KINDS = {"ec2", "ssh"}
#: extras for the project's own work, not a part of the package
TOOLING = {"test", "docs", "browser"}


def _is_type_checking(node: ast.AST) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return isinstance(test, ast.Name | ast.Attribute) and ast.unparse(test).endswith("TYPE_CHECKING")


def import_nodes(tree: ast.AST, module_level: bool = False) -> list[ast.Import | ast.ImportFrom]:
    """The import statements of ``tree``: anywhere, or only those run when the module is imported
    (not in a function body, nor under ``if TYPE_CHECKING``)."""
    if not module_level:
        return [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]
    out, todo = [], [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            out.append(node)
        elif not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) and not _is_type_checking(node):
            todo.extend(ast.iter_child_nodes(node))
    return out


@functools.cache
def _tree(path: pathlib.Path) -> ast.Module:
    return ast.parse(path.read_text(), str(path))


def top_level_names(nodes) -> set[str]:
    """Top-level names of the non-stdlib, non-stockdag modules the import statements ``nodes`` import."""
    out = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return {n for n in out if n not in sys.stdlib_module_names and n != "stockdag"}


def third_party_imports(path: pathlib.Path, module_level: bool = False) -> set[str]:
    """Top-level names of the non-stdlib, non-stockdag modules ``path`` imports (anywhere, or at module level)."""
    return top_level_names(import_nodes(_tree(path), module_level))


@functools.cache
def _providers() -> dict[str, list[str]]:
    return md.packages_distributions()  # reads every installed distribution's file list: once


def distributions(import_name: str) -> set[str]:
    """Canonical names of the installed distributions providing top-level module ``import_name``."""
    dists = _providers().get(import_name)
    assert dists, f"no installed distribution provides {import_name!r} (make install installs every extra)"
    return {canonicalize_name(d) for d in dists}


@functools.cache
def _project() -> dict:
    return tomllib.loads(PYPROJECT.read_text())["project"]


def declared() -> dict[str, list[Requirement]]:
    """pyproject.toml's dependencies (``""``) and every extra, as requirements."""
    project = _project()
    out = {"": [Requirement(r) for r in project["dependencies"]]}
    out.update({extra: [Requirement(r) for r in reqs] for extra, reqs in project["optional-dependencies"].items()})
    return out


def extras_of(extra: str) -> set[str]:
    """``extra`` and the extras of stockdag it requires (``stockdag[serve]``), transitively; ``""`` included."""
    reqs, out, todo = declared(), {""}, [extra]
    while todo:
        e = todo.pop()
        if e not in out:
            out.add(e)
            todo += [x for r in reqs[e] if canonicalize_name(r.name) == "stockdag" for x in r.extras]
    return out


def closure(requirements: list[Requirement]) -> set[str]:
    """Canonical names of everything installing ``requirements`` brings: stockdag's own extras from pyproject.toml,
    the rest from installed metadata."""
    reqs = declared()
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
        if name == "stockdag":  # this project's own extras, as declared here (not the installed copy's metadata)
            todo.extend((r, frozenset()) for e in req.extras for r in reqs[e])
            continue
        names.add(name)
        try:
            requires = md.requires(req.name) or []
        except md.PackageNotFoundError:
            continue  # not installed here: its own requirements are unknown, its name still counts
        todo.extend((Requirement(r), frozenset(req.extras)) for r in requires)
    return names


def brought_by(extra: str) -> set[str]:
    """What ``pip install 'stockdag[extra]'`` brings (``""``: plain ``stockdag``)."""
    reqs = declared()
    return closure(reqs[""] + (reqs[extra] if extra else []))


def owner(module: str) -> str:
    parts = module.split(".")
    while ".".join(parts) not in OWNERS:
        parts.pop()
    return OWNERS[".".join(parts)]


@functools.cache
def _edges() -> dict[str, dict[str, bool]]:
    """module -> {imported package module: True if imported at module level}."""
    paths = _modules()
    out = {}
    for m, path in paths.items():
        anywhere = imports_of(m, path, paths)
        at_import = imports_of(m, path, paths, nodes=import_nodes(_tree(path), module_level=True))
        out[m] = {t: t in at_import for t in anywhere}
    return out


def unmet(extra: str) -> set[tuple[str, str]]:
    """(import, module) pairs of the part ``extra`` enables that ``stockdag[extra]`` does not bring."""
    paths, edges = _modules(), _edges()
    brought, included = brought_by(extra), extras_of(extra)
    missing = set()
    # (module, whole): whole - all its imports count (its part is installed); else only those run on import
    todo = [(m, True) for m in paths if owner(m) == extra]
    done: dict[str, bool] = {}
    while todo:
        m, whole = todo.pop()
        if done.get(m) is True or done.get(m) == whole:
            continue
        done[m] = whole
        missing |= {(i, m) for i in third_party_imports(paths[m], module_level=not whole) if not distributions(i) & brought}
        parts = m.split(".")
        todo += [(p, owner(p) in included) for p in (".".join(parts[:n]) for n in range(1, len(parts)))]  # __init__s run
        for t, at_import in edges[m].items():
            if not whole and not at_import:
                continue  # a function of a module we only import: not run by importing it
            if owner(t) in included:
                todo.append((t, True))
            elif at_import:
                todo.append((t, False))  # loaded with m: what it imports on load must be there
            elif not _may_defer_to(m, owner(t)):
                missing.add((f"stockdag[{owner(t)}] ({t})", m))  # m's feature needs another extra
    return missing


def _may_defer_to(module: str, extra: str) -> bool:
    """Whether a function of ``module`` may import a module of ``extra`` that its own part does not bring: a command
    that names the extra (``stockdag.cli.EXTRAS``, so a missing one is a one-line hint), and the ec2 kind, chosen by
    a spec, which gives its own (``deploy.ec2.INSTALL_HINT``), as the ssh kind does (``deploy.ssh.INSTALL_HINT``)."""
    from stockdag.cli import EXTRAS

    commands = {"stockdag.cli.simulate": ["simulate", "plan"]}.get(module, [module.rpartition(".")[2]])
    named = module.startswith("stockdag.cli.") and all(extra in extras_of(EXTRAS.get(c, "")) for c in commands)
    return named or extra in SPEC_KINDS


PARTS = sorted({*OWNERS.values(), *EXTERNAL, *NOTEBOOKS} - {""})


def test_every_extra_is_declared_and_every_part_has_one():
    assert set(PARTS) | TOOLING == set(declared()) - {""}, "pyproject.toml's extras and this test's parts differ"


def test_the_core_brings_every_import_of_the_core_and_what_loading_it_loads():
    missing = unmet("")
    assert not missing, f"the core (plain `pip install stockdag`) does not bring: {sorted(missing)}"


@pytest.mark.parametrize("extra", PARTS)
def test_each_extra_brings_every_import_of_the_modules_it_enables(extra):
    brought = brought_by(extra)
    missing = unmet(extra)
    for module in EXTERNAL.get(extra, []):
        spec = importlib.util.find_spec(module)
        missing |= {(i, module) for i in third_party_imports(pathlib.Path(spec.origin)) if not distributions(i) & brought}
    for pattern in NOTEBOOKS.get(extra, []):
        for path in sorted(REPO.glob(pattern)):
            cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
            code = "\n".join(line for c in cells for line in "".join(c["source"]).splitlines() if not line.lstrip().startswith(("%", "!")))
            missing |= {(i, path.name) for i in top_level_names(import_nodes(ast.parse(code))) if not distributions(i) & brought}
    scripts = {e.name: e.dist.name for e in md.entry_points(group="console_scripts")}
    for script in SCRIPTS.get(extra, []):
        for command in set(re.findall(r'"\$bin/([\w.-]+)"', (REPO / script).read_text())) - {"stockdag"}:
            assert command in scripts, f"{script} runs {command}, which no installed distribution provides"
            if canonicalize_name(scripts[command]) not in brought:
                missing.add((f"the {command} command", script))
    assert not missing, f"stockdag[{extra}] does not bring: {sorted(missing)}"


@pytest.mark.parametrize("part", ["", *PARTS])
def test_each_part_declares_what_its_modules_import_by_name(part):
    """Not only brought along by another requirement (nltk brings tqdm, lightgbm scipy): a direct import is a
    direct requirement of the core or of the part's extras, so no upstream change can take it away."""
    reqs = declared()
    names = {canonicalize_name(r.name) for e in extras_of(part) for r in reqs[e]}
    paths = _modules()
    missing = {(i, m) for m in paths if owner(m) == part for i in third_party_imports(paths[m]) if not distributions(i) & names}
    assert not missing, f"imported by {part or 'the core'} but not declared by name: {sorted(missing)}"


@pytest.mark.parametrize("module", ["stockdag.deploy.ec2", "stockdag.deploy.orphans"])
def test_the_ec2_extra_brings_every_import_of_the_ec2_kind(module):
    """``pip install 'stockdag[ec2]'`` alone (no test extra, which brings boto3 through moto) covers the ec2 kind:
    the module's imports and those of every stockdag module it reaches."""
    brought = brought_by("ec2")
    paths = _modules()
    reached = {m for m in {module} | nx.descendants(import_graph(), module) if owner(m) not in SPEC_KINDS - {"ec2"}}
    missing = {(imp, m) for m in reached for imp in third_party_imports(paths[m]) if not distributions(imp) & brought}
    assert not missing, f"{module} reaches imports that stockdag[ec2] does not bring: {sorted(missing)}"


def test_the_core_leaves_out_what_only_an_extra_needs():
    """A lean core: what an extra declares is not a core requirement, and the server, web, notebook, simulator and
    cloud libraries do not come with plain ``pip install stockdag`` (scipy does, with lightgbm)."""
    reqs = declared()
    core = {canonicalize_name(r.name) for r in reqs[""]}
    for extra in PARTS:
        own = {canonicalize_name(r.name) for r in reqs[extra]} - {"stockdag"}
        assert not own & core, f"the core requires {sorted(own & core)}, which only stockdag[{extra}] needs"
    heavy = {"fastapi", "uvicorn", "aiohttp", "bokeh", "matplotlib", "papermill", "simpy", "boto3", "asyncssh"}
    assert not heavy & brought_by(""), f"plain stockdag brings {sorted(heavy & brought_by(''))}"


def test_the_makefile_installs_every_extra():
    [line] = re.findall(r"^EXTRAS\s*:=\s*(.+)$", (REPO / "Makefile").read_text(), flags=re.M)
    assert set(line.strip().split(",")) == set(declared()) - {""}
    assert "-e '.[$(EXTRAS)]'" in (REPO / "Makefile").read_text()


def test_metadata_is_in_pyproject_only():
    """setuptools reads metadata from one place: setup.cfg keeps the tools' settings, no [metadata] or [options]."""
    import configparser

    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    assert not [s for s in cfg.sections() if s == "metadata" or s.startswith("options")]
    assert "tool:pytest" in cfg.sections()


def test_distributed_is_bounded_to_the_release_the_suite_runs_on():
    """stockdag uses distributed internals (stockdag.run.internals): the bound must hold the installed release."""
    for name in ("distributed", "dask"):
        [req] = [r for r in declared()[""] if canonicalize_name(r.name) == name]
        assert req.specifier.contains(md.version(name)), f"{req} excludes the installed {name} {md.version(name)}"
        assert any(s.operator in ("<", "<=", "==", "~=") for s in req.specifier), f"{req} has no upper bound"


# -- the core alone, for real: a fresh interpreter in which only the core's distributions can be imported

_CORE_ONLY = r"""
import importlib.abc, json, sys

BLOCKED = set(json.loads(sys.argv[1]))

class OnlyTheCore(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (not brought by plain stockdag)", name=name)
        return None

sys.meta_path.insert(0, OnlyTheCore())
import stockdag
after_import = sorted(sys.modules)
for name in stockdag.__all__:
    getattr(stockdag, name)
import stockdag.placement.plugin, stockdag.placement.preload
from stockdag.cli import build_parser
build_parser()
after_api = sorted(sys.modules)
from stockdag.lab.demo import machine_facts  # what stockdag demo, overhead and fairness record: on the core too
machine_facts()
print(json.dumps({"file": stockdag.__file__, "import": after_import, "api": after_api}))
"""

#: the modules of the extras: `import stockdag` loads none of them
EXTRA_PACKAGES = sorted(m for m, e in OWNERS.items() if e)
#: nor does its API, the plugin or the CLI's parser load these (they do load deploy.ec2, for the kinds map, and
#: lab.bench.vocabulary, for the CLI's choices: without their libraries, as the blocker proves)
NEVER_LOADED = ["stockdag.serve", "stockdag.lab.webapp", "stockdag.lab.experiments", "stockdag.lab.simulate"]


def test_the_core_alone_imports_stockdag_its_api_the_plugin_and_the_cli_without_loading_an_extra():
    core = brought_by("")
    blocked = sorted(name for name, dists in _providers().items()
                     if name not in sys.stdlib_module_names and name != "stockdag"
                     and not {canonicalize_name(d) for d in dists} & core)
    assert {"fastapi", "bokeh", "papermill", "simpy", "boto3"} <= set(blocked)  # the blocker does block the extras
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", _CORE_ONLY, json.dumps(blocked)], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr.strip().splitlines()[-3:]
    loaded = json.loads(out.stdout)
    assert loaded["file"] == stockdag.__file__
    for when, parts in (("import", EXTRA_PACKAGES), ("api", NEVER_LOADED)):
        extras = [m for m in loaded[when] if any(m == p or m.startswith(p + ".") for p in parts)]
        assert not extras, f"with the core only, {when} loaded modules of an extra: {extras}"
    assert "stockdag.placement.plugin" in loaded["api"] and "stockdag.pipeline.graph" in loaded["api"]


def test_every_command_that_runs_an_extras_modules_names_that_extra():
    """``stockdag.cli.EXTRAS`` says which extra each command needs; it must cover every extra a command imports
    (ec2 aside: the kind says so itself, deploy.ec2.INSTALL_HINT)."""
    from stockdag.cli import EXTRAS, MODULES

    assert set(EXTRAS.values()) <= set(PARTS)
    edges = _edges()
    commands = {m.__name__: [m.__name__.rpartition(".")[2]] for m in MODULES}
    commands["stockdag.cli.simulate"] = ["simulate", "plan"]  # one module, two commands
    for module, names in commands.items():
        needs = {owner(t) for t in edges[module]} - {"", "ec2"}
        for command in names:
            assert needs <= extras_of(EXTRAS.get(command, "")), f"stockdag {command} needs {sorted(needs)}"


_HINT = r"""
import importlib.abc, json, sys

BLOCKED = set(json.loads(sys.argv[1]))

class OnlyTheCore(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, OnlyTheCore())
from stockdag.cli import main
sys.exit(main(json.loads(sys.argv[2])))
"""


@pytest.mark.parametrize(("argv", "extra"), [(["serve"], "serve"), (["webapp"], "webapp"), (["report", "results"], "experiments")])
def test_a_command_whose_extra_is_missing_says_in_one_line_what_to_install(argv, extra):
    core = brought_by("")
    blocked = sorted(name for name, dists in _providers().items()
                     if name not in sys.stdlib_module_names and name != "stockdag" and not {canonicalize_name(d) for d in dists} & core)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", _HINT, json.dumps(blocked), json.dumps(argv)], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=180)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1, lines[-3:]
    assert lines[0].startswith(f"stockdag: error: stockdag {argv[0]} needs ") and f"pip install 'stockdag[{extra}]'" in lines[0]

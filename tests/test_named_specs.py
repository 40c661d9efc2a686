"""Named cluster and pipeline specs (``local-2``, ``width/w10``) work from an installed wheel, not only a checkout;
the wheel carries pyproject.toml's metadata, the package data and the version stockdag reports."""
from __future__ import annotations

import email.parser
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tomllib
import zipfile

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import stockdag
from stockdag.deploy import SpecError, load_spec
from stockdag.pipeline.spec import PipelineSpecError, load_pipeline

REPO = pathlib.Path(stockdag.__file__).resolve().parent.parent


def test_an_unknown_name_is_one_line_naming_the_shipped_ones():
    with pytest.raises(SpecError) as err:
        load_spec("no-such-cluster")
    assert "\n" not in str(err.value) and "local-2" in str(err.value) and "ec2-small" in str(err.value)
    with pytest.raises(PipelineSpecError) as err:
        load_pipeline("no-such-pipeline")
    assert "\n" not in str(err.value) and "deep" in str(err.value) and "width/w10" in str(err.value)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> pathlib.Path:
    """A wheel of this checkout, built once from a copy (no build/ or egg-info left here; no git history there)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "stockdag", src / "stockdag", symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for kind in ("clusters", "pipelines"):
        shutil.copytree(REPO / "experiments" / kind, src / "experiments" / kind)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
                    "-w", str(tmp / "dist"), str(src)], check=True, capture_output=True, timeout=300)
    [built] = (tmp / "dist").glob("stockdag-*.whl")
    return built


@pytest.mark.slow
def test_named_specs_resolve_from_an_installed_wheel(wheel, tmp_path):
    """Unpack the wheel where no experiments/ folder is, and load names from it."""
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)  # a pure-Python wheel installed is its files unpacked
    assert not (site / "experiments").exists()
    probe = ("import json, stockdag; from stockdag.deploy import load_spec; from stockdag.pipeline.spec import load_pipeline\n"
             "c = load_spec('local-2'); p = load_pipeline('width/w10')\n"
             "print(json.dumps([stockdag.__file__, c.name, [g.name for g in c.worker_groups], p.name, list(p.models)]))")
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr.strip().splitlines()[-1:]
    where, cluster, groups, pipeline, models = json.loads(out.stdout)
    assert where.startswith(str(site))  # the wheel's stockdag, not this checkout's
    here_c, here_p = load_spec(REPO / "experiments/clusters/local-2.yaml"), load_pipeline(str(REPO / "experiments/pipelines/width/w10.yaml"))
    assert (cluster, groups) == (here_c.name, [g.name for g in here_c.worker_groups])
    assert (pipeline, models) == (here_p.name, list(here_p.models))


def _metadata(wheel: pathlib.Path):
    with zipfile.ZipFile(wheel) as z:
        [name] = [n for n in z.namelist() if n.endswith(".dist-info/METADATA")]
        return email.parser.Parser().parsestr(z.read(name).decode())


def _key(req: Requirement) -> tuple:
    return canonicalize_name(req.name), frozenset(req.extras), str(req.specifier), str(req.marker or "")


@pytest.mark.slow
def test_the_wheel_declares_what_pyproject_declares(wheel):
    """Requires-Dist and Provides-Extra are pyproject.toml's dependencies and extras, each extra's under its marker."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    meta = _metadata(wheel)
    expected = {_key(Requirement(r)) for r in project["dependencies"]}
    expected |= {_key(Requirement(f'{r}; extra == "{e}"')) for e, reqs in project["optional-dependencies"].items() for r in reqs}
    assert {_key(Requirement(r)) for r in meta.get_all("Requires-Dist")} == expected
    assert set(meta.get_all("Provides-Extra")) == set(project["optional-dependencies"])
    assert meta["Requires-Python"] == project["requires-python"] and meta["Name"] == "stockdag"


@pytest.mark.slow
def test_the_wheel_carries_the_package_data_and_its_version_is_what_stockdag_reports(wheel, tmp_path):
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        [entry_points] = [z.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt")]
    assert {"stockdag/stockdag.yaml", "stockdag/py.typed", "stockdag/domain/data/news.csv.gz"} <= names
    for kind, package in (("clusters", "deploy/clusters"), ("pipelines", "pipeline/pipelines")):
        specs = {f"stockdag/{package}/{p.relative_to(REPO / 'experiments' / kind).as_posix()}"
                 for p in (REPO / "experiments" / kind).rglob("*.yaml")}
        assert specs and specs <= names, sorted(specs - names)
    assert "stockdag = stockdag.cli:main" in entry_points and "delaytcp = stockdag.deploy.delaycomm:DelayedTCPBackend" in entry_points
    # built from a copy without git history: setuptools-scm's fallback, and the installed package reads it back
    version = _metadata(wheel)["Version"]
    assert version == tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools_scm"]["fallback_version"]
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    probe = ("import importlib.metadata as md, stockdag\n"
             "print(stockdag.__file__, md.distribution('stockdag').locate_file(''), stockdag.__version__)")
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(site)},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr.strip().splitlines()[-1:]
    where, metadata_in, reported = out.stdout.split()
    assert where.startswith(str(site)) and metadata_in == str(site)  # the wheel's package and metadata, not another install's
    assert reported == version


def test_a_checkout_is_versioned_from_git():
    """In a git checkout the version comes from git (setuptools-scm, as pyproject.toml configures it): a tagged commit
    is its tag, any other names its commit."""
    head = subprocess.run(["git", "rev-parse", "--short=7", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
    out = subprocess.run([sys.executable, "-m", "setuptools_scm"], cwd=REPO, capture_output=True, text=True, timeout=60, check=True)
    version = out.stdout.strip().splitlines()[-1]
    tags = subprocess.run(["git", "tag", "--points-at", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    assert f"+g{head}" in version or version.split("+")[0] in {t.lstrip("v") for t in tags}, version

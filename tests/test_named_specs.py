"""Named cluster and pipeline specs (``local-2``, ``width/w10``) work from an installed wheel, not only a checkout."""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import zipfile

import pytest

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


@pytest.mark.slow
def test_named_specs_resolve_from_an_installed_wheel(tmp_path):
    """Build a wheel of this checkout, unpack it where no experiments/ folder is, and load names from it."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "stockdag", src / "stockdag", symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for kind in ("clusters", "pipelines"):
        shutil.copytree(REPO / "experiments" / kind, src / "experiments" / kind)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
                    "-w", str(tmp_path / "dist"), str(src)], check=True, capture_output=True, timeout=300)
    [wheel] = (tmp_path / "dist").glob("stockdag-*.whl")
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

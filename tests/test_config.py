"""Configuration: snapshots keep their values, and every documented environment override works."""
from __future__ import annotations

import os
import subprocess
import sys

import dask
import pytest

from stockdag import config
from stockdag.pipeline.request import parse_request


def test_a_snapshot_keeps_the_settings_it_was_taken_with():
    """Issue 11 item 1: a snapshot taken inside ``dask.config.set`` must not revert when the block ends."""
    with dask.config.set({"stockdag.data.source": "csv", "stockdag.data.data_dir": "/some/where", "stockdag.profile": "pretrained"}):
        snap = config.snapshot()
    assert snap["data"]["source"] == "csv" and snap["data"]["data_dir"] == "/some/where" and snap["profile"] == "pretrained"
    assert config.get("data.source") == "bundled"  # and the live configuration did revert


def test_changing_a_snapshot_does_not_change_the_configuration():
    snap = config.snapshot()
    snap["cache"]["backend"] = "disk"
    assert config.get("cache.backend") == "lru"


def test_a_snapshot_keeps_the_pipeline_spec_of_the_block_it_was_taken_in():
    """The spec a server was created with (a nested mapping) outlives the block that set it."""
    with dask.config.set({"stockdag.pipeline.spec": {"name": "x"}}):
        snap = config.snapshot()
    assert snap["pipeline"]["spec"] == {"name": "x"}
    assert config.get("pipeline.spec") is None


def _from_env(env: dict[str, str]) -> dict:
    """What dask makes of these environment variables (``dask.config.collect_env``, as at import), as dotted keys."""
    def flat(d, prefix=""):
        for k, v in d.items():
            if isinstance(v, dict):
                yield from flat(v, f"{prefix}{k}.")
            else:
                yield f"{prefix}{k}", v

    return dict(flat(dask.config.collect_env(env)))


# every override the README, stockdag.yaml and the docstrings show, and the value each must give
DOCUMENTED = [
    ({"DASK_STOCKDAG__PROFILE": "pretrained"}, lambda r: r.profile == "pretrained"),
    ({"DASK_STOCKDAG__CACHE__BACKEND": "none"}, lambda r: r.cache_backend == "none"),
    ({"DASK_STOCKDAG__CACHE__BACKEND": "null"}, lambda r: r.cache_backend == "none"),
    ({"DASK_STOCKDAG__CACHE__BACKEND": "redis", "DASK_STOCKDAG__CACHE__URL": "redis://10.0.0.5:6379/0"},
     lambda r: r.cache_backend == "redis" and r.cache_url == "redis://10.0.0.5:6379/0"),
    ({"DASK_STOCKDAG__DATA__LATENCY__DISTRIBUTION": "none"}, lambda r: r.latency.distribution == "none"),
    ({"DASK_STOCKDAG__MODELS__WINDOW": "120", "DASK_STOCKDAG__MODELS__ERROR_DAYS": "10",
      "DASK_STOCKDAG__DATA__MIN_HISTORY": "150", "DASK_STOCKDAG__DATA__HISTORY_DAYS": "200",
      "DASK_STOCKDAG__DATA__NEWS_DAYS": "320"},
     lambda r: (r.window, r.error_days, r.min_history, r.history_days, r.news_days) == (120, 10, 150, 200, 320)),
]


@pytest.mark.parametrize("env, check", DOCUMENTED, ids=[" ".join(f"{k}={v}" for k, v in e.items()) for e, _ in DOCUMENTED])
def test_documented_environment_overrides_reach_the_request(env, check):
    """Issue 11 item 2: ``DASK_STOCKDAG__CACHE__BACKEND=none`` failed with "unknown cache backend None"."""
    with dask.config.set(_from_env(env)):
        request = parse_request("AAPL", "2012-06-01")
    assert check(request)


@pytest.mark.parametrize("env, key, value", [
    ({"DASK_STOCKDAG__PLACEMENT__STRATEGY": "heft"}, "placement.strategy", "heft"),
    ({"DASK_STOCKDAG__DEPLOY__LINK_DELAY": "0.02"}, "deploy.link_delay", 0.02),
    ({"DASK_STOCKDAG__SERVE__MODE": "distributed"}, "serve.mode", "distributed"),
])
def test_documented_environment_overrides_reach_the_configuration(env, key, value):
    with dask.config.set(_from_env(env)):
        assert config.get(key) == value


def test_every_choice_named_none_is_accepted_from_the_environment():
    """Any key whose documented choices include ``none`` takes it from the environment too (dask reads it as None)."""
    import yaml

    with open(os.path.join(os.path.dirname(config.__file__), "stockdag.yaml")) as f:
        lines = f.read().splitlines()
    keys, stack = [], []
    for line in lines:
        stripped = line.split("#")[0].rstrip()
        if not stripped.strip() or stripped.lstrip().startswith("-"):
            continue
        depth = (len(stripped) - len(stripped.lstrip())) // 2
        name = stripped.strip().split(":")[0]
        stack = stack[:depth] + [name]
        comment = line.partition("#")[2]
        if "none" in [w.strip(" ():,") for w in comment.split("|")] or "| none" in comment:
            keys.append(stack[1:])
    assert keys, "no key documents a 'none' choice"
    for key in keys:
        env = {"DASK_STOCKDAG__" + "__".join(k.upper() for k in key): "none"}
        with dask.config.set(_from_env(env)):
            parse_request("AAPL", "2012-06-01")  # raises InvalidRequest if 'none' is refused
    assert yaml  # the file is YAML; this walk reads only its documented choices


def test_cache_backend_none_from_the_environment_on_the_command_line():
    """The command from issue 11 item 2, in a fresh process with the variable set."""
    env = {**os.environ, "DASK_STOCKDAG__CACHE__BACKEND": "none", "DASK_STOCKDAG__MODELS__WINDOW": "120",
           "DASK_STOCKDAG__MODELS__ERROR_DAYS": "10", "DASK_STOCKDAG__DATA__MIN_HISTORY": "150",
           "DASK_STOCKDAG__DATA__HISTORY_DAYS": "200", "DASK_STOCKDAG__DATA__NEWS_DAYS": "320"}
    proc = subprocess.run([sys.executable, "-m", "stockdag.cli", "predict", "AAPL", "--as-of", "2012-06-01"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("AAPL as of 2012-06-01") and "cache: " in proc.stdout

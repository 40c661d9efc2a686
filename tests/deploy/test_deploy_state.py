"""The record of `stockdag cluster up` clusters: a private folder (scheduler addresses, PIDs, TLS keys)."""
from __future__ import annotations

import os
import stat

import dask
import pytest

from stockdag.deploy import service


@pytest.fixture
def default_umask():
    old = os.umask(0o022)  # the usual default: new folders readable by everyone
    yield
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_state_dir_is_created_private_whatever_the_umask(tmp_path, default_umask):
    d = tmp_path / "cache" / "clusters"
    with dask.config.set({"stockdag.deploy.state_dir": str(d)}):
        assert service.state_dir() == str(d)
    assert _mode(d) == 0o700


def test_a_state_dir_left_open_by_an_older_version_is_made_private(tmp_path, default_umask):
    d = tmp_path / "clusters"
    d.mkdir(mode=0o755)
    (d / "old.json").write_text("{}")
    with dask.config.set({"stockdag.deploy.state_dir": str(d)}):
        service.state_dir()
    assert _mode(d) == 0o700
    assert (d / "old.json").exists()

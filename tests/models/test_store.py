"""The model store: private folders, refused when someone else could have planted a model (issue 24 item 5)."""
import os
import stat

import pytest
from sklearn.dummy import DummyRegressor

from stockdag.domain.data.cache import UnsafeCacheDirectory
from stockdag.domain.models import store
from stockdag.errors import ModelStoreError

META = {"symbol": "IBM", "train_end": "2010-12-31"}


@pytest.fixture
def stored(tmp_path):
    root = str(tmp_path / "models")
    store.save(root, "IBM", "ridge", DummyRegressor().fit([[0.0]], [1.0]), META)
    return root


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_save_makes_private_folders_and_files(stored):
    folder = os.path.join(stored, "IBM")
    assert mode(stored) == mode(folder) == 0o700
    assert mode(store.model_path(stored, "IBM", "ridge")) == mode(os.path.join(folder, "meta.json")) == 0o600
    assert store.read_meta(stored, "IBM")["train_end"] == "2010-12-31"
    assert store.load(stored, "IBM", "ridge").predict([[0.0]])[0] == 1.0


@pytest.mark.parametrize("where", ["root", "symbol"])
def test_a_folder_others_can_write_is_refused(stored, where):
    os.chmod(stored if where == "root" else os.path.join(stored, "IBM"), 0o777)
    with pytest.raises(ModelStoreError, match=r"writable by other users \(chmod go-w it\): refusing to load"):
        store.read_meta(stored, "IBM")
    with pytest.raises(ModelStoreError, match=r"writable by other users \(chmod go-w it\): refusing to load"):
        store.load(stored, "IBM", "ridge")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="giving a folder away needs root")
def test_a_folder_another_user_owns_is_refused(stored):
    os.chown(os.path.join(stored, "IBM"), 65534, 65534)
    with pytest.raises(ModelStoreError, match=r"belongs to another user \(uid 65534\)"):
        store.load(stored, "IBM", "ridge")
    with pytest.raises(UnsafeCacheDirectory, match="model store folder .* belongs to another user"):
        store.save(stored, "IBM", "ridge", DummyRegressor(), META)


def test_a_symlinked_symbol_folder_is_refused(stored, tmp_path):
    os.symlink(os.path.join(stored, "IBM"), os.path.join(stored, "MSFT"))
    with pytest.raises(ModelStoreError, match="not a folder"):
        store.load(stored, "MSFT", "ridge")

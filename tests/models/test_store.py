"""The model store: private folders, refused when someone else could have planted a model (issue 24 item 5);
a symbol's models and metadata change together, and each model's own training end is checked (item 6)."""
import datetime as dt
import os
import stat

import dask
import pytest
from sklearn.dummy import DummyRegressor

from stockdag.domain.data.cache import UnsafeCacheDirectory
from stockdag.domain.models import store
from stockdag.errors import InsufficientHistory, ModelStoreError

META = {"symbol": "IBM", "train_end": "2010-12-31"}


@pytest.fixture
def stored(tmp_path):
    root = str(tmp_path / "models")
    store.save(root, "IBM", {"ridge": DummyRegressor().fit([[0.0]], [1.0])}, META)
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
        store.save(stored, "IBM", {"ridge": DummyRegressor()}, META)


def test_a_symlinked_symbol_folder_is_refused(stored, tmp_path):
    os.symlink(os.path.join(stored, "IBM"), os.path.join(stored, "MSFT"))
    with pytest.raises(ModelStoreError, match="not a folder"):
        store.load(stored, "MSFT", "ridge")


def test_each_model_s_own_training_end_is_checked(stored):
    # a model newer than its meta.json (renames interrupted after it) is refused on the days it saw
    store.save(stored, "IBM", {"knn": DummyRegressor().fit([[0.0]], [2.0])}, {**META, "train_end": "2011-06-30"})
    with open(os.path.join(stored, "IBM", "meta.json"), "w") as f:
        f.write('{"symbol": "IBM", "train_end": "2010-12-31"}')
    store.check_covers(store.read_meta(stored, "IBM"), "IBM", dt.date(2011, 3, 1))  # the metadata alone passes
    with pytest.raises(InsufficientHistory, match="fitted on data up to 2011-06-30"):
        store.load(stored, "IBM", "knn", first_scored=dt.date(2011, 3, 1))
    assert store.load(stored, "IBM", "knn", first_scored=dt.date(2011, 7, 1)).predict([[0.0]])[0] == 2.0


def test_metadata_is_renamed_into_place_last(stored, monkeypatch):
    calls = []
    real = os.replace

    def interrupted(src, dst):
        if dst.endswith("meta.json"):
            raise KeyboardInterrupt
        calls.append(dst)
        real(src, dst)

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        store.save(stored, "IBM", {"ridge": DummyRegressor(), "knn": DummyRegressor()}, {**META, "train_end": "2009-12-31"})
    assert [os.path.basename(c) for c in calls] == ["ridge.joblib", "knn.joblib"]
    assert store.read_meta(stored, "IBM")["train_end"] == "2010-12-31"  # the old metadata, never half of the new


def test_an_interrupted_retrain_to_an_earlier_end_causes_no_look_ahead(small, tmp_path, monkeypatch):
    # retraining to 2010-12-31 a store fitted up to 2011-06-30 is stopped at its second model: no model of
    # 2011-06-30 may then be scored on days before that (the old train rewrote meta.json after each model)
    import stockdag
    import stockdag.lab.train as training

    root = training.train(["AAPL"], "2011-06-30", str(tmp_path / "models"), window=120)
    fits, real = [], training.fit_model

    def stopped(*args, **kwargs):
        fits.append(args[0])
        if len(fits) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "fit_model", stopped)
    with pytest.raises(KeyboardInterrupt):
        training.train(["AAPL"], "2010-12-31", root, window=120)
    with dask.config.set({"stockdag.models.store": root}), \
            pytest.raises(InsufficientHistory, match="fitted on data up to 2011-06-30"):
        stockdag.predict("AAPL", "2011-07-05", profile="pretrained")

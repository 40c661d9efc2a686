"""The model store of the ``pretrained`` profile.

``stockdag train`` fits every model of every symbol on data up to
``train_end`` and saves it as ``<store>/<SYMBOL>/<model>.joblib`` (the
estimator and its own ``train_end``) with a ``meta.json`` beside it. Workers
load a model once per process.

Loading a model unpickles it, which runs code: the store is held to the
disk cache's rule. Its folders are created private (0700, files 0600), and
a folder another user owns, or one others can write into, is refused.
"""
from __future__ import annotations

import datetime as dt
import functools
import json
import os
import stat

import joblib

from ...errors import InsufficientHistory, ModelStoreError
from ..data.cache import private_directory

_HINT = "set stockdag.models.store (or train --store) to a folder of your own"


def default_store() -> str:
    return os.path.join(os.path.expanduser("~"), ".cache", "stockdag", "models")


def variant(market: bool) -> str:
    """Suffix of the stored files of models fitted with the market factors (another feature set)."""
    return "@market" if market else ""


def model_path(store: str, symbol: str, name: str, variant: str = "") -> str:
    return os.path.join(store, symbol, f"{name}{variant}.joblib")


def trusted(folder: str) -> str:
    """Raise :class:`ModelStoreError` if ``folder`` (when it exists) is not a real folder of this user's that
    only this user can write into: a model loaded from it runs its code."""
    try:
        st = os.lstat(folder)
    except FileNotFoundError:
        return folder
    why = None
    if not stat.S_ISDIR(st.st_mode):
        why = "is not a folder (a symlink or a file)"
    elif hasattr(os, "getuid") and st.st_uid != os.getuid():
        why = f"belongs to another user (uid {st.st_uid})"
    elif st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        why = "is writable by other users (chmod go-w it)"
    if why:
        raise ModelStoreError(f"model store folder {folder} {why}: refusing to load models from it, since loading "
                              f"a model runs its code; {_HINT}")
    return folder


def _private(folder: str) -> str:
    return trusted(private_directory(folder, "model store folder", _HINT))


def save(store: str, symbol: str, models: dict, meta: dict, variant: str = "") -> list[str]:
    """Store ``models`` ({name: fitted estimator}) of ``symbol`` and their ``meta`` (with ``train_end``).

    Everything is written aside, then renamed into place with ``meta.json`` last, so the metadata never
    names a training end its models do not have. The renames can still be interrupted between two
    models, so each model file carries its own ``train_end``, which :func:`load` checks.
    """
    _private(store)
    folder = _private(os.path.join(store, symbol))
    aside = []
    for name, estimator in models.items():
        path = model_path(store, symbol, name, variant)
        joblib.dump({"train_end": str(meta["train_end"]), "estimator": estimator}, path + ".tmp")
        os.chmod(path + ".tmp", 0o600)
        aside.append(path)
    meta_path = os.path.join(folder, f"meta{variant}.json")
    with open(os.open(meta_path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        json.dump(meta, f, indent=2, default=str)
    for path in [*aside, meta_path]:
        os.replace(path + ".tmp", path)  # atomic each: a reader never sees half a file
    return aside


def _check(store: str, symbol: str) -> None:
    trusted(store)
    trusted(os.path.join(store, symbol))


def read_meta(store: str, symbol: str, variant: str = "") -> dict:
    path = os.path.join(store, symbol, f"meta{variant}.json")
    _check(store, symbol)
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise ModelStoreError(
            f"no pretrained models for {symbol} in {store}; run `stockdag train` first "
            "or use the refit profile"
        ) from None
    except (OSError, ValueError) as exc:
        raise ModelStoreError(f"unreadable model store metadata {path}: {exc}") from None


@functools.lru_cache(maxsize=256)
def _load(path: str, mtime: float):
    return joblib.load(path)


def load(store: str, symbol: str, name: str, variant: str = "", first_scored: dt.date | None = None):
    """Load a stored model (memoised per process, reloaded if the file changes).

    ``first_scored``: the first day it will be scored on, checked against the model's own ``train_end``
    (:func:`check_covers`), which an interrupted retrain may leave newer than ``meta.json``'s.
    """
    path = model_path(store, symbol, name, variant)
    _check(store, symbol)
    try:
        mtime = os.path.getmtime(path)
    except OSError:
        what = f"{name} model{' (with market factors)' if variant else ''}"
        raise ModelStoreError(
            f"no pretrained {what} for {symbol} in {store}; run `stockdag train` with this pipeline spec first"
        ) from None
    try:
        stored = _load(path, mtime)
    except (OSError, EOFError, ValueError, ImportError) as exc:
        raise ModelStoreError(f"cannot load {path}: {exc}") from None
    if not isinstance(stored, dict) or "train_end" not in stored:
        raise ModelStoreError(f"{path} does not say when it was trained (an older stockdag wrote it); "
                              "run `stockdag train` again")
    if first_scored is not None:
        check_covers(stored, symbol, first_scored)
    return stored["estimator"]


def check_covers(meta: dict, symbol: str, first_scored: dt.date) -> None:
    """Refuse to score a stored model on days it was trained on (that would be look-ahead)."""
    train_end = dt.date.fromisoformat(str(meta["train_end"]))
    if first_scored <= train_end:
        raise InsufficientHistory(
            f"pretrained {symbol} models were fitted on data up to {train_end}; choose an as-of date "
            f"whose recent-error window starts after it (it starts {first_scored}; `stockdag symbols --profile pretrained` "
            f"names the first such date) or use the refit profile"
        )

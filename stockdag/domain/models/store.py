"""The model store of the ``pretrained`` profile.

``stockdag train`` fits every model of every symbol on data up to
``train_end`` and saves it as ``<store>/<SYMBOL>/<model>.joblib`` with a
``meta.json`` beside it. Workers load a model once per process.
"""
from __future__ import annotations

import datetime as dt
import functools
import json
import os

import joblib

from ...errors import InsufficientHistory, ModelStoreError


def default_store() -> str:
    return os.path.join(os.path.expanduser("~"), ".cache", "stockdag", "models")


def variant(market: bool) -> str:
    """Suffix of the stored files of models fitted with the market factors (another feature set)."""
    return "@market" if market else ""


def model_path(store: str, symbol: str, name: str, variant: str = "") -> str:
    return os.path.join(store, symbol, f"{name}{variant}.joblib")


def save(store: str, symbol: str, name: str, estimator, meta: dict, variant: str = "") -> str:
    folder = os.path.join(store, symbol)
    os.makedirs(folder, exist_ok=True)
    path = model_path(store, symbol, name, variant)
    tmp = path + ".tmp"
    joblib.dump(estimator, tmp)
    os.replace(tmp, path)  # atomic: a reader never sees half a model
    with open(os.path.join(folder, f"meta{variant}.json"), "w") as f:
        json.dump(meta, f, indent=2, default=str)
    return path


def read_meta(store: str, symbol: str, variant: str = "") -> dict:
    path = os.path.join(store, symbol, f"meta{variant}.json")
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


def load(store: str, symbol: str, name: str, variant: str = ""):
    """Load a stored model (memoised per process, reloaded if the file changes)."""
    path = model_path(store, symbol, name, variant)
    try:
        mtime = os.path.getmtime(path)
    except OSError:
        what = f"{name} model{' (with market factors)' if variant else ''}"
        raise ModelStoreError(
            f"no pretrained {what} for {symbol} in {store}; run `stockdag train` with this pipeline spec first"
        ) from None
    try:
        return _load(path, mtime)
    except (OSError, EOFError, ValueError, ImportError) as exc:
        raise ModelStoreError(f"cannot load {path}: {exc}") from None


def check_covers(meta: dict, symbol: str, first_scored: dt.date) -> None:
    """Refuse to score a stored model on days it was trained on (that would be look-ahead)."""
    train_end = dt.date.fromisoformat(str(meta["train_end"]))
    if first_scored <= train_end:
        raise InsufficientHistory(
            f"pretrained {symbol} models were fitted on data up to {train_end}; choose an as-of date "
            f"whose recent-error window starts after it (it starts {first_scored}; `stockdag symbols --profile pretrained` "
            f"names the first such date) or use the refit profile"
        )

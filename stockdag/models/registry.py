"""Registry of the five competing model families (C7-C11).

Each entry builds a scikit-learn estimator (the estimator contract: ``__init__``
stores parameters, ``fit`` returns self, learned attributes end in ``_``),
seeded and single-threaded: the executors, not the libraries, decide the
parallelism, and results are reproducible. Add a model by adding a
:class:`ModelSpec` to :data:`MODELS` (and a stage to the pipeline table).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from sklearn.base import BaseEstimator
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import Ridge
from sklearn.neighbors import KNeighborsRegressor
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

SEED = 0


def _ridge() -> BaseEstimator:
    return make_pipeline(StandardScaler(), Ridge(alpha=10.0))


def _random_forest() -> BaseEstimator:
    return RandomForestRegressor(
        n_estimators=100, max_depth=5, min_samples_leaf=10, random_state=SEED, n_jobs=1
    )


def _lightgbm() -> BaseEstimator:
    from lightgbm import LGBMRegressor

    return LGBMRegressor(
        n_estimators=150, learning_rate=0.03, num_leaves=15, min_child_samples=20,
        subsample=0.8, subsample_freq=1, colsample_bytree=0.8, random_state=SEED,
        n_jobs=1, num_threads=1, deterministic=True, force_col_wise=True, verbose=-1,
    )


def _knn() -> BaseEstimator:
    return make_pipeline(StandardScaler(), KNeighborsRegressor(n_neighbors=25, weights="uniform", n_jobs=1))


def _mlp() -> BaseEstimator:
    # daily returns are ~1e-2: scaling the target keeps the network's output in range
    return TransformedTargetRegressor(
        regressor=make_pipeline(
            StandardScaler(),
            MLPRegressor(hidden_layer_sizes=(32, 16), alpha=1.0, learning_rate_init=1e-3,
                         max_iter=200, early_stopping=False, random_state=SEED),
        ),
        transformer=StandardScaler(),
    )


@dataclass(frozen=True)
class ModelSpec:
    """One competing model: its stage id, name, family and estimator factory."""

    id: str
    name: str
    family: str
    factory: Callable[[], BaseEstimator]


MODELS: tuple[ModelSpec, ...] = (
    ModelSpec("C7", "ridge", "linear (scikit-learn Ridge)", _ridge),
    ModelSpec("C8", "random_forest", "bagged trees (scikit-learn RandomForest)", _random_forest),
    ModelSpec("C9", "lightgbm", "gradient-boosted trees (LightGBM)", _lightgbm),
    ModelSpec("C10", "knn", "nearest neighbours (scikit-learn KNN)", _knn),
    ModelSpec("C11", "mlp", "neural network (scikit-learn MLP)", _mlp),
)
MODELS_BY_NAME = {m.name: m for m in MODELS}


def make_estimator(name: str) -> BaseEstimator:
    """A fresh, unfitted estimator of the model called ``name``."""
    return MODELS_BY_NAME[name].factory()

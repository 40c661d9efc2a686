"""Registry of the competing models: the five original families (C7-C11) and their variants.

Each entry builds a scikit-learn estimator (the estimator contract: ``__init__``
stores parameters, ``fit`` returns self, learned attributes end in ``_``),
seeded and single-threaded: the executors, not the libraries, decide the
parallelism, and results are reproducible. Add a model by adding a
:class:`ModelSpec` to :data:`REGISTRY` with a stage id of its own (the ids are
stable whichever pipeline spec uses the model, so traces stay comparable); a
pipeline spec (:mod:`stockdag.pipeline.spec`) then names it. :data:`MODELS` is
the default pipeline's five.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from sklearn.base import BaseEstimator
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import ExtraTreesRegressor, GradientBoostingRegressor, HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import ElasticNet, Ridge
from sklearn.neighbors import KNeighborsRegressor
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVR

SEED = 0


def _ridge(alpha: float = 10.0) -> BaseEstimator:
    return make_pipeline(StandardScaler(), Ridge(alpha=alpha))


def _random_forest(n_estimators: int = 100) -> BaseEstimator:
    return RandomForestRegressor(
        n_estimators=n_estimators, max_depth=5, min_samples_leaf=10, random_state=SEED, n_jobs=1
    )


def _lightgbm(max_depth: int = -1) -> BaseEstimator:
    from lightgbm import LGBMRegressor

    return LGBMRegressor(
        n_estimators=150, learning_rate=0.03, num_leaves=15, min_child_samples=20, max_depth=max_depth,
        subsample=0.8, subsample_freq=1, colsample_bytree=0.8, random_state=SEED,
        n_jobs=1, num_threads=1, deterministic=True, force_col_wise=True, verbose=-1,
    )


def _knn(k: int = 25) -> BaseEstimator:
    return make_pipeline(StandardScaler(), KNeighborsRegressor(n_neighbors=k, weights="uniform", n_jobs=1))


def _mlp(hidden: tuple[int, ...] = (32, 16)) -> BaseEstimator:
    # daily returns are ~1e-2: scaling the target keeps the network's output in range
    return TransformedTargetRegressor(
        regressor=make_pipeline(
            StandardScaler(),
            MLPRegressor(hidden_layer_sizes=hidden, alpha=1.0, learning_rate_init=1e-3,
                         max_iter=200, early_stopping=False, random_state=SEED),
        ),
        transformer=StandardScaler(),
    )


def _gradient_boosting() -> BaseEstimator:
    return GradientBoostingRegressor(n_estimators=100, learning_rate=0.05, max_depth=2, subsample=0.8,
                                     min_samples_leaf=10, random_state=SEED)


def _hist_gradient_boosting() -> BaseEstimator:
    # OpenMP threads are limited to one by stockdag.domain.models.compete.single_threaded
    return HistGradientBoostingRegressor(max_iter=100, learning_rate=0.05, max_leaf_nodes=15, min_samples_leaf=20,
                                         early_stopping=False, random_state=SEED)


def _elastic_net() -> BaseEstimator:
    return make_pipeline(StandardScaler(), ElasticNet(alpha=1e-4, l1_ratio=0.5, max_iter=5000, random_state=SEED))


def _svr() -> BaseEstimator:
    # epsilon in target units: the target is scaled, as for the MLP
    return TransformedTargetRegressor(
        regressor=make_pipeline(StandardScaler(), SVR(C=0.5, epsilon=0.1, gamma="scale")),
        transformer=StandardScaler(),
    )


def _extra_trees() -> BaseEstimator:
    return ExtraTreesRegressor(n_estimators=100, max_depth=5, min_samples_leaf=10, random_state=SEED, n_jobs=1)


@dataclass(frozen=True)
class ModelSpec:
    """One competing model: its stage id, name, family and estimator factory."""

    id: str
    name: str
    family: str
    factory: Callable[[], BaseEstimator]


MODELS: tuple[ModelSpec, ...] = (
    ModelSpec("C7", "ridge", "linear (scikit-learn Ridge, alpha 10)", _ridge),
    ModelSpec("C8", "random_forest", "bagged trees (scikit-learn RandomForest, 100 trees)", _random_forest),
    ModelSpec("C9", "lightgbm", "gradient-boosted trees (LightGBM)", _lightgbm),
    ModelSpec("C10", "knn", "nearest neighbours (scikit-learn KNN, k 25)", _knn),
    ModelSpec("C11", "mlp", "neural network (scikit-learn MLP, 32x16)", _mlp),
)
#: every model a pipeline spec may name; ids after C16 (C13-C16 are the extra steps)
REGISTRY: tuple[ModelSpec, ...] = (
    *MODELS,
    ModelSpec("C17", "ridge_a1", "linear (scikit-learn Ridge, alpha 1)", functools.partial(_ridge, 1.0)),
    ModelSpec("C18", "ridge_a100", "linear (scikit-learn Ridge, alpha 100)", functools.partial(_ridge, 100.0)),
    ModelSpec("C19", "rf_50", "bagged trees (scikit-learn RandomForest, 50 trees)", functools.partial(_random_forest, 50)),
    ModelSpec("C20", "rf_200", "bagged trees (scikit-learn RandomForest, 200 trees)", functools.partial(_random_forest, 200)),
    ModelSpec("C21", "rf_500", "bagged trees (scikit-learn RandomForest, 500 trees)", functools.partial(_random_forest, 500)),
    ModelSpec("C22", "lightgbm_d3", "gradient-boosted trees (LightGBM, depth 3)", functools.partial(_lightgbm, 3)),
    ModelSpec("C23", "lightgbm_d6", "gradient-boosted trees (LightGBM, depth 6)", functools.partial(_lightgbm, 6)),
    ModelSpec("C24", "knn_5", "nearest neighbours (scikit-learn KNN, k 5)", functools.partial(_knn, 5)),
    ModelSpec("C25", "knn_20", "nearest neighbours (scikit-learn KNN, k 20)", functools.partial(_knn, 20)),
    ModelSpec("C26", "mlp_small", "neural network (scikit-learn MLP, 16)", functools.partial(_mlp, (16,))),
    ModelSpec("C27", "mlp_large", "neural network (scikit-learn MLP, 64x32)", functools.partial(_mlp, (64, 32))),
    ModelSpec("C28", "gradient_boosting", "gradient-boosted trees (scikit-learn GradientBoosting)", _gradient_boosting),
    ModelSpec("C29", "hist_gradient_boosting", "histogram gradient boosting (scikit-learn)", _hist_gradient_boosting),
    ModelSpec("C30", "elastic_net", "linear (scikit-learn ElasticNet)", _elastic_net),
    ModelSpec("C31", "svr", "kernel regression (scikit-learn SVR, RBF)", _svr),
    ModelSpec("C32", "extra_trees", "randomised trees (scikit-learn ExtraTrees, 100 trees)", _extra_trees),
)
MODELS_BY_NAME = {m.name: m for m in REGISTRY}


def make_estimator(name: str) -> BaseEstimator:
    """A fresh, unfitted estimator of the model called ``name`` (any :data:`REGISTRY` entry)."""
    return MODELS_BY_NAME[name].factory()

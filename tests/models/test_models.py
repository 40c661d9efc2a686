"""One conformance check over every registered model, and the competition."""
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted

from stockdag.domain.models import MODELS, REGISTRY, Candidate, make_estimator, select


@pytest.fixture
def xy():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 16))
    y = 0.01 * X[:, 0] - 0.005 * X[:, 3] + rng.normal(scale=0.01, size=200)
    return X, y


def test_registry_has_five_families_with_stage_ids():
    assert [m.id for m in MODELS] == ["C7", "C8", "C9", "C10", "C11"]
    assert len({m.name for m in MODELS}) == 5
    families = " ".join(m.family for m in MODELS)
    assert "LightGBM" in families and "Ridge" in families and "RandomForest" in families


def test_registry_variants_and_new_families_have_their_own_stable_ids():
    assert REGISTRY[:5] == MODELS  # the default five keep C7-C11
    ids = [m.id for m in REGISTRY]
    assert len(set(ids)) == len(ids) and len({m.name for m in REGISTRY}) == len(REGISTRY)
    assert not {"C12", "C13", "C14", "C15", "C16"} & set(ids)  # those are the select and extra steps
    families = " ".join(m.family for m in REGISTRY)
    for fam in ("GradientBoosting", "ElasticNet", "SVR", "ExtraTrees"):
        assert fam in families
    assert sum("Ridge" in m.family for m in REGISTRY) == 3 and sum("KNN" in m.family for m in REGISTRY) == 3


@pytest.mark.parametrize("spec", REGISTRY, ids=lambda m: m.name)
def test_estimator_contract(spec, xy):
    X, y = xy
    est = make_estimator(spec.name)
    params = est.get_params()
    twin = clone(est)
    assert twin.get_params().keys() == params.keys()
    with pytest.raises(Exception, match="(?i)not fitted|fit"):
        check_is_fitted(est)
    assert est.fit(X, y) is est  # fit returns self
    check_is_fitted(est)
    assert any(a.endswith("_") and not a.startswith("_") for a in vars(est)) or hasattr(est, "steps")
    pred = est.predict(X[:7])
    assert pred.shape == (7,) and np.isfinite(pred).all()
    # seeded: a clone fitted on the same data predicts exactly the same
    np.testing.assert_array_equal(clone(est).fit(X, y).predict(X[:7]), pred)
    # single-threaded: the executors own the parallelism
    for key, value in params.items():
        if key.endswith(("n_jobs", "num_threads")):
            assert value == 1, key


def test_lowest_recent_error_wins_and_everyone_is_kept():
    cands = [Candidate("a", 0.01, 0.02, 1), Candidate("b", -0.01, 0.01, 1), Candidate("c", 0.0, 0.01, 1)]
    sel = select(cands)
    assert sel.winner.model == "b"  # tie with c: the earlier model wins
    assert [c.model for c in sel.candidates] == ["a", "b", "c"]

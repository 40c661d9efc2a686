"""C15 ensemble weights and C16 split-conformal intervals."""
import math

import numpy as np
import pytest

from stockdag.domain.models import Candidate
from stockdag.domain.models.combine import conformal_halfwidth, ensemble_weights


def test_weights_are_inverse_errors_summing_to_one():
    np.testing.assert_allclose(ensemble_weights([0.01, 0.02, 0.04]), np.array([4, 2, 1]) / 7)
    np.testing.assert_allclose(ensemble_weights([0.0, 0.02]), [0.5, 0.5])  # no division by zero
    np.testing.assert_allclose(ensemble_weights([math.inf, math.inf]), [0.5, 0.5])  # no history yet


def test_conformal_halfwidth_is_the_right_order_statistic():
    r = np.arange(1, 21) * (-1.0) ** np.arange(20)  # |r| = 1..20
    assert conformal_halfwidth(r, 0.9) == 19  # ceil(21 * 0.9) = 19th smallest
    assert conformal_halfwidth(r, 0.5) == 11
    assert conformal_halfwidth(r, 0.99) == math.inf  # 20 days cannot support 99%
    assert conformal_halfwidth([], 0.9) == math.inf


@pytest.mark.parametrize("level", [0.8, 0.9])
def test_split_conformal_covers_at_least_its_level_on_exchangeable_errors(level):
    rng = np.random.default_rng(1)
    trials = 4000
    errors = rng.standard_t(df=3, size=(trials, 21))  # heavy tails: no normality assumed
    covered = [abs(e[-1]) <= conformal_halfwidth(e[:-1], level) for e in errors]
    # the guarantee is >= level (and < level + 1/(n+1)); 4000 trials: standard error ~0.005
    assert level - 0.02 <= np.mean(covered) <= level + 1 / 21 + 0.02


def test_ensemble_and_interval_stages_add_their_answer_to_the_prediction(small):
    import dataclasses

    from stockdag.pipeline import Prediction, ensemble_stage, interval_stage
    from stockdag.pipeline.request import parse_request
    from stockdag.pipeline.spec import PipelineSpec

    req = parse_request("AAPL", "2012-06-01", pipeline=PipelineSpec(steps=("ensemble", "interval"), interval_level=0.5))
    cands = (Candidate("a", 0.01, 0.01, 1, (0.01, -0.02, 0.03)), Candidate("b", -0.01, 0.03, 1, (0.1, 0.1, 0.1)))
    pred = Prediction("AAPL", req.as_of, "refit", "bundled", 100.0, 101.0, 0.01, "a", cands, {}, {})
    ens = ensemble_stage(req, pred)
    assert ens.ensemble.weights == pytest.approx({"a": 0.75, "b": 0.25})
    assert ens.ensemble.next_return == pytest.approx(0.75 * 0.01 - 0.25 * 0.01)
    out = interval_stage(req, ens)
    assert out.ensemble == ens.ensemble and dataclasses.replace(out, interval=None, ensemble=None) == pred
    # the winner's residuals calibrate: ceil(4 * 0.5) = 2nd smallest of |0.01|, |0.02|, |0.03|
    assert out.interval.lower == pytest.approx(0.01 - 0.02) and out.interval.upper == pytest.approx(0.03)
    assert out.interval.lower_close == pytest.approx(99.0) and out.interval.calibration_days == 3

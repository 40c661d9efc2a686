"""The five competing models (C7-C11), the selector (C12) and the model store."""
from .registry import MODELS, ModelSpec, make_estimator  # noqa: F401
from .compete import Candidate, fit_predict, predict_pretrained  # noqa: F401
from .select import Selection, select  # noqa: F401

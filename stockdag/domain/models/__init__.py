"""The competing models (the default five: C7-C11, variants in the registry), the selector (C12) and the model store."""
from .compete import Candidate, fit_model, fit_predict, model_inputs, predict_model, predict_pretrained  # noqa: F401
from .registry import MODELS, MODELS_BY_NAME, REGISTRY, ModelSpec, make_estimator  # noqa: F401
from .select import Selection, select, winner_index  # noqa: F401

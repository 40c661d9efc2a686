"""Pipeline specs: which models compete and which extra steps run, as a YAML file validated before use.

The stage table of :mod:`stockdag.pipeline` is derived from a
:class:`PipelineSpec`; the spec travels inside each
:class:`~stockdag.pipeline.request.Request`, so a remote worker builds nothing from its
own files or configuration. Example (``experiments/pipelines/deep.yaml``)::

    name: deep
    models: [ridge, random_forest, lightgbm, knn, mlp]
    steps: [market, ensemble, interval]
    interval_level: 0.9

``models`` are names from :data:`stockdag.domain.models.REGISTRY` (each keeps its
stage id whichever spec uses it); ``steps`` are names from :data:`STEPS`.
To extend: add a step name to :data:`STEPS` and its stages to
:func:`stockdag.pipeline.stage_table`; unknown keys, models and steps are
rejected by name, so a typo never silently falls back to a default.
"""
from __future__ import annotations

import dataclasses
import functools
import os
import re
from typing import Any

import yaml

from ..config import shipped_spec, shipped_specs
from ..errors import StockdagError

#: the optional steps after C12, in the order they run: stage ids in the README's stage table
STEPS = {
    "market": "C13 fetch_market + C14 market_features: other bundled symbols as market and peer factors",
    "ensemble": "C15 ensemble: inverse-recent-error weighted average of the candidates",
    "interval": "C16 interval: split-conformal prediction interval from the winner's recent errors",
}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,40}$")


class PipelineSpecError(StockdagError, ValueError):
    """A pipeline spec is missing, malformed, or names an unknown key, model or step."""

    http_status = 422


@dataclasses.dataclass(frozen=True)
class PipelineSpec:
    """The pipeline a request runs (hashable: it keys the derived stage table).

    Parameters
    ----------
    name : str
        Label recorded in run configs and responses.
    models : tuple of str
        Competing models, by registry name, in stage order.
    steps : tuple of str
        Extra steps (:data:`STEPS`), kept in the order of :data:`STEPS`.
    interval_level : float
        Nominal coverage of the ``interval`` step, in (0, 1).
    """

    name: str = "default"
    models: tuple[str, ...] = ("ridge", "random_forest", "lightgbm", "knn", "mlp")
    steps: tuple[str, ...] = ()
    interval_level: float = 0.9

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "models": list(self.models), "steps": list(self.steps),
                "interval_level": self.interval_level}


DEFAULT = PipelineSpec()
_FIELDS = tuple(f.name for f in dataclasses.fields(PipelineSpec))


def from_dict(raw: object, where: str = "pipeline spec") -> PipelineSpec:
    """Validate a mapping (a parsed YAML file) into a :class:`PipelineSpec`."""
    from ..domain.models.registry import MODELS_BY_NAME

    if not isinstance(raw, dict):
        raise PipelineSpecError(f"{where}: expected a mapping of {', '.join(_FIELDS)}, got {type(raw).__name__}")
    extra = [k for k in raw if k not in _FIELDS]
    if extra:
        raise PipelineSpecError(f"{where}: unknown key {extra[0]!r}; allowed: {', '.join(_FIELDS)}")
    name = str(raw.get("name", "default"))
    if not _NAME.match(name):
        raise PipelineSpecError(f"{where}: malformed name {name!r}: letters, digits, _ . - (up to 41)")
    models = raw.get("models", list(DEFAULT.models))
    if not isinstance(models, list) or not models or not all(isinstance(m, str) for m in models):
        raise PipelineSpecError(f"{where}: models must be a non-empty list of model names")
    unknown = [m for m in models if m not in MODELS_BY_NAME]
    if unknown:
        raise PipelineSpecError(f"{where}: unknown model {unknown[0]!r}; choose from: {', '.join(MODELS_BY_NAME)}")
    dup = [m for i, m in enumerate(models) if m in models[:i]]
    if dup:
        raise PipelineSpecError(f"{where}: model {dup[0]!r} is listed twice")
    steps = raw.get("steps", []) or []
    if not isinstance(steps, list) or not all(isinstance(s, str) for s in steps):
        raise PipelineSpecError(f"{where}: steps must be a list of step names ({', '.join(STEPS)})")
    bad = [s for s in steps if s not in STEPS]
    if bad:
        raise PipelineSpecError(f"{where}: unknown step {bad[0]!r}; choose from: {', '.join(STEPS)}")
    level = raw.get("interval_level", DEFAULT.interval_level)
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 < level < 1:
        raise PipelineSpecError(f"{where}: interval_level must be a number in (0, 1), got {level!r}")
    return PipelineSpec(name=name, models=tuple(models), steps=tuple(s for s in STEPS if s in steps),
                        interval_level=float(level))


SHIPPED = "pipeline/pipelines"  # the named specs in the package: a link to experiments/pipelines in a checkout


def load_pipeline(spec: object) -> PipelineSpec:
    """A :class:`PipelineSpec` from a spec, a mapping, a YAML file path, a shipped name
    (``experiments/pipelines``: ``wide``, ``width/w10``), or None (the default C1-C12)."""
    if spec is None:
        return DEFAULT
    if isinstance(spec, PipelineSpec):
        return spec
    if isinstance(spec, dict):
        return from_dict(spec)
    if not isinstance(spec, (str, os.PathLike)):
        raise PipelineSpecError(f"pipeline spec must be a YAML file path, got {type(spec).__name__}")
    path = os.fspath(spec)
    if not os.path.exists(path):  # a shipped name (experiments/pipelines), as cluster specs take one
        path = shipped_spec(SHIPPED, path) or path
    try:
        return _load_file(os.path.abspath(path), os.path.getmtime(path))
    except FileNotFoundError:
        raise PipelineSpecError(f"pipeline spec {path}: no such file; give a YAML file or one of the named specs "
                                f"({', '.join(shipped_specs(SHIPPED))})") from None
    except (OSError, yaml.YAMLError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PipelineSpecError(f"pipeline spec {path}: unreadable ({first})") from None


@functools.lru_cache(maxsize=64)
def _load_file(path: str, mtime: float) -> PipelineSpec:
    # memoised per (file, modification time): a spec named in the configuration is read once, not per request
    with open(path) as f:
        raw = yaml.safe_load(f)
    return from_dict(raw, f"pipeline spec {path}")

"""The serving modes: the one owner of their names.

``centralized``
    one request's pipeline at a time, stage after stage, in one process (the baseline);
``replicated``
    whole requests on K processes (what model-serving replicas do); a server's mode only;
``distributed``
    the request's ``dask.delayed`` graph on a Dask cluster.

The CLI, the server (:data:`stockdag.serve.backends.BACKENDS` is keyed by these
names), the sweep and :func:`stockdag.predict` import them from here.
"""
from __future__ import annotations

from ..errors import InvalidRequest

CENTRALIZED = "centralized"
REPLICATED = "replicated"
DISTRIBUTED = "distributed"

#: the modes a server (``stockdag serve``) and a sweep run, the baseline first
SERVING_MODES: tuple[str, ...] = (CENTRALIZED, REPLICATED, DISTRIBUTED)
#: the modes of one prediction (``stockdag predict``, :func:`stockdag.predict`): replicating is a server's
PREDICT_MODES: tuple[str, ...] = (CENTRALIZED, DISTRIBUTED)


def check_mode(name: str, modes: tuple[str, ...] = SERVING_MODES) -> str:
    """Return ``name`` if it is one of ``modes``; else :class:`~stockdag.errors.InvalidRequest` listing them."""
    if name not in modes:
        raise InvalidRequest(f"unknown mode {name!r}; choose one of: {', '.join(modes)}")
    return name

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

from typing import Final, Literal, TypeGuard, get_args

from ..errors import InvalidRequest

#: a serving mode, as a type (the tuples below are its values)
Mode = Literal["centralized", "replicated", "distributed"]

CENTRALIZED: Final = "centralized"
REPLICATED: Final = "replicated"
DISTRIBUTED: Final = "distributed"

#: the modes a server (``stockdag serve``) and a sweep run, the baseline first
SERVING_MODES: tuple[Mode, ...] = get_args(Mode)
#: the modes of one prediction (``stockdag predict``, :func:`stockdag.predict`): replicating is a server's
PREDICT_MODES: tuple[Mode, ...] = (CENTRALIZED, DISTRIBUTED)


def _is_mode(name: str, modes: tuple[Mode, ...]) -> TypeGuard[Mode]:
    return name in modes


def check_mode(name: str, modes: tuple[Mode, ...] = SERVING_MODES) -> Mode:
    """Return ``name`` if it is one of ``modes``; else :class:`~stockdag.errors.InvalidRequest` listing them."""
    if not _is_mode(name, modes):
        raise InvalidRequest(f"unknown mode {name!r}; choose one of: {', '.join(modes)}")
    return name

"""Dask settings of the workers stockdag starts, so distributed runs pay no cost the baseline does not.

Dask's statistical profiler samples every worker thread's stack (10 ms by
default) and costs 2-7% of a stage's time; the centralized baseline runs no such
thing. ``stockdag.worker_profiler`` (off by default) decides for every
LocalCluster and deploy kind stockdag starts: in process through the Nanny's
``config``, in a subprocess or a container through Dask's environment variable.
"""
from __future__ import annotations

from .. import config

#: the dask.config key stockdag sets on its workers
PROFILER_KEY = "distributed.worker.profile.enabled"


def profiler_enabled(enabled: bool | None = None) -> bool:
    """Whether the workers stockdag starts run Dask's profiler (``stockdag.worker_profiler``)."""
    return bool(config.get("worker_profiler", enabled))


def worker_config(enabled: bool | None = None) -> dict:
    """The dask.config a Nanny passes to its worker process (``Nanny(config=...)``, LocalCluster's kwargs).

    The whole ``distributed`` section with the setting merged in: the Nanny merges only top-level keys
    (``toolz.merge``), so a section holding the one key would replace all of Dask's own.
    """
    import dask.config

    ours = {"worker": {"profile": {"enabled": profiler_enabled(enabled)}}}
    return {"distributed": dask.config.merge(dask.config.get("distributed"), ours)}


def worker_env(enabled: bool | None = None) -> dict[str, str]:
    """The same setting as the environment variable of a ``dask worker`` process."""
    return {"DASK_" + PROFILER_KEY.upper().replace(".", "__"): str(profiler_enabled(enabled))}


def facts() -> dict:
    """What a run records about its workers' settings."""
    return {PROFILER_KEY: profiler_enabled()}

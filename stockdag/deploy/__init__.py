"""Cluster specifications and the clusters they start: one kind a module (``local``, ``emulated``, ``ec2``, ``ssh``),
all registered in :data:`KINDS`.

>>> from stockdag.deploy import start
>>> with start("experiments/clusters/local-2.yaml") as cluster:   # doctest: +SKIP
...     with cluster.executor() as ex:
...         ex.run(request)

:func:`start` tears the cluster down on every exit path (errors, Ctrl-C).
:func:`plan` says what would start, and at what cost, without starting anything.
"""
from __future__ import annotations

import contextlib
import signal
import threading

from .base import Deployment
from .plan import plan
from .spec import KINDS, ClusterSpec, DeployError, EmulationUnavailable, SpecError, WorkerGroup, load_spec, parse_spec


@contextlib.contextmanager
def start(spec, **options):
    """Start the cluster a spec describes; yield its :class:`Deployment`; stop it on exit.

    Parameters
    ----------
    spec : str, path, dict or ClusterSpec
        A YAML file, a name in ``experiments/clusters``, a mapping, or a loaded spec.
    **options
        Passed to the backend class (e.g. ``cluster_id``).

    A SIGTERM received in the main thread while the cluster runs is turned into
    KeyboardInterrupt so that it, too, tears the cluster down.
    """
    spec = load_spec(spec)
    deployment = KINDS[spec.kind](spec, **options)
    previous = None
    if threading.current_thread() is threading.main_thread():
        def _term(signum, frame):
            raise KeyboardInterrupt(f"signal {signum}")

        previous = signal.signal(signal.SIGTERM, _term)
    try:
        deployment.start()
        yield deployment
    finally:
        try:
            deployment.close()
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)


__all__ = ["start", "plan", "load_spec", "parse_spec", "ClusterSpec", "WorkerGroup", "Deployment",
           "SpecError", "DeployError", "EmulationUnavailable", "KINDS"]

"""Processes of their own for whole requests: the centralized baseline and the replicated server's replicas.

A baseline measured in the process that also hosts a Dask scheduler, a client's
event loop or a load generator shares their interpreter and GIL, and runs slower
than a user's own process would (``stockdag fairness`` measures by how much). :func:`~stockdag.run.isolated.process_pool` is the
one owner of how such a process starts: spawned (a fork would copy the parent's
event loop and threads half-way), Ctrl-C left to the parent, the pipeline
imported before the first request.
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from concurrent.futures import ProcessPoolExecutor


def leave_ctrl_c_to_the_parent() -> None:
    """Ignore SIGINT: Ctrl-C in a terminal signals the whole foreground process group, and the parent
    shuts its children down itself (else each prints a KeyboardInterrupt traceback)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def warm() -> int:
    """Import the pipeline (pandas, scikit-learn, lightgbm) before the first request pays for it.

    Returns this process's pid, so a caller can tell which of a pool's processes have started (run their
    initializer) and are past the import that a Ctrl-C would interrupt with a traceback.
    """
    from .. import pipeline  # noqa: F401

    return os.getpid()


def process_pool(processes: int = 1) -> ProcessPoolExecutor:
    """``processes`` spawned processes, each running one call at a time in its main thread."""
    return ProcessPoolExecutor(max_workers=processes, mp_context=multiprocessing.get_context("spawn"),
                               initializer=leave_ctrl_c_to_the_parent)


def process_facts() -> dict:
    """What shares this process: its pid, its threads' names, and whether it hosts a Dask client or scheduler.

    Recorded beside a baseline's figures, so a reader can check that it ran alone.
    """
    import sys

    client = scheduler = False
    if "distributed" in sys.modules:  # never imported: nothing of Dask's can run here
        from distributed import Scheduler, default_client

        try:
            default_client()
            client = True
        except ValueError:
            pass
        scheduler = any(True for _ in Scheduler._instances)
    return {"pid": os.getpid(), "threads": sorted(t.name for t in threading.enumerate()),
            "dask_client": client, "dask_scheduler": scheduler}

"""Processes of their own for whole requests: the centralized baseline and the replicated server's replicas.

A baseline measured in the process that also hosts a Dask scheduler, a client's
event loop or a load generator shares their interpreter and GIL, and runs slower
than a user's own process would (``stockdag fairness`` measures by how much). :func:`~stockdag.run.isolated.process_pool` is the
one owner of how such a process starts: spawned (a fork would copy the parent's
event loop and threads half-way), Ctrl-C left to the parent, the pipeline
imported before the first request. :func:`~stockdag.run.isolated.ctrl_c_left_to_this_process` starts
processes and threads that never see a terminal's Ctrl-C at all.
"""
from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.util
import os
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor


def leave_ctrl_c_to_the_parent() -> None:
    """Ignore SIGINT: Ctrl-C in a terminal signals the whole foreground process group, and the parent
    shuts its children down itself (else each prints a KeyboardInterrupt traceback)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def ctrl_c_left_to_this_process() -> Iterator[None]:
    """Start processes and threads inside this block: they leave Ctrl-C to this process from their first instruction.

    A terminal sends Ctrl-C (SIGINT) to its whole foreground process group, so each child process (Dask
    worker, pool process) would print its own KeyboardInterrupt traceback; one that ignores SIGINT only
    once its code runs still does while it imports. Here the calling thread blocks SIGINT: a thread started
    inside inherits that mask for its life, and so does every process started from such a thread (a
    signal mask survives fork and exec; Python never unblocks it), so SIGINT stays pending in them, unseen.
    This process still gets it (the kernel gives it to a thread that does not block it: the main thread once
    the block ends, which then shuts the children down); one arriving inside the block is delivered at its end.
    """
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@contextlib.contextmanager
def sigterm_unwinds() -> Iterator[None]:
    """While the block runs, SIGTERM of this process raises SystemExit, so its teardown and exit handlers run.

    Python's default for SIGTERM ends the process without running ``finally`` blocks or exit handlers (among
    them :func:`stockdag.cli.exits.end_resource_tracker_before_exit`'s). Only from the main thread (where signal handlers live)
    and only when no one else handles SIGTERM.
    """
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        yield
        return

    def _raise(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def warm() -> int:
    """Import the pipeline (pandas, scikit-learn, lightgbm) before the first request pays for it.

    Returns this process's pid, so a caller can tell which of a pool's processes have started (run their
    initializer) and are past the import that a Ctrl-C would interrupt with a traceback.
    """
    from .. import pipeline  # noqa: F401

    return os.getpid()


def process_pool(processes: int = 1) -> ProcessPoolExecutor:
    """``processes`` spawned processes, each running one call at a time in its main thread."""
    from .main_guard import check_main_guard

    check_main_guard("replica processes", method="spawn")
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

"""What every ``stockdag`` command does at its exit: no process of its own outlives it.

Kept out of :mod:`stockdag.run` (whose package imports the executors, Dask and the stages) so that
``stockdag --help`` stays light.
"""
from __future__ import annotations

import multiprocessing.util
import os
import time


def end_resource_tracker_before_exit(timeout: float = 10.0) -> None:
    """At this process's exit, end multiprocessing's resource tracker (if it started one) and wait for it.

    Spawned processes (Dask workers, pool processes) share one tracker process, which ends when the last of
    them and its parent have closed its pipe: left alone it outlives the command by a moment, so a command
    ended by Ctrl-C (or otherwise) would leave a process behind. Run last among multiprocessing's exit
    finalizers, after the semaphores' (priority 0), which would otherwise start a new tracker; ``timeout``
    bounds the wait should a child outlive this process.
    """
    def end() -> None:
        from multiprocessing import resource_tracker

        tracker = resource_tracker._resource_tracker  # the process's one tracker (CPython 3.8-3.14: _fd, _pid)
        with tracker._lock:
            if tracker._fd is None:
                return  # never started
            os.close(tracker._fd)  # its end of file: the tracker cleans up and exits
            tracker._fd, pid, tracker._pid = None, tracker._pid, None
        deadline = time.monotonic() + timeout
        while os.waitpid(pid, os.WNOHANG) == (0, 0) and time.monotonic() < deadline:
            time.sleep(0.01)

    global _tracker_ended_at_exit
    if not _tracker_ended_at_exit:  # once, however many times a process runs a command
        multiprocessing.util.Finalize(None, end, exitpriority=-100)
        _tracker_ended_at_exit = True


_tracker_ended_at_exit = False

"""What every result records beside its numbers: versions, git commit, machine facts.

:func:`parallel_capacity` measures how much faster two (or more) processes
get pure-Python CPU work done than one: on a VM the cores the OS reports are
not always independent, and that measured ceiling, not ``os.cpu_count()``, is
the physical limit on throughput drawn beside the results.
"""
from __future__ import annotations

import importlib.metadata
import multiprocessing as mp
import os
import platform
import subprocess
import time

PACKAGES = ("stockdag", "dask", "distributed", "pandas", "numpy", "scikit-learn", "lightgbm", "nltk",
            "bokeh", "fastapi", "uvicorn", "aiohttp", "papermill", "yfinance", "dask-cloudprovider")


def versions() -> dict:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_commit(path: str | None = None) -> dict:
    """The commit of the working tree (and whether it had uncommitted changes)."""
    cwd = path or os.getcwd()
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                                    capture_output=True, text=True, check=True).stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}
    return {"commit": sha, "dirty": dirty}


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _spin(n: int) -> float:
    t = time.perf_counter()
    s = 0
    for i in range(n):
        s += i * i
    return time.perf_counter() - t


def speed_probe(n: int = 300_000, rounds: int = 3) -> float:
    """Seconds of a short fixed CPU-bound loop (best of ``rounds``; ~20-60 ms in all).

    Recorded beside every sweep point: on a shared host the same loop takes
    longer while other work competes for the cores, so the probe's spread over
    a run shows how much the machine drifted, and which points ran slow.
    """
    return round(min(_spin(n) for _ in range(rounds)), 6)


def parallel_capacity(processes: int | None = None, n: int = 4_000_000, rounds: int = 3) -> float:
    """Measured speed-up of ``processes`` CPU-bound processes over one (best of ``rounds``)."""
    processes = processes or os.cpu_count() or 1
    if processes == 1:
        return 1.0
    from ...run.isolated import ctrl_c_left_to_this_process

    ctx = mp.get_context("spawn")
    one, wall = float("inf"), float("inf")
    with ctrl_c_left_to_this_process():  # its processes (and the thread that replaces them): Ctrl-C stops this one
        pool = ctx.Pool(processes)
    with pool:
        pool.map(_spin, [1000] * processes)  # start-up excluded
        for _ in range(rounds):  # best of each, measured alternately so both see the same machine state
            one = min(one, _spin(n))
            t = time.perf_counter()
            pool.map(_spin, [n] * processes)
            wall = min(wall, time.perf_counter() - t)
    # frequency boosts can make the ratio exceed the process count by noise; it cannot physically
    return round(min(processes * one / wall, float(processes)), 2)


def machine(measure_capacity: bool = True) -> dict:
    import psutil

    facts = {
        "hostname": platform.node(), "os": platform.platform(), "cpu_model": _cpu_model(),
        "cores": os.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    if measure_capacity:
        facts["parallel_capacity"] = parallel_capacity()
    return facts

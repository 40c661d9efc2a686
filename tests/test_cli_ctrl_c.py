"""One Ctrl-C stops each long command that starts processes: exit 130, one line, no traceback, no process left.

A terminal sends SIGINT to its whole foreground process group, so the
command's Dask workers and pool processes get it too: each test starts the
command in a session of its own, waits until it is demonstrably running (a
line it prints, a file it writes, or its child processes existing), then
signals the whole group as the terminal does. ``stockdag serve`` has its own
test (tests/serve/test_service_ctrl_c.py).

"No process left" is checked when the command has ended: this test process is
the commands' child subreaper (prctl), so a descendant that outlives the command,
even by a moment, becomes its child (a zombie if it has ended since) and is seen
every time, not only when the check happens to run before it ends.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
#: small model windows (tests/conftest.py's SMALL), through the environment so that workers get them too
SMALL_ENV = {"DASK_STOCKDAG__MODELS__WINDOW": "120", "DASK_STOCKDAG__MODELS__ERROR_DAYS": "10",
             "DASK_STOCKDAG__DATA__MIN_HISTORY": "150", "DASK_STOCKDAG__DATA__HISTORY_DAYS": "200",
             "DASK_STOCKDAG__DATA__NEWS_DAYS": "320"}
HANG_GUARD = 600  # seconds: a guard against a test that never ends, not a speed claim
PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h


def _session(sid: int) -> list[psutil.Process]:
    """The live processes of session ``sid`` (the command and every process it started, however deep)."""
    found = []
    for p in psutil.process_iter():
        try:
            if os.getsid(p.pid) == sid and p.status() != psutil.STATUS_ZOMBIE:
                found.append(p)
        except (ProcessLookupError, psutil.NoSuchProcess):
            pass
    return found


def _spawned(sid: int) -> int:
    """How many of the session's processes are multiprocessing's spawned children (Dask workers, pool processes)."""
    n = 0
    for p in _session(sid):
        try:
            n += "spawn_main" in " ".join(p.cmdline())
        except psutil.NoSuchProcess:
            pass
    return n


def _subreaper(on: bool) -> None:
    """Make this process the subreaper of its descendants (or stop being it): see the module docstring."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def _children() -> set[int]:
    """This process's children, live or ended and not yet reaped (zombies)."""
    return {p.pid for p in psutil.Process().children()}


def _sigint_default() -> None:
    """In the child: SIGINT at its default, as from a terminal, even when the suite runs with it ignored
    (``make test &`` or nohup: the shell then starts it with SIGINT ignored, and every child inherits that)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Command:
    """``python -m stockdag.cli ARGS`` in a session of its own, its stderr collected as it comes."""

    def __init__(self, args: list[str], cwd: Path = ROOT):
        env = {**os.environ, **SMALL_ENV, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "stockdag.cli", *args], cwd=cwd, env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True, preexec_fn=_sigint_default)
        self.others = _children() - {self.proc.pid}  # children this test had before the command
        self.err = ""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while chunk := self.proc.stderr.read(1):  # tqdm redraws with \r, not newlines: read as it comes
            self.err += chunk

    def wait_until(self, ready, what: str) -> None:
        end = time.monotonic() + HANG_GUARD
        while not ready():
            assert self.proc.poll() is None, f"it ended before {what}:\n{self.err}"
            assert time.monotonic() < end, f"never {what}:\n{self.err}"
            time.sleep(0.1)  # polling interval only: readiness is the condition above

    def interrupt(self) -> tuple[int, list[int]]:
        """SIGINT to the whole process group, as a terminal's Ctrl-C; return the exit status and the pids it had.

        Also records, in :attr:`outlived`, each descendant that was still there when the command had ended."""
        pids = [p.pid for p in _session(self.proc.pid)]
        seen = dict(zip(pids, _described(pids)))  # what each was, for a message about one that has ended since
        os.killpg(self.proc.pid, signal.SIGINT)
        try:
            rc = self.proc.wait(HANG_GUARD)
            outlived = sorted(self.orphans())
            self.outlived = [f"{d} (at Ctrl-C: {seen.get(pid, 'not started yet')})"
                             for pid, d in zip(outlived, _described(outlived))]
        finally:
            self.kill()
        self._reader.join(30)
        return rc, pids

    def kill(self) -> None:
        """Whatever is left of the session (only when a test failed): SIGKILL, so no test leaves processes behind,
        and the orphans reparented here reaped."""
        for p in _session(self.proc.pid):
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        if self.proc.poll() is None:
            self.proc.wait()
        for pid in self.orphans():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)  # a zombie already: no effect
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)

    def orphans(self) -> set[int]:
        """The command's descendants that outlived it: reparented to this process, live or ended since."""
        return _children() - self.others - {self.proc.pid}


@pytest.fixture
def command():
    started: list[Command] = []

    def start(args, **kwargs):
        started.append(Command(args, **kwargs))
        return started[-1]

    _subreaper(True)
    try:
        yield start
        for c in started:
            c.kill()
    finally:
        _subreaper(False)


def assert_stopped_quietly(cmd: Command, rc: int, pids: list[int], children: bool = True) -> None:
    assert rc == 130, cmd.err
    assert cmd.err.count("stockdag: interrupted") == 1, cmd.err
    for word in ("Traceback", "KeyboardInterrupt", "CancelledError"):
        assert word not in cmd.err, cmd.err
    assert len(pids) > 1 or not children  # the command had started processes: the check below means something
    assert cmd.outlived == [], (cmd.outlived, cmd.err)  # ended, every descendant ended before it


def _described(pids: list[int]) -> list[str]:
    """Each pid with its command line, or its state once it has none (a zombie): which child it was."""
    out = []
    for pid in pids:
        try:
            out.append(f"{pid}: {' '.join(psutil.Process(pid).cmdline())}")
        except psutil.ZombieProcess:
            out.append(f"{pid}: (ended since, after the command)")
        except psutil.NoSuchProcess:
            out.append(f"{pid}: (gone)")
    return out


DEMO = ["demo", "--profile", "refit", "--workers", "2", "--requests", "40", "--in-flight", "2"]


def test_ctrl_c_stops_demo_while_it_measures(command):
    cmd = command(DEMO)
    # its progress bar is drawn once the baseline and the cluster are up and warm
    cmd.wait_until(lambda: "centralized and distributed" in cmd.err, "showed its progress bar")
    assert_stopped_quietly(cmd, *cmd.interrupt())


def test_ctrl_c_stops_demo_while_its_workers_start(command):
    cmd = command(DEMO)
    # the baseline's process and both Dask worker processes exist: they may still be importing
    cmd.wait_until(lambda: _spawned(cmd.proc.pid) >= 3, "started its worker processes")
    assert_stopped_quietly(cmd, *cmd.interrupt())


def test_ctrl_c_stops_overhead(command):
    cmd = command(["overhead", "--profiles", "refit", "--workers", "1", "--requests", "400", "--rounds", "0",
                   "--granularities", "stage", "--batching", "dask"])
    cmd.wait_until(lambda: "refit request 4/400" in cmd.err, "printed its first block of requests")
    assert_stopped_quietly(cmd, *cmd.interrupt())


def test_ctrl_c_stops_fairness(command):
    cmd = command(["fairness", "--profile", "refit", "--requests", "40"])
    cmd.wait_until(lambda: "request 1/" in cmd.err, "printed its first request")
    assert_stopped_quietly(cmd, *cmd.interrupt())


def test_ctrl_c_stops_bench(command):
    from stockdag.lab.bench.localserver import LocalServer

    with LocalServer(delay=0.05) as server:
        cmd = command(["bench", server.url, "--rate", "5", "--duration", "300", "--warmup", "0"])
        cmd.wait_until(lambda: server.count >= 3, "sent its first requests")
        assert_stopped_quietly(cmd, *cmd.interrupt(), children=False)
def test_ctrl_c_stops_sweep(command, tmp_path):
    params = tmp_path / "tiny.yaml"
    params.write_text("mode: [distributed]\nworkers: [1]\nstrategy: [dask]\nrates: [2, 2.5, 3, 3.5, 4, 4.5]\n"
                      "duration: 2\nwarmup: 0\nmin_requests: 2\nprofile: refit\ncache: none\n")
    cmd = command(["sweep", str(params), "--run-id", "tiny", "--out", str(tmp_path / "out")])
    points = tmp_path / "out" / "tiny" / "points"
    # one point written: its server (and the server's Dask worker) is up and measuring the next
    cmd.wait_until(lambda: points.is_dir() and any(points.glob("*.json")), "finished its first point")
    assert_stopped_quietly(cmd, *cmd.interrupt())



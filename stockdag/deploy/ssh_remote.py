"""distributed's SSH-started scheduler and worker, with a start that ends: by a deadline, naming the host.

``distributed.deploy.ssh.Scheduler`` and ``Worker`` read the remote process's stderr until it logs
its address (``Scheduler at:`` / ``worker at:``), without a bound: a remote that never logs it (its
logging quieter than INFO, a Python that hangs while importing) would hold ``start`` forever. The
subclasses here keep distributed's start and add what a researcher needs when it fails: a deadline
(``stockdag.deploy.start_timeout``, one for the whole cluster), one line naming the host, the role
and the remote's last output lines, and the remote process stopped.
"""
from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time

import dask.config
from distributed import SpecCluster
from distributed.deploy import ssh

from .schema import DeployError

#: the loggers whose INFO lines distributed's start waits for ("Scheduler at:", "Start worker at:")
REPORTING_LOGGERS = ("distributed", "distributed.scheduler", "distributed.worker")
_TAIL = 5  # remote output lines kept for the error message


def shipped_logging(section):
    """The ``logging`` configuration to ship to the remote processes: ``section`` with :data:`REPORTING_LOGGERS` at INFO or more verbose.

    The remote processes take the caller's whole dask configuration; a caller quieter than INFO
    (``stockdag``'s own commands run at WARNING) would otherwise silence the lines start waits for.
    A ``logging`` section in :func:`logging.config.dictConfig` form (it has ``version``) is the
    user's own setup and is shipped as it is.
    """
    if not isinstance(section, dict) or "version" in section:
        return section
    out = dict(section)
    for name in REPORTING_LOGGERS:
        if name != "distributed" and name not in out:
            continue  # not set: it follows "distributed"
        value = out.get(name)
        level = logging.getLevelName(value.upper()) if isinstance(value, str) else None
        if not isinstance(level, int) or level > logging.INFO:
            out[name] = "info"
    return out


def shipped_logging_config() -> dict:
    """The ``dask.config`` keys to set while the remote processes start: their ``logging`` section, as :func:`shipped_logging` makes it.

    distributed reads ``distributed.logging`` when that (or ``distributed.logging-file-config``) is
    set, else the top-level ``logging``; its defaults (``distributed: info``) live in its code.
    A logging file config is the user's own and is left alone.
    """
    inner = dask.config.get("distributed", {})
    if "logging-file-config" in inner:
        return {}
    key = "distributed.logging" if "logging" in inner else "logging"
    return {key: shipped_logging(dask.config.get(key, {}))}


class _TailedStream:
    """An asyncssh stream whose lines read are also kept in ``tail``."""

    def __init__(self, stream, tail: collections.deque):
        self._stream, self._tail = stream, tail

    async def readline(self):
        line = await self._stream.readline()
        if line.strip():
            self._tail.append(line.rstrip())
        return line

    def __getattr__(self, name):
        return getattr(self._stream, name)


class _TailedProcess:
    """An asyncssh process whose stderr lines (what distributed's start reads) are kept."""

    def __init__(self, proc, tail: collections.deque):
        self._proc = proc
        self.stderr = _TailedStream(proc.stderr, tail)

    def __getattr__(self, name):
        return getattr(self._proc, name)


class _Bounded:
    """Mixin for distributed's SSH ``Process`` classes: start by a deadline, fail in one line, stop the remote."""

    role = "process"

    def __init__(self, *args, host_name: str, deadline: float, timeout: float, **kwargs):
        self.host_name, self.deadline, self.timeout = host_name, deadline, timeout
        self.tail: collections.deque = collections.deque(maxlen=_TAIL)
        self._proc = None
        super().__init__(*args, **kwargs)
        self.host_address = self.address  # the scheduler's address replaces it once started

    @property
    def proc(self):
        return self._proc

    @proc.setter
    def proc(self, proc):  # distributed assigns the remote process here: keep what it prints
        self._proc = None if proc is None else _TailedProcess(proc, self.tail)

    def _where(self) -> str:
        return f"ssh host {self.host_name} ({self.host_address}): the {self.role}"

    def _output(self) -> str:
        if not self.tail:
            return "it printed nothing"
        return "its last output: " + " | ".join(line[:200] for line in self.tail)

    async def start(self):
        try:
            await asyncio.wait_for(super().start(), max(0.0, self.deadline - time.monotonic()))
        except TimeoutError:
            started = self._proc is not None
            await self.close()
            if not started:
                raise DeployError(f"{self._where()} was not started within {self.timeout:g} s (stockdag.deploy.start_timeout): "
                                  f"the SSH session to port {self.connect_options.get('port', 22)} did not open") from None
            raise DeployError(f"{self._where()} did not report its address within {self.timeout:g} s "
                              f"(stockdag.deploy.start_timeout); {self._output()}; stopped it") from None
        except Exception as exc:
            if self._proc is None:  # no remote process yet: an SSH error, reported by the caller with its cause
                raise
            await self.close()
            raise DeployError(f"{self._where()} exited before it reported its address; {self._output()}") from exc

    async def close(self):
        if self._proc is not None:
            with contextlib.suppress(OSError):  # asyncssh: the channel is closed once the remote has exited
                self._proc.kill()
                # before the connection closes: a signal still queued then would be lost, and the remote left running
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._proc.wait_closed(), 5)
            self._proc = None  # so distributed's close does not signal it again
        await super().close()


class RemoteScheduler(_Bounded, ssh.Scheduler):
    """A scheduler started over SSH (``distributed.deploy.ssh.Scheduler``) with a bounded start."""

    role = "scheduler"


class RemoteWorker(_Bounded, ssh.Worker):
    """A worker started over SSH (``distributed.deploy.ssh.Worker``) with a bounded start."""

    role = "worker"


class Cluster(SpecCluster):
    """A ``SpecCluster`` that also stops its event-loop thread when its scheduler fails to start.

    ``SpecCluster.__init__`` stops that thread when a worker fails, but not when the scheduler does,
    so every failed start would leave one "IO loop" thread behind.
    """

    def __init__(self, *args, **kwargs):
        try:
            super().__init__(*args, **kwargs)
        except BaseException:
            self._loop_runner.stop()  # a no-op when SpecCluster already stopped it
            raise

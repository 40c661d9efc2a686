"""``kind: emulated``: heterogeneous machines emulated on this host.

Every worker is a separate ``dask worker`` process (its Nanny and worker
process together), started in its own session so its whole process group can
be stopped. Two things make the groups differ:

* **CPU share**: each worker of a group with ``cpu_share`` runs in its own
  cgroup with a CPU quota of ``cpu_share x period`` over a short period
  (``stockdag.deploy.cgroup_period_us``, 10 ms by default: with the kernel's
  100 ms default a short task runs at full speed in one burst and the share
  only shows on long tasks). cgroup v1 (``/sys/fs/cgroup/cpu``,
  ``cpu.cfs_period_us`` / ``cpu.cfs_quota_us``) and v2 (``cpu.max``) are both
  supported. The process is moved into the cgroup before it executes Python
  (``preexec_fn``), so its children inherit it.
* **Link delay**: the whole cluster speaks ``delaytcp://``
  (:mod:`stockdag.deploy.delaycomm`); each worker process holds every message
  it sends for its group's ``link_delay``.

Creating cgroups needs root; without it :class:`EmulationUnavailable` says so
and points at ``kind: local``. Teardown stops every process group, waits for
it, and removes every cgroup it made, on every exit path.
"""
from __future__ import annotations

import errno
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from .. import config
from .base import Deployment, Machine
from .schema import DeployError, EmulationUnavailable, number

CGROUP_ROOT = "/sys/fs/cgroup"


def _fs_type(path: str) -> str | None:
    try:
        out = subprocess.run(["stat", "-fc", "%T", path], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip()


def cgroup_layout(root: str = CGROUP_ROOT) -> tuple[str, str] | None:
    """``("v1", <cpu controller dir>)``, ``("v2", <unified root>)`` or None when no CPU controller is found."""
    if _fs_type(root) == "cgroup2fs":
        try:
            with open(os.path.join(root, "cgroup.controllers")) as f:
                if "cpu" in f.read().split():
                    return "v2", root
        except OSError:
            return None
        return None
    for name in ("cpu", "cpu,cpuacct"):
        d = os.path.join(root, name)
        if os.path.exists(os.path.join(d, "cpu.cfs_quota_us")):
            return "v1", d
    return None


def acct_dir(layout: tuple[str, str], root: str = CGROUP_ROOT) -> str | None:
    """Where a cgroup's CPU time is counted: v1's ``cpuacct`` hierarchy when it is mounted apart from ``cpu``
    (it then needs its own cgroup), None when the CPU controller's own directory counts it (v2, co-mounted v1)."""
    if layout[0] == "v2" or os.path.exists(os.path.join(layout[1], "cpuacct.usage")):
        return None
    d = os.path.join(root, "cpuacct")
    return d if os.path.exists(os.path.join(d, "cpuacct.usage")) else None


def check_host() -> tuple[str, str]:
    """The cgroup layout to use; raise :class:`EmulationUnavailable` with the reason and the alternative."""
    layout = cgroup_layout()
    hint = "use kind: local instead (e.g. experiments/clusters/local-2.yaml), which needs neither"
    if layout is None:
        raise EmulationUnavailable(f"emulated clusters need the cgroup CPU controller, and this host has none under {CGROUP_ROOT}; {hint}")
    if os.geteuid() != 0 or not os.access(layout[1], os.W_OK):
        raise EmulationUnavailable(f"emulated clusters need root to create cgroups in {layout[1]} (running as uid {os.geteuid()}); "
                                   f"run as root, or {hint}")
    return layout


class CPUCgroup:
    """One cgroup limiting its processes to ``share`` CPUs, over ``period_us``."""

    def __init__(self, layout: tuple[str, str], path: tuple[str, ...], share: float, period_us: int):
        self.version, base = layout
        self.base = base
        self.parts = path
        self.path = os.path.join(base, *path)
        self.share = share
        self.period_us = period_us
        self.quota_us = max(1000, int(round(share * period_us)))  # the kernel's minimum quota is 1 ms
        self.created: list[str] = []
        acct = acct_dir(layout) if self.version == "v1" else None
        # v1 with cpuacct apart: a twin cgroup there counts the same processes' CPU time
        self.acct_path = os.path.join(acct, *path) if acct else None

    def create(self) -> None:
        d = self.base
        for part in self.parts:
            if self.version == "v2":
                self._write(os.path.join(d, "cgroup.subtree_control"), "+cpu")
            d = os.path.join(d, part)
            if not os.path.isdir(d):
                os.mkdir(d)
                self.created.append(d)
        if self.acct_path:
            for parent in self._parents(self.acct_path):
                if not os.path.isdir(parent):
                    os.mkdir(parent)
                    self.created.append(parent)
        self.limit()

    def limit(self, on: bool = True) -> None:
        """Hold the cgroup to its quota (``on``), or lift it (while a testbed boots: start-up is not measured)."""
        if self.version == "v1":
            self._write(os.path.join(self.path, "cpu.cfs_period_us"), str(self.period_us))
            self._write(os.path.join(self.path, "cpu.cfs_quota_us"), str(self.quota_us) if on else "-1")
        else:
            self._write(os.path.join(self.path, "cpu.max"), f"{self.quota_us if on else 'max'} {self.period_us}")

    def _parents(self, leaf: str) -> list[str]:
        base = leaf[: -len(os.path.join(*self.parts))].rstrip("/")
        return [os.path.join(base, *self.parts[: i + 1]) for i in range(len(self.parts))]

    def stat(self) -> dict[str, int]:
        """The cgroup's own counters: ``cpu.stat`` (periods, throttling; v2 also ``usage_usec``) and
        ``usage_ns``, the CPU time its processes used (``cpuacct.usage`` on v1, ``usage_usec`` on v2)."""
        with open(os.path.join(self.path, "cpu.stat")) as f:
            out = {k: int(v) for k, v in (line.split() for line in f if line.strip())}
        if self.version == "v2":
            out["usage_ns"] = out["usage_usec"] * 1000
            out["throttled_time"] = out.get("throttled_usec", 0) * 1000
        else:
            with open(os.path.join(self.acct_path or self.path, "cpuacct.usage")) as f:
                out["usage_ns"] = int(f.read())
        return out

    @staticmethod
    def _write(path: str, value: str) -> None:
        with open(path, "w") as f:
            f.write(value)

    def pids(self) -> list[int]:
        out: set[int] = set()
        for d in filter(None, (self.path, self.acct_path)):
            try:
                with open(os.path.join(d, "cgroup.procs")) as f:
                    out.update(int(line) for line in f if line.strip())
            except FileNotFoundError:
                pass
        return sorted(out)

    def enter_command(self) -> str:
        return " && ".join(f"echo $$ > {os.path.join(d, 'cgroup.procs')}" for d in filter(None, (self.path, self.acct_path)))

    def preexec(self):
        procs = [os.path.join(d, "cgroup.procs") for d in filter(None, (self.path, self.acct_path))]

        def _enter():  # runs in the child between fork and exec
            for fn in procs:
                with open(fn, "w") as f:
                    f.write(str(os.getpid()))

        return _enter

    def remove(self) -> None:
        """Remove the cgroups this object created, deepest first (each must be empty of processes)."""
        leaves = {self.path, self.acct_path}
        for d in reversed(self.created):
            for attempt in range(50):
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if exc.errno in (errno.ENOTEMPTY, errno.EBUSY) and d not in leaves:
                        break  # a shared parent another cluster still uses
                    if exc.errno not in (errno.EBUSY, errno.ENOTEMPTY) or attempt == 49:
                        raise
                    time.sleep(0.05)
        self.created.clear()


def remove_cgroups(cgroups: list[CPUCgroup], wait: float = 5.0) -> list[str]:
    """Empty and remove ``cgroups``, last made first (shared parents go with the first one made); the list is cleared.

    Whatever still runs in them is killed first: a process that left its process group (``setsid``) is not
    reached by stopping the groups we started, and would hold its cgroup. Killed processes leave the
    cgroup once reaped, so each is waited for, up to ``wait`` seconds in all.

    Returns
    -------
    list of str
        One ``"<path>: <error>"`` line per cgroup that could not be removed; empty when all went.
    """
    for cg in cgroups:
        for pid in cg.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + wait
    errors = []
    for cg in reversed(cgroups):
        while cg.pids() and time.monotonic() < deadline:
            time.sleep(0.05)
        try:
            cg.remove()
        except OSError as exc:
            errors.append(f"{cg.path}: {exc}")
    cgroups.clear()
    return errors


def _scheme() -> str:
    """The delaying transport's scheme (importing it loads distributed: only when a command is built)."""
    from .delaycomm import SCHEME

    return SCHEME


def _scheduler_command(spec, scheduler_file: str) -> list[str]:
    cmd = [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
           "--protocol", _scheme(), "--dashboard-address", "127.0.0.1:0", "--scheduler-file", scheduler_file]
    if spec.strategy and spec.strategy != "dask":
        cmd += ["--preload", "stockdag.placement.preload", "--strategy", spec.strategy]
    return cmd


def _worker_command(group, name: str, scheduler_file: str) -> list[str]:
    return [sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file", scheduler_file,
            "--name", name, "--nthreads", str(group.threads), "--memory-limit", str(group.memory_limit),
            "--resources", f"{group.name}={group.threads}", "--host", "127.0.0.1", "--protocol", _scheme(),
            "--no-dashboard", "--nworkers", "1"]


def worker_env() -> dict[str, str]:
    """The Dask settings of every worker process (stockdag.worker_profiler); imported here, not at module load."""
    from ..run.worker_settings import worker_env

    return worker_env()


def _period() -> int:
    return int(config.get("deploy.cgroup_period_us"))


def plan_machines(spec):
    """Each process and cgroup as the shell commands that would make it (nothing is created)."""
    layout = cgroup_layout() or ("v1", f"{CGROUP_ROOT}/cpu")
    period = _period()
    sf = "<state dir>/scheduler.json"
    machines = [Machine("scheduler", "scheduler", "this host (a process)", [shlex.join(_scheduler_command(spec, sf))])]
    for g in spec.worker_groups:
        for name in g.worker_names():
            cmds = []
            if g.cpu_share is not None:
                cg = CPUCgroup(layout, ("stockdag", "<cluster id>", name), g.cpu_share, period)
                if layout[0] == "v1":
                    cmds += [f"mkdir -p {cg.path}", f"echo {cg.period_us} > {cg.path}/cpu.cfs_period_us",
                             f"echo {cg.quota_us} > {cg.path}/cpu.cfs_quota_us"]
                else:
                    cmds += [f"mkdir -p {cg.path}", f"echo '{cg.quota_us} {cg.period_us}' > {cg.path}/cpu.max"]
                cmds.append(cg.enter_command() + "   # then exec:")
            env = f"DASK_STOCKDAG__DEPLOY__LINK_DELAY={g.link_delay:g} " if g.link_delay else ""
            env += "".join(f"{k}={v} " for k, v in worker_env().items())
            cmds.append(env + shlex.join(_worker_command(g, name, sf)))
            machines.append(Machine("worker", name, "this host (a process group)", cmds))
    notes = [f"cgroup {layout[0]} at {layout[1]}, period {period} us; needs root",
             f"every process speaks {_scheme()}:// (TCP that delays each message its sender writes)"]
    return machines, notes


class EmulatedDeployment(Deployment):
    """Scheduler and workers as separate processes on this host, with cgroup CPU quotas and link delays."""

    kind = "emulated"
    group_keys = ("cpu_share", "link_delay")

    @classmethod
    def check_group(cls, where, raw):
        cpu_share = raw.get("cpu_share")
        if cpu_share is not None:
            cpu_share = number(f"{where}: cpu_share", cpu_share, low=0.01, high=float(os.cpu_count() or 1) * 4)
        link_delay = number(f"{where}: link_delay (seconds)", raw.get("link_delay", 0.0), low=0.0, high=10.0)
        return {"cpu_share": cpu_share, "link_delay": float(link_delay)}

    @staticmethod
    def plan_machines(spec):
        return plan_machines(spec)

    def __init__(self, spec, cluster_id=None, start_timeout: float | None = None):
        super().__init__(spec, cluster_id)
        self.start_timeout = float(config.get("deploy.start_timeout", start_timeout))
        self.procs: dict[str, subprocess.Popen] = {}
        self.cgroups: list[CPUCgroup] = []
        self.workdir: str | None = None

    def _spawn(self, name: str, cmd: list[str], env_extra: dict | None = None, cgroup: CPUCgroup | None = None):
        env = {**os.environ, **(env_extra or {})}
        log = open(os.path.join(self.workdir, f"{name}.log"), "wb")
        try:
            self.procs[name] = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                start_new_session=True, preexec_fn=cgroup.preexec() if cgroup else None,
            )
        finally:
            log.close()

    def _logs(self) -> str:
        out = []
        for name in self.procs:
            fn = os.path.join(self.workdir, f"{name}.log")
            if os.path.exists(fn):
                with open(fn, errors="replace") as f:
                    tail = f.read().strip().splitlines()[-3:]
                out.append(f"[{name}] " + " | ".join(tail))
        return "; ".join(out)

    def _start(self) -> None:
        layout = check_host() if any(g.cpu_share is not None for g in self.spec.worker_groups) else None
        period = _period()
        self.workdir = tempfile.mkdtemp(prefix=f"stockdag-{self.cluster_id}-")
        scheduler_file = os.path.join(self.workdir, "scheduler.json")
        self._spawn("scheduler", _scheduler_command(self.spec, scheduler_file))
        deadline = time.monotonic() + self.start_timeout
        info = self._await_scheduler(scheduler_file, deadline)
        dash = info.get("services", {}).get("dashboard")
        self.dashboard_link = f"http://127.0.0.1:{dash}/status" if dash else None

        for g in self.spec.worker_groups:
            for name in g.worker_names():
                cg = None
                if g.cpu_share is not None:
                    cg = CPUCgroup(layout, ("stockdag", self.cluster_id, name), g.cpu_share, period)
                    self.cgroups.append(cg)
                    cg.create()
                env = {"DASK_STOCKDAG__DEPLOY__LINK_DELAY": str(g.link_delay), **worker_env()}
                self._spawn(name, _worker_command(g, name, scheduler_file), env, cg)

        self._await_workers(deadline)

    def _await_scheduler(self, scheduler_file: str, deadline: float) -> dict:
        """Wait for the scheduler to write ``scheduler_file``; set ``scheduler_address`` and return the file's
        contents. The scheduler exiting first, or the deadline, raises."""
        while not os.path.exists(scheduler_file):
            if self.procs["scheduler"].poll() is not None:
                raise DeployError(f"the scheduler exited with status {self.procs['scheduler'].returncode}: {self._logs()}")
            if time.monotonic() > deadline:
                raise DeployError(f"the scheduler did not start within {self.start_timeout:g} s: {self._logs()}")
            time.sleep(0.05)
        time.sleep(0.05)  # the file is written in one go, but give the writer a moment to finish
        with open(scheduler_file) as f:
            info = json.load(f)
        self.scheduler_address = info["address"]
        return info

    def _await_workers(self, deadline: float) -> None:
        """Wait until every worker of the spec has joined the scheduler; a process that exits, or the deadline, raises."""
        from distributed import Client

        with Client(self.scheduler_address, timeout=max(1.0, deadline - time.monotonic())) as client:
            want = self.spec.n_workers
            while len(client.scheduler_info(n_workers=-1)["workers"]) < want:
                dead = [n for n, p in self.procs.items() if p.poll() is not None]
                if dead:
                    raise DeployError(f"{', '.join(dead)} exited during start: {self._logs()}")
                if time.monotonic() > deadline:
                    raise DeployError(f"only {len(client.scheduler_info(n_workers=-1)['workers'])} of {want} workers "
                                      f"joined within {self.start_timeout:g} s: {self._logs()}")
                time.sleep(0.1)

    def _stop(self, proc: subprocess.Popen, sig) -> None:
        try:
            os.killpg(proc.pid, sig)  # the session we started: the nanny and its worker process
        except ProcessLookupError:
            pass

    def _stop_all(self, procs: list[subprocess.Popen]) -> None:
        """SIGTERM each process group in ``procs`` order, give them 10 s in all, then SIGKILL what is left."""
        for p in procs:
            self._stop(p, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for p in procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._stop(p, signal.SIGKILL)
                p.wait(timeout=5)
            self._stop(p, signal.SIGKILL)  # any child left in the group after its leader exited

    def _close(self) -> None:
        workers = [p for n, p in self.procs.items() if n != "scheduler"]
        self._stop_all(workers + [p for n, p in self.procs.items() if n == "scheduler"])
        errors = remove_cgroups(self.cgroups)
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        if errors:
            raise DeployError("could not remove cgroups: " + "; ".join(errors))

    def info(self) -> dict:
        d = super().info()
        d["processes"] = {n: p.pid for n, p in self.procs.items()}
        d["cgroups"] = [cg.path for cg in self.cgroups]
        return d

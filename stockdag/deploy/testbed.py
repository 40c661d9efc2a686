"""``kind: testbed``: n scaled machines on one host, each a network namespace with a CPU quota and a link.

A machine is a Linux network namespace on a bridge the testbed makes
(:mod:`.netns`: its own loopback and address in 198.18.0.0/15, a ``tbf``
bandwidth cap on its veth) and a cgroup CPU quota holding every process started
in it (the emulated kind's :class:`~.emulated.CPUCgroup`, over
``stockdag.deploy.testbed.cgroup_period_us``); link delay is the emulated kind's
``delaytcp://`` comm. Its machines: ``scheduler``, ``server`` (for the HTTP
service and its Dask client, started with :meth:`TestbedDeployment.run_on`) and
the workers of the spec's groups; this host speaks from the bridge's ``.1``.

With 2 cores the machines are *scaled*: fractions of a core. :meth:`~TestbedDeployment.info`
records the scale; absolute times are those of scaled machines, the results are
the ratios. :meth:`~TestbedDeployment.cpu_snapshot` and :func:`cpu_usage` prove
each machine got its quota (its cgroup's CPU time and throttling, the host's idle CPU).
"""
from __future__ import annotations

import dataclasses
import os
import shlex
import subprocess
import sys
import tempfile
import time

from .. import config
from .base import Machine
from .emulated import CGROUP_ROOT, CPUCgroup, EmulatedDeployment, cgroup_layout, check_host, remove_cgroups, worker_env
from .netns import Ledger, Network, check_tools, rate_bits, reap_orphans
from .schema import DeployError, SpecError, number, unknown_keys

_ROLE_KEYS = ("cpu_share", "bandwidth", "link_delay")


@dataclasses.dataclass(frozen=True)
class Role:
    """The scheduler's or the server's machine: its CPUs, link rate (None: uncapped) and link delay."""

    cpu_share: float = 0.25
    bandwidth: str | None = None
    link_delay: float = 0.0


@dataclasses.dataclass(frozen=True)
class TestbedOptions:
    """The spec's ``testbed:`` section."""

    scheduler: Role = Role()
    server: Role = Role()
    subnet: str | None = None            # a /24 of 198.18.0.0/15; None: the first one free on this host
    cgroup_period_us: int | None = None  # None: stockdag.deploy.testbed.cgroup_period_us


def _bandwidth(where: str, value) -> str | None:
    if value is None:
        return None
    try:
        if rate_bits(value) < 8000:
            raise ValueError
    except ValueError:
        raise SpecError(f"{where}: bandwidth: expected a tc rate of at least 8kbit such as '100mbit', got {value!r}") from None
    return str(value).lower()


def _share(where: str, value) -> float:
    return number(f"{where}: cpu_share", value, low=0.01, high=float(os.cpu_count() or 1))


def _role(where: str, raw) -> Role:
    if raw is None:
        return Role()
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: expected a mapping of {', '.join(_ROLE_KEYS)}, got {raw!r}")
    unknown_keys(where, raw, _ROLE_KEYS)
    return Role(_share(where, raw.get("cpu_share", Role.cpu_share)), _bandwidth(where, raw.get("bandwidth")),
                float(number(f"{where}: link_delay (seconds)", raw.get("link_delay", 0.0), low=0.0, high=10.0)))


@dataclasses.dataclass(frozen=True)
class MachineSpec:
    """One machine the testbed makes, whatever its role."""

    name: str
    role: str             # scheduler | server | worker
    cpu_share: float
    bandwidth: str | None
    link_delay: float
    group: object = None  # the WorkerGroup of a worker


def period(spec) -> int:
    return int(spec.options.cgroup_period_us or config.get("deploy.testbed.cgroup_period_us"))


def machines(spec) -> list[MachineSpec]:
    """Every machine of a spec in address order (scheduler .2, server .3, workers from .4); checks each quota."""
    o = spec.options
    out = [MachineSpec("scheduler", "scheduler", o.scheduler.cpu_share, o.scheduler.bandwidth, o.scheduler.link_delay),
           MachineSpec("server", "server", o.server.cpu_share, o.server.bandwidth, o.server.link_delay)]
    out += [MachineSpec(n, "worker", g.cpu_share, g.bandwidth, g.link_delay, g) for g in spec.worker_groups for n in g.worker_names()]
    p = period(spec)
    for m in out:
        if m.cpu_share * p < 1000:
            raise SpecError(f"machine {m.name}: cpu_share {m.cpu_share:g} over a {p} us period is a "
                            f"{m.cpu_share * p:g} us quota, below the kernel's 1000 us minimum; raise cpu_share or "
                            f"the period (testbed: cgroup_period_us)")
    if len(out) > 250:
        raise SpecError(f"a testbed holds at most 250 machines on its /24, this spec has {len(out)}")
    return out


def _scheme() -> str:
    from .delaycomm import SCHEME

    return SCHEME


def _scheduler_argv(spec, address: str, scheduler_file: str) -> list[str]:
    cmd = [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", address, "--port", "0",
           "--protocol", _scheme(), "--dashboard-address", f"{address}:0", "--scheduler-file", scheduler_file]
    if spec.strategy and spec.strategy != "dask":
        cmd += ["--preload", "stockdag.placement.preload", "--strategy", spec.strategy]
    return cmd


def _worker_argv(group, name: str, address: str, scheduler_file: str) -> list[str]:
    return [sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file", scheduler_file,
            "--name", name, "--nthreads", str(group.threads), "--memory-limit", str(group.memory_limit),
            "--resources", f"{group.name}={group.threads}", "--host", address, "--protocol", _scheme(),
            "--no-dashboard", "--nworkers", "1"]


def _link(m: MachineSpec) -> str:
    return f"link {m.bandwidth or 'uncapped'}" + (f", +{m.link_delay * 1000:g} ms" if m.link_delay else "")


def host_cpu() -> dict:
    """This host's CPU time from ``/proc/stat`` (seconds, all cores): idle (with iowait) and total."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    return {"idle_s": (fields[3] + fields[4]) / hz, "total_s": sum(fields[:8]) / hz, "cores": os.cpu_count() or 1}


def cpu_snapshot(cgroups: dict[str, tuple[CPUCgroup, float]]) -> dict:
    """The host's CPU time and each machine's cgroup counters now (``{machine: (cgroup, cpu_share)}``)."""
    return {"time": time.monotonic(), "host": host_cpu(),
            "machines": {n: {**cg.stat(), "share": share, "period_us": cg.period_us} for n, (cg, share) in cgroups.items()}}


def machine_cgroups(info: dict) -> dict[str, tuple[CPUCgroup, float]]:
    """Each machine's cgroup of a running testbed from its :meth:`~TestbedDeployment.info` (a ``cluster up``
    state holds it), for :func:`cpu_snapshot` in a process other than the one holding the testbed."""
    layout = check_host()
    period_us = info["scale"]["cgroup_period_us"]
    return {n: (CPUCgroup(layout, ("stockdag", info["cluster_id"], n), m["cpu_share"], period_us), m["cpu_share"])
            for n, m in info["machines"].items()}


def cpu_usage(before: dict, after: dict, starved_idle: float | None = None) -> dict:
    """What each machine used between two :meth:`TestbedDeployment.cpu_snapshot` s, and whether it was starved.

    Per machine: ``cpu_s`` (CPU time of its cgroup), ``cpus`` (that over the wall
    interval), ``share`` (its quota in CPUs), ``periods`` (quota periods the kernel
    counted: it counts one only while the machine has work), ``active_s`` (those
    periods' time), ``throttled`` (periods it hit its quota), ``throttled_s``.
    ``host_idle_cpus``: the host's idle CPUs over the interval (``/proc/stat``).

    The rule (``rule`` in the result; ``stockdag.deploy.testbed.*``): a machine was
    **starved** when it was *busy* (it had work in at least ``busy`` of the
    interval: ``active_s >= busy x wall``), it used *clearly less than its quota*
    while it had work (``cpu_s < starved_use x share x active_s``), and the host
    had *no idle room* (``host_idle_cpus < starved_idle``): it wanted CPU, its
    quota allowed it, and the host had none to give. A machine that hit its quota
    (throttled) used it; one with idle host CPU beside it waited on something else.
    """
    rule = {"busy": float(config.get("deploy.testbed.busy")),
            "starved_use": float(config.get("deploy.testbed.starved_use")),
            "starved_idle": float(config.get("deploy.testbed.starved_idle", starved_idle))}
    wall = after["time"] - before["time"]
    idle = (after["host"]["idle_s"] - before["host"]["idle_s"]) / wall if wall > 0 else 0.0
    out = {"wall_s": wall, "host_idle_cpus": idle, "host_cores": after["host"]["cores"], "rule": rule,
           "machines": {}, "starved": []}
    for name, a in after["machines"].items():
        b = before["machines"][name]
        cpu = (a["usage_ns"] - b["usage_ns"]) / 1e9
        periods = a["nr_periods"] - b["nr_periods"]
        active = min(wall, periods * a.get("period_us", 0) / 1e6)
        row = {"cpu_s": cpu, "cpus": cpu / wall if wall > 0 else 0.0, "share": a["share"], "periods": periods,
               "active_s": active, "throttled": a["nr_throttled"] - b["nr_throttled"],
               "throttled_s": (a["throttled_time"] - b["throttled_time"]) / 1e9}
        busy = wall > 0 and active >= rule["busy"] * wall
        row["starved"] = bool(busy and cpu < rule["starved_use"] * a["share"] * active and idle < rule["starved_idle"])
        out["machines"][name] = row
        if row["starved"]:
            out["starved"].append(name)
    return out


def plan_machines(spec):
    """Each machine with its address, CPU and link, and the commands that would make it (nothing is created)."""
    from .netns import BLOCK, free_subnet

    layout = cgroup_layout() or ("v1", f"{CGROUP_ROOT}/cpu")
    try:
        net = spec.options.subnet or str(free_subnet())
    except (OSError, DeployError):  # no iproute2 here: show the block's first /24
        net = str(next(BLOCK.subnets(new_prefix=24)))
    prefix = net.rsplit(".", 1)[0]
    p = period(spec)
    sf = "<state dir>/scheduler.json"
    rows = []
    for i, m in enumerate(machines(spec)):
        addr = f"{prefix}.{2 + i}"
        netns = f"stockdag-<cluster id>-{m.name}"
        cg = CPUCgroup(layout, ("stockdag", "<cluster id>", m.name), m.cpu_share, p)
        cmds = [f"ip netns add {netns}", f"ip link add sdv-<id>-{i} type veth peer name eth0 netns {netns}",
                f"ip link set sdv-<id>-{i} master sdb-<id> up; ip -n {netns} addr add {addr}/24 dev eth0"]
        if m.bandwidth:
            cmds.append(f"tc -n {netns} qdisc add dev eth0 root tbf rate {m.bandwidth} ...; "
                        f"tc qdisc add dev sdv-<id>-{i} root tbf rate {m.bandwidth} ...")
        cmds.append(f"mkdir -p {cg.path}; echo {cg.period_us} > cpu.cfs_period_us; echo {cg.quota_us} > cpu.cfs_quota_us")
        env = f"DASK_STOCKDAG__DEPLOY__LINK_DELAY={m.link_delay:g} " if m.link_delay else ""
        if m.role == "scheduler":
            cmds.append(env + shlex.join(["ip", "netns", "exec", netns, *_scheduler_argv(spec, addr, sf)]))
        elif m.role == "worker":
            env += "".join(f"{k}={v} " for k, v in worker_env().items())
            cmds.append(env + shlex.join(["ip", "netns", "exec", netns, *_worker_argv(m.group, m.name, addr, sf)]))
        else:
            cmds.append("# idle until the service is started on it (TestbedDeployment.run_on('server', argv))")
        rows.append(Machine(m.role, m.name, f"{addr}, {m.cpu_share:g} CPU, {_link(m)}", cmds))
    s = scale(spec)
    notes = [f"network {net} on bridge sdb-<id> (this host {prefix}.1), attached to no host interface; no route beyond it",
             f"cgroup {layout[0]}, period {p} us; needs root and iproute2",
             f"scaled machines: {s['machines']} machines hold {s['cpus']:g} of this host's {s['host_cores']} cores; "
             "absolute times are those of scaled machines, compare ratios",
             f"every process speaks {_scheme()}:// (TCP that delays each message its sender writes)"]
    return rows, notes


def scale(spec) -> dict:
    """The scale a run records: how many machines, the CPUs they hold, the host's cores, the period."""
    ms = machines(spec)
    return {"machines": len(ms), "workers": spec.n_workers, "cpus": round(sum(m.cpu_share for m in ms), 4),
            "worker_cpus": {m.name: m.cpu_share for m in ms if m.role == "worker"},
            "host_cores": os.cpu_count() or 1, "cgroup_period_us": period(spec)}


class TestbedDeployment(EmulatedDeployment):
    """Scheduler, server and workers as network-namespace machines with CPU quotas and capped links."""

    __test__ = False  # not a pytest class, whatever its name
    kind = "testbed"
    Options = TestbedOptions
    group_keys = ("cpu_share", "link_delay", "bandwidth")

    @classmethod
    def parse_options(cls, raw):
        if raw is None:
            return TestbedOptions()
        if not isinstance(raw, dict):
            raise SpecError(f"testbed: expected a mapping of testbed settings, got {raw!r}")
        unknown_keys("testbed", raw, [f.name for f in dataclasses.fields(TestbedOptions)])
        p = raw.get("cgroup_period_us")
        if p is not None:
            p = number("testbed: cgroup_period_us", p, kind=int, low=1000, high=1_000_000)
        subnet = raw.get("subnet")
        if subnet is not None:
            import ipaddress

            from .netns import BLOCK

            try:
                net = ipaddress.ip_network(subnet)
            except ValueError:
                net = None
            if net is None or net.prefixlen != 24 or not net.subnet_of(BLOCK):
                raise SpecError(f"testbed: subnet: expected a /24 of {BLOCK} such as 198.18.7.0/24, got {subnet!r}")
        return TestbedOptions(_role("testbed: scheduler", raw.get("scheduler")), _role("testbed: server", raw.get("server")),
                              subnet, p)

    @classmethod
    def check_group(cls, where, raw):
        if raw.get("cpu_share") is None:
            raise SpecError(f"{where}: cpu_share is required on a testbed (every machine is a stated fraction of a core)")
        return {"cpu_share": _share(where, raw["cpu_share"]),
                "link_delay": float(number(f"{where}: link_delay (seconds)", raw.get("link_delay", 0.0), low=0.0, high=10.0)),
                "bandwidth": _bandwidth(where, raw.get("bandwidth"))}

    @staticmethod
    def plan_machines(spec):
        return plan_machines(spec)

    def __init__(self, spec, cluster_id=None, start_timeout: float | None = None, dask: bool = True):
        super().__init__(spec, cluster_id, start_timeout)
        self.dask = dask  # False: the machines only, no scheduler or workers (a baseline's server runs on them)
        self.network: Network | None = None
        self.ledger: Ledger | None = None
        self.machine_cgroups: dict[str, CPUCgroup] = {}
        self.specs = {m.name: m for m in machines(spec)}
        self._launched = 0

    # -- start and stop
    def _start(self) -> None:
        check_tools()
        layout = check_host()
        reap_orphans()  # what a killed testbed left, before taking its subnet
        self.workdir = tempfile.mkdtemp(prefix=f"stockdag-{self.cluster_id}-")
        self.ledger = Ledger(self.cluster_id)  # written before anything is made
        self.network = Network(self.cluster_id, self.ledger, self.spec.options.subnet)
        self.network.make_bridge()
        p = period(self.spec)
        for m in self.specs.values():
            self.network.add_host(m.name, m.bandwidth)
            cg = CPUCgroup(layout, ("stockdag", self.cluster_id, m.name), m.cpu_share, p)
            self.ledger.add("cgroups", cg.path)
            if cg.acct_path:
                self.ledger.add("cgroups", cg.acct_path)
            self.cgroups.append(cg)
            self.machine_cgroups[m.name] = cg
            cg.create()
            cg.limit(False)  # until every worker joined: booting Python at a quarter core is minutes, and unmeasured
        if not self.dask:
            for cg in self.machine_cgroups.values():
                cg.limit()
            return
        sched = self.network.hosts["scheduler"]
        scheduler_file = os.path.join(self.workdir, "scheduler.json")
        self.run_on("scheduler", _scheduler_argv(self.spec, sched.address, scheduler_file), name="scheduler")
        deadline = time.monotonic() + self.start_timeout
        info = self._await_scheduler(scheduler_file, deadline)
        dash = info.get("services", {}).get("dashboard")
        self.dashboard_link = f"http://{sched.address}:{dash}/status" if dash else None
        for m in self.specs.values():
            if m.role == "worker":
                # the workers' Dask settings (stockdag.worker_profiler), as every other kind starts its workers
                self.run_on(m.name, _worker_argv(m.group, m.name, self.network.hosts[m.name].address, scheduler_file),
                            env=worker_env(), name=m.name)
        self._await_workers(deadline)
        for cg in self.machine_cgroups.values():
            cg.limit()

    def run_on(self, machine: str, argv: list[str], env: dict | None = None, name: str | None = None) -> subprocess.Popen:
        """Start ``argv`` on a machine (its namespace, under its CPU quota, with its link delay); it is stopped
        with the cluster. Use it for the centralized server, each replicated process, a load generator."""
        if self.network is None or machine not in self.network.hosts:
            raise DeployError(f"no machine {machine!r} in this testbed; machines: {', '.join(self.specs)}")
        if name is None:
            self._launched += 1
            name = f"{machine}.{self._launched}"
        m = self.specs[machine]
        self._spawn(name, self.network.hosts[machine].exec_prefix() + list(argv),
                    {"DASK_STOCKDAG__DEPLOY__LINK_DELAY": str(m.link_delay), **(env or {})}, self.machine_cgroups[machine])
        return self.procs[name]

    def serve_on(self, machine: str, argv: list[str], ready_url: str, env: dict | None = None,
                 also: tuple[str, ...] = ()) -> subprocess.Popen:
        """Start a service on a machine (:meth:`run_on`) and return once ``ready_url`` answers 200.

        While it boots (imports at a quarter core take minutes, and are not measured) the quotas of ``machine``
        and of ``also`` (machines its processes join) are lifted; they hold again on return,
        and on every error. A service that exits or does not answer within the start timeout is a
        :class:`DeployError` with its log's last lines.
        """
        import urllib.request

        held = [self.machine_cgroups[n] for n in (machine, *also) if n in self.machine_cgroups]
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # the testbed's address, never a proxy
        try:
            for cg in held:
                cg.limit(False)
            proc = self.run_on(machine, argv, env)
            deadline = time.monotonic() + self.start_timeout
            while True:
                if proc.poll() is not None:
                    raise DeployError(f"the service on {machine} exited with status {proc.returncode}: {self._logs()}")
                try:
                    with opener.open(ready_url, timeout=5) as r:
                        if r.status == 200:
                            return proc
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise DeployError(f"the service on {machine} did not answer {ready_url} within "
                                      f"{self.start_timeout:g} s: {self._logs()}")
                time.sleep(0.2)
        finally:
            for cg in held:
                cg.limit()

    def _close(self) -> None:
        self._stop_all(list(self.procs.values()))
        # before the network: a process still in a machine's namespace would keep that namespace alive
        errors = remove_cgroups(self.cgroups)
        if self.network is not None:
            errors += self.network.close()
        if self.workdir:
            import shutil

            shutil.rmtree(self.workdir, ignore_errors=True)
        if errors:
            raise DeployError("testbed teardown left: " + "; ".join(errors))
        if self.ledger is not None:
            self.ledger.remove()

    # -- use
    def address(self, machine: str) -> str:
        """A machine's IPv4 address on the testbed."""
        return self.network.hosts[machine].address

    def cpu_snapshot(self) -> dict:
        """Each machine's cgroup counters and the host's CPU time now; diff two with :func:`cpu_usage`."""
        return cpu_snapshot({n: (cg, self.specs[n].cpu_share) for n, cg in self.machine_cgroups.items()})

    cpu_usage = staticmethod(cpu_usage)

    def info(self) -> dict:
        d = super().info()
        hosts = self.network.hosts if self.network else {}
        d["machines"] = {n: {"role": m.role, "address": hosts[n].address if n in hosts else None,
                             "netns": hosts[n].netns if n in hosts else None, "veth": hosts[n].veth if n in hosts else None,
                             "cpu_share": m.cpu_share,
                             "bandwidth": m.bandwidth, "link_delay": m.link_delay,
                             "cgroup": self.machine_cgroups[n].path if n in self.machine_cgroups else None}
                         for n, m in self.specs.items()}
        d["network"] = {"subnet": str(self.network.subnet), "bridge": self.network.bridge,
                        "host": self.network.host_address} if self.network else None
        d["scale"] = scale(self.spec)
        return d

"""``kind: ssh``: a scheduler and workers started on your own machines over SSH, with Dask's SSH deployment.

distributed's ``SSHCluster`` gives every worker the same options; a spec's worker groups
differ (threads, memory, name, resource, host, Python), so this builds the
:class:`~distributed.SpecCluster` that ``SSHCluster`` builds, from the same
``distributed.deploy.ssh.Scheduler`` and ``Worker`` (asyncssh connections that run
``python -m distributed.cli.dask_spec`` remotely), with one entry a worker.

What a researcher with a few machines gets:

* **Keys only.** Each host's ``key`` is passed as asyncssh's ``client_keys``; no password,
  no SSH agent, no agent forwarding and no ``~/.ssh/config`` are used, so what the spec says
  is what authenticates.
* **Host keys checked** against the host's ``known_hosts`` file (default
  ``~/.ssh/known_hosts``), never accepted on first sight: add a host with
  ``ssh-keyscan -p PORT ADDRESS >> known_hosts`` after checking its fingerprint.
* **TLS on by default** (``tls: true``): temporary certificates (:mod:`.tls`) reach the remote
  processes in the configuration distributed passes them (``DASK_INTERNAL_INHERIT_CONFIG``, on the
  remote command line while its shell starts); ``stockdag cluster up`` keeps the client's copy.
* A wrong key, an unknown host key or a host that cannot be reached is one line
  (:class:`DeployError`), and whatever had started is stopped (SpecCluster closes itself).
* **A start that ends**: a remote process that never reports its address, or exits first, and
  workers that do not join by ``stockdag.deploy.start_timeout`` are one line naming the host and
  the remote's last output lines (:mod:`.ssh_remote`); the remote processes log at INFO whatever
  this process's level, since start waits for those lines.

The remote Python must have this stockdag version and its dependencies; the scheduler loads the
placement plugin (``preload``) with the spec's ``strategy`` through the inherited configuration.
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import os
import re
import sys
import time

import dask.config

from .. import config
from .base import Deployment, Machine
from .schema import DeployError, SpecError, number, unknown_keys

logger = logging.getLogger(__name__)

INSTALL_HINT = "the ssh kind needs asyncssh: pip install 'stockdag[ssh]'"

_HOST_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_ADDRESS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,252}$")  # a host name, IPv4 or IPv6 address (no spaces or quotes)


@dataclasses.dataclass(frozen=True)
class SSHHost:
    """One machine of an ssh spec (``ssh.hosts.<name>``); unset fields take the ``ssh:`` section's."""

    name: str
    address: str
    port: int = 22
    user: str | None = None            # None: this machine's user name (as ssh does)
    key: str | None = None             # private key file, the only credential tried
    known_hosts: str | None = None     # the file the host key must be in
    python: str | None = None          # Python executable on the host; None: this Python's path


@dataclasses.dataclass(frozen=True)
class SSHOptions:
    """The ``ssh:`` section: the hosts, which one runs the scheduler, and defaults for every host."""

    hosts: tuple[SSHHost, ...] = ()
    scheduler: str = ""                # name of the host that runs the scheduler
    user: str | None = None
    key: str | None = None
    known_hosts: str = "~/.ssh/known_hosts"
    python: str | None = None
    tls: bool = True                   # TLS between client, scheduler and workers (temporary certificates)
    scheduler_port: int = 8786         # 0: any free port
    dashboard_port: int = 8787         # 0: any free port

    def host(self, name: str) -> SSHHost:
        """The named host with the section's defaults filled in."""
        h = next(h for h in self.hosts if h.name == name)
        return dataclasses.replace(h, user=h.user or self.user, key=h.key or self.key,
                                   known_hosts=h.known_hosts or self.known_hosts, python=h.python or self.python)


_HOST_KEYS = {f.name for f in dataclasses.fields(SSHHost)} - {"name"}
_DEFAULT_KEYS = ("user", "key", "known_hosts", "python")


def _text(where: str, value, pattern=None):
    if value is None:
        return None
    if not isinstance(value, str) or not value or (pattern is not None and not pattern.match(value)):
        raise SpecError(f"{where}: expected {'a host name or address' if pattern is _ADDRESS else 'a non-empty string'}, got {value!r}")
    return value


def parse_options(raw) -> SSHOptions:
    """The checked ``ssh:`` section of a spec."""
    if not isinstance(raw, dict):
        raise SpecError("ssh: a kind ssh spec needs an ssh section with hosts and scheduler")
    unknown_keys("ssh", raw, [f.name for f in dataclasses.fields(SSHOptions)])
    hosts_raw = raw.get("hosts")
    if not isinstance(hosts_raw, dict) or not hosts_raw:
        raise SpecError(f"ssh.hosts: expected a mapping of host name -> {{address, port, user, key, known_hosts, python}}, got {hosts_raw!r}")
    hosts = []
    for name, h in hosts_raw.items():
        where = f"ssh.hosts.{name}"
        if not isinstance(name, str) or not _HOST_NAME.match(name):
            raise SpecError(f"ssh.hosts: host name {name!r}: expected letters, digits, '.', '_' or '-'")
        if isinstance(h, str):
            h = {"address": h}
        if not isinstance(h, dict):
            raise SpecError(f"{where}: expected an address or a mapping with address, port, user, key, known_hosts, python; got {h!r}")
        unknown_keys(where, h, _HOST_KEYS)
        if "address" not in h:
            raise SpecError(f"{where}: address is required")
        hosts.append(SSHHost(
            name=name, address=_text(f"{where}.address", h["address"], _ADDRESS),
            port=number(f"{where}.port", h.get("port", 22), kind=int, low=1, high=65535),
            **{k: _text(f"{where}.{k}", h.get(k)) for k in _DEFAULT_KEYS}))
    defaults = {k: _text(f"ssh.{k}", raw[k]) for k in _DEFAULT_KEYS if k in raw}
    scheduler = raw.get("scheduler")
    if scheduler not in hosts_raw:
        raise SpecError(f"ssh.scheduler: expected one of the hosts ({', '.join(map(str, hosts_raw))}), got {scheduler!r}")
    if "tls" in raw and not isinstance(raw["tls"], bool):
        raise SpecError(f"ssh.tls: expected true or false, got {raw['tls']!r}")
    ports = {k: number(f"ssh.{k}", raw[k], kind=int, low=0, high=65535) for k in ("scheduler_port", "dashboard_port") if k in raw}
    options = SSHOptions(hosts=tuple(hosts), scheduler=scheduler, tls=raw.get("tls", True), **ports, **defaults)
    missing = [h.name for h in hosts if options.host(h.name).key is None]
    if missing:
        raise SpecError(f"ssh: no key for host{'s' if len(missing) > 1 else ''} {', '.join(missing)}: set ssh.key or "
                        "ssh.hosts.<name>.key to a private key file (key-based authentication only)")
    return options


def check_hosts(spec) -> None:
    """Every group's hosts are in ``ssh.hosts`` (the groups are parsed before the section: checked here)."""
    names = {h.name for h in spec.options.hosts}
    for g in spec.worker_groups:
        unknown = [h for h in g.hosts if h not in names]
        if unknown:
            raise SpecError(f"worker group {g.name!r}: hosts: {', '.join(unknown)} not in ssh.hosts ({', '.join(sorted(names))})")


def placements(spec) -> list[tuple[str, object, str]]:
    """``(worker name, group, host name)`` for every worker: a group's workers take its hosts in turn."""
    return [(name, g, host) for g in spec.worker_groups
            for name, host in zip(g.worker_names(), itertools.cycle(g.hosts))]


def connect_options(host: SSHHost) -> dict:
    """asyncssh ``connect`` keywords for one host: its key only, its known_hosts, nothing from the environment."""
    options = {
        "port": host.port, "client_keys": [os.path.expanduser(host.key)],
        "known_hosts": os.path.expanduser(host.known_hosts), "preferred_auth": "publickey",
        "agent_path": None, "agent_forwarding": False, "config": [], "password": None,
        "connect_timeout": float(config.get("deploy.ssh_connect_timeout")),
    }
    if host.user:  # asyncssh's default is this machine's user name (it refuses None)
        options["username"] = host.user
    return options


def _python(spec, host: SSHHost, group=None) -> str:
    return (group.python if group is not None else None) or host.python or sys.executable


def _scheduler_kwargs(spec) -> dict:
    e = spec.options
    address = e.host(e.scheduler).address
    kw = {"host": address, "port": e.scheduler_port, "dashboard_address": f"{address}:{e.dashboard_port}",
          "protocol": "tls" if e.tls else "tcp"}
    if spec.strategy and spec.strategy != "dask":
        kw["preload"] = ["stockdag.placement.preload"]
    return kw


def _worker_kwargs(spec, group, name: str, host: SSHHost) -> dict:
    return {"name": name, "nthreads": group.threads, "memory_limit": group.memory_limit, "resources": group.resources,
            "host": host.address, "dashboard": False, "protocol": "tls" if spec.options.tls else "tcp"}


def plan_machines(spec):
    """Each host, what it runs over SSH, and how it is reached (nothing is connected)."""
    check_hosts(spec)
    e = spec.options
    sched = e.host(e.scheduler)

    def where(h):
        return f"{h.name} ({h.user + '@' if h.user else ''}{h.address}:{h.port}, key {h.key}, known_hosts {h.known_hosts})"

    machines = [Machine("scheduler", "scheduler", where(sched), [
        f"{_python(spec, sched)} -m distributed.cli.dask_spec --spec '{json.dumps({'cls': 'distributed.Scheduler', 'opts': _scheduler_kwargs(spec)})}'"])]
    for name, g, host in placements(spec):
        h = e.host(host)
        opts = {0: {"cls": "distributed.Nanny", "opts": _worker_kwargs(spec, g, name, h)}}
        machines.append(Machine("worker", name, where(h), [
            f"{_python(spec, h, g)} -m distributed.cli.dask_spec {'tls' if e.tls else 'tcp'}://{sched.address}:"
            f"{e.scheduler_port or '<port>'} --spec '{json.dumps(opts)}'"]))
    used = {e.scheduler} | {host for _, _, host in placements(spec)}
    notes = [f"hosts: {', '.join(f'{h.name}={h.address}:{h.port}' for h in e.hosts)}"
             + (f" (not used: {', '.join(h.name for h in e.hosts if h.name not in used)})" if used != {h.name for h in e.hosts} else ""),
             "key-based authentication only (each host's key; no password, agent or ~/.ssh/config); host keys must "
             "already be in each host's known_hosts file",
             f"TLS {'on (temporary certificates, passed in the inherited configuration)' if e.tls else 'OFF: plain TCP between the machines'}",
             "every host needs this stockdag version and its dependencies in the Python named (default: this Python's path)"]
    return machines, notes


def _ssh_error(exc: BaseException, spec) -> str:
    """One line for a failed start: the asyncssh cause named with the spec's host, key and known_hosts."""
    import asyncssh

    seen = exc
    chain = []
    while seen is not None and seen not in chain:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    e = spec.options
    for err in chain:
        if isinstance(err, DeployError):  # a remote that started and failed (ssh_remote): already one line
            return err.message
        m = re.search(r"host (\S+)$", str(err)) if isinstance(err, asyncssh.Error) else None
        hosts = [e.host(h.name) for h in e.hosts if m and h.address == m.group(1)] or [e.host(h.name) for h in e.hosts]
        if isinstance(err, asyncssh.HostKeyNotVerifiable):
            h = hosts[0]
            return (f"ssh host {h.name} ({h.address}:{h.port}): its host key is not in {h.known_hosts} ({err}); check its "
                    f"fingerprint, then add it: ssh-keyscan -p {h.port} {h.address} >> {h.known_hosts}")
        if isinstance(err, asyncssh.PermissionDenied):
            h = hosts[0]
            return (f"ssh host {h.name} ({h.address}:{h.port}): key {h.key} was refused for user {h.user or '(this user)'} "
                    f"({err}); add its .pub to that user's authorized_keys (key-based authentication only)")
        if isinstance(err, asyncssh.Error):
            return f"ssh: {err}"
        if isinstance(err, OSError) and not isinstance(err, asyncssh.Error):
            return f"ssh: cannot connect: {err}"
    return f"the ssh cluster failed to start: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"


class SSHDeployment(Deployment):
    """A scheduler and the spec's workers on named hosts over SSH; ``close`` stops every remote process."""

    kind = "ssh"
    Options = SSHOptions
    group_keys = ("hosts", "python")
    parse_options = staticmethod(parse_options)

    @classmethod
    def check_group(cls, where, raw):
        hosts = raw.get("hosts")
        if isinstance(hosts, str):
            hosts = [hosts]
        if not isinstance(hosts, list) or not hosts or not all(isinstance(h, str) and h for h in hosts):
            raise SpecError(f"{where}: hosts is required for ssh: a list of host names from ssh.hosts, got {hosts!r}")
        python = raw.get("python")
        if python is not None and (not isinstance(python, str) or not python):
            raise SpecError(f"{where}: python: expected a path, got {python!r}")
        return {"hosts": tuple(hosts), "python": python}

    @staticmethod
    def plan_machines(spec):
        return plan_machines(spec)

    @classmethod
    def cost_line(cls, plan) -> str:
        return "estimated cost: none to stockdag (your own machines)"

    def __init__(self, spec, cluster_id=None):
        super().__init__(spec, cluster_id)
        check_hosts(spec)
        self.cluster = None

    def _specs(self, deadline: float, timeout: float):
        from .ssh_remote import RemoteScheduler, RemoteWorker

        e = self.spec.options
        sched = e.host(e.scheduler)
        bound = {"deadline": deadline, "timeout": timeout}
        scheduler = {"cls": RemoteScheduler, "options": {
            "address": sched.address, "connect_options": connect_options(sched), "kwargs": _scheduler_kwargs(self.spec),
            "remote_python": _python(self.spec, sched), "host_name": sched.name, **bound}}
        workers = {}
        for name, g, host in placements(self.spec):
            h = e.host(host)
            workers[name] = {"cls": RemoteWorker, "options": {
                "address": h.address, "connect_options": connect_options(h), "name": name,
                "kwargs": _worker_kwargs(self.spec, g, name, h), "worker_class": "distributed.Nanny",
                "remote_python": _python(self.spec, h, g), "host_name": h.name, **bound}}
        return scheduler, workers

    def _start(self) -> None:
        try:
            import asyncssh  # noqa: F401  (distributed imports it only once connecting)
        except ImportError as exc:
            raise ImportError(f"{INSTALL_HINT} ({exc})") from exc
        from .ssh_remote import Cluster, shipped_logging_config

        e = self.spec.options
        for h in (e.host(h.name) for h in e.hosts):
            for what, path in (("key", h.key), ("known_hosts", h.known_hosts)):
                if not os.path.isfile(os.path.expanduser(path)):
                    raise DeployError(f"ssh host {h.name}: {what} file {path} not found")
        # the remote processes must log the lines their start waits for, whatever this process's level
        inherited = shipped_logging_config()
        if self.spec.strategy:
            inherited["stockdag.placement.strategy"] = self.spec.strategy
        if e.tls:
            from . import tls

            self.security = tls.temporary()
            inherited.update(tls.inherited_config(self.security))
        timeout = float(config.get("deploy.start_timeout"))  # one deadline for the scheduler, the workers and their joining
        deadline = time.monotonic() + timeout
        scheduler, workers = self._specs(deadline, timeout)
        try:
            # the remote processes get this configuration (DASK_INTERNAL_INHERIT_CONFIG) while they start
            with dask.config.set(inherited):
                self.cluster = Cluster(workers=workers, scheduler=scheduler, security=self.security,
                                       name=self.cluster_id, silence_logs=logging.WARNING)
        except Exception as exc:  # any cause is reported as one line; SpecCluster has closed what it started
            raise DeployError(_ssh_error(exc, self.spec)) from None
        self.scheduler_address = self.cluster.scheduler_address
        self.dashboard_link = self.cluster.dashboard_link
        with self.client(timeout=max(1.0, deadline - time.monotonic())) as client:
            try:
                client.wait_for_workers(self.spec.n_workers, timeout=max(0.0, deadline - time.monotonic()))
            except TimeoutError:  # the caller closes the deployment (``start``'s context, ``service``), stopping them all
                joined = sorted(w["name"] for w in client.scheduler_info(n_workers=-1)["workers"].values())
                raise DeployError(f"only {len(joined)} of {self.spec.n_workers} workers joined the scheduler on ssh host "
                                  f"{e.scheduler} within {timeout:g} s (stockdag.deploy.start_timeout); joined: "
                                  f"{', '.join(map(str, joined)) or 'none'}; stopping the cluster") from None

    def _close(self) -> None:
        if self.cluster is not None:
            self.cluster.close()

    def info(self) -> dict:
        d = super().info()
        d["hosts"] = {name: self.spec.options.host(host).address for name, _, host in placements(self.spec)}
        return d

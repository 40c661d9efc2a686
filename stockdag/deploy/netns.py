"""The testbed's network: one bridge, and one Linux network namespace a machine, made with iproute2.

Each machine is a namespace ``stockdag-<cluster>-<machine>`` holding its own
loopback and one end of a veth pair (``eth0``, its address in the cluster's
/24 of 198.18.0.0/15, the block reserved for benchmark networks); the other end
is enslaved to the cluster's bridge, which holds the host's address ``.1``. The
bridge is attached to no host interface, nothing is forwarded or NATed, and a
namespace has no route beyond its /24: only hosts the testbed made are reachable.
A link's bandwidth is a ``tbf`` qdisc on both ends of its veth (its sending and
its receiving side); delay stays with :mod:`.delaycomm` (this kernel has no netem).

Everything made is written first to a ledger (:class:`Ledger`, one JSON file a
cluster under ``stockdag.deploy.testbed.ledger_dir``, with its owner's PID and
start time), so :func:`reap_orphans` can remove what a killed process left.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import ipaddress
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import time

from .. import config
from .schema import DeployError, EmulationUnavailable

logger = logging.getLogger(__name__)

BLOCK = ipaddress.ip_network("198.18.0.0/15")
NETNS_DIR = "/run/netns"
_RATE = re.compile(r"^(\d+(?:\.\d+)?)(bit|kbit|mbit|gbit)$")
_UNITS = {"bit": 1, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9}


def rate_bits(rate: str) -> float:
    """Bits per second of a tc rate such as ``20mbit``; ValueError if it is not one."""
    m = _RATE.match(str(rate).lower())
    if not m:
        raise ValueError(rate)
    return float(m.group(1)) * _UNITS[m.group(2)]


def check_tools() -> None:
    """Raise :class:`EmulationUnavailable` naming what is missing: root, ``ip``/``tc``, or namespace support."""
    missing = [t for t in ("ip", "tc") if shutil.which(t) is None]
    if missing:
        raise EmulationUnavailable(f"testbed clusters need iproute2's {' and '.join(missing)} "
                                   "(apt-get install iproute2, or sh scripts/ensure-iproute2.sh)")
    if os.geteuid() != 0:
        raise EmulationUnavailable(f"testbed clusters need root to make network namespaces, veths and qdiscs "
                                   f"(running as uid {os.geteuid()}); run as root, or use kind: local")
    if not os.path.exists("/proc/self/ns/net"):
        raise EmulationUnavailable("testbed clusters need network namespaces, and this kernel has none (/proc/self/ns/net)")


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``ip ARGS`` (or ``tc`` when the first arg is "tc"); a failure is a :class:`DeployError` with tc's own line."""
    argv = list(args) if args[0] == "tc" else ["ip", *args]
    out = subprocess.run(argv, capture_output=True, text=True)
    if check and out.returncode:
        raise DeployError(f"`{' '.join(argv)}` failed: {(out.stderr or out.stdout).strip().splitlines()[-1:]}")
    return out


def used_subnets() -> set[ipaddress.IPv4Network]:
    """The /24s of the block some interface of this host already holds an address in."""
    out = ip("-o", "-4", "addr", "show").stdout
    nets = set()
    for m in re.finditer(r"inet (\d+\.\d+\.\d+\.\d+)/(\d+)", out):
        net = ipaddress.ip_network(f"{m.group(1)}/24", strict=False)
        if net.subnet_of(BLOCK):
            nets.add(net)
    return nets


def free_subnet() -> ipaddress.IPv4Network:
    """The first /24 of 198.18.0.0/15 no interface of this host uses (each running testbed holds one)."""
    used = used_subnets()
    for net in BLOCK.subnets(new_prefix=24):
        if net not in used:
            return net
    raise DeployError("every /24 of 198.18.0.0/15 is in use by a testbed; stop one (`stockdag cluster down --all`)")


def short(cluster_id: str) -> str:
    """8 hex characters naming a cluster's interfaces (an interface name holds at most 15)."""
    return hashlib.sha1(cluster_id.encode()).hexdigest()[:8]


@dataclasses.dataclass
class Host:
    """One machine of the testbed: its namespace, address and link."""

    name: str                 # machine name: scheduler, server, <group>-<i>
    netns: str                # network namespace
    address: str              # IPv4 address on the bridge
    veth: str                 # host-side end of its veth pair
    bandwidth: str | None     # tc rate of its link both ways, None: uncapped

    def exec_prefix(self) -> list[str]:
        """The argv prefix that runs a command inside the machine's namespace (``ip netns exec`` execs in place)."""
        return ["ip", "netns", "exec", self.netns]

    def ns_inode(self) -> int:
        return os.stat(os.path.join(NETNS_DIR, self.netns)).st_ino


def _tbf(rate: str) -> list[str]:
    # a burst of at least one timer tick's worth of bytes at the rate (and 32 KiB), so tbf can reach the rate
    burst = max(32 * 1024, int(rate_bits(rate) / 8 / 250))
    return ["root", "tbf", "rate", rate, "burst", str(burst), "latency", "100ms"]


class Ledger:
    """What a testbed made, written before each thing is made, so a killed owner's leftovers can be reaped."""

    def __init__(self, cluster_id: str):
        d = config.get("deploy.testbed.ledger_dir")
        os.makedirs(d, mode=0o700, exist_ok=True)
        self.path = os.path.join(d, f"{cluster_id}.json")
        import psutil

        me = psutil.Process()
        self.data = {"cluster_id": cluster_id, "pid": me.pid, "create_time": me.create_time(),
                     "bridge": None, "netns": [], "cgroups": []}
        self._write()

    def add(self, key: str, value) -> None:
        if isinstance(self.data[key], list):
            self.data[key].append(value)
        else:
            self.data[key] = value
        self._write()

    def _write(self) -> None:
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.data, f)
        os.replace(tmp, self.path)

    def remove(self) -> None:
        if os.path.exists(self.path):
            os.remove(self.path)


class Network:
    """A cluster's bridge and machines; :meth:`close` removes every namespace, veth, qdisc and the bridge."""

    def __init__(self, cluster_id: str, ledger: Ledger, subnet: str | None = None):
        self.cluster_id = cluster_id
        self.ledger = ledger
        self.subnet = ipaddress.ip_network(subnet) if subnet else free_subnet()
        if not self.subnet.subnet_of(BLOCK) or self.subnet.prefixlen != 24:
            raise DeployError(f"testbed subnet {self.subnet} is not a /24 of {BLOCK}")
        self.tag = short(cluster_id)
        self.bridge = f"sdb-{self.tag}"
        self.hosts: dict[str, Host] = {}

    @property
    def host_address(self) -> str:
        """This host's address on the bridge (the load generator and CLI clients speak from it)."""
        return str(self.subnet[1])

    def address_of(self, index: int) -> str:
        return str(self.subnet[2 + index])

    def make_bridge(self) -> None:
        self.ledger.add("bridge", self.bridge)
        ip("link", "add", self.bridge, "type", "bridge")
        ip("addr", "add", f"{self.host_address}/24", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")

    def add_host(self, name: str, bandwidth: str | None) -> Host:
        i = len(self.hosts)
        h = Host(name, f"stockdag-{self.cluster_id}-{name}", self.address_of(i), f"sdv-{self.tag}-{i}", bandwidth)
        self.ledger.add("netns", h.netns)
        self.hosts[name] = h
        ip("netns", "add", h.netns)
        ip("link", "add", h.veth, "type", "veth", "peer", "name", "eth0", "netns", h.netns)
        ip("link", "set", h.veth, "master", self.bridge, "up")
        ip("-n", h.netns, "addr", "add", f"{h.address}/24", "dev", "eth0")
        ip("-n", h.netns, "link", "set", "eth0", "up")
        ip("-n", h.netns, "link", "set", "lo", "up")
        if bandwidth:
            ip("tc", "-n", h.netns, "qdisc", "add", "dev", "eth0", *_tbf(bandwidth))  # what the machine sends
            ip("tc", "qdisc", "add", "dev", h.veth, *_tbf(bandwidth))                   # what it receives
        return h

    def close(self) -> list[str]:
        """Remove every namespace (its veth, the peer and both qdiscs go with it) and the bridge; return errors."""
        errors = []
        for h in self.hosts.values():
            errors += delete_netns(h.netns)
        errors += delete_link(self.bridge)  # named after this cluster alone: if it exists, it is ours
        return errors


def netns_pids(netns: str) -> list[int]:
    out = ip("netns", "pids", netns, check=False)
    return [int(p) for p in out.stdout.split()] if out.returncode == 0 else []


def delete_netns(netns: str) -> list[str]:
    """Kill what still runs in ``netns`` (a process holds it alive after ``ip netns del``), then delete it.

    Killed again until none is left: a nanny killed a moment after its worker may have started another.
    """
    if not os.path.exists(os.path.join(NETNS_DIR, netns)):
        return []
    left = _kill_until_gone(lambda: netns_pids(netns))
    out = ip("netns", "del", netns, check=False)
    errors = [f"netns {netns}: {out.stderr.strip()}"] if out.returncode else []
    return errors + ([f"netns {netns}: processes {left} survived SIGKILL"] if left else [])


def _kill_until_gone(pids, rounds: int = 100) -> list[int]:
    """SIGKILL every process ``pids()`` lists until it lists none alive (zombies are dead); return the survivors."""
    import psutil

    left: list[int] = []
    for _ in range(rounds):
        left = []
        for pid in pids():
            try:
                if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                    continue
                os.kill(pid, signal.SIGKILL)
                left.append(pid)
            except (ProcessLookupError, psutil.NoSuchProcess):
                pass
        if not left:
            return []
        time.sleep(0.02)
    return left


def delete_link(name: str) -> list[str]:
    if ip("link", "show", name, check=False).returncode:
        return []
    out = ip("link", "del", name, check=False)
    return [f"link {name}: {out.stderr.strip()}"] if out.returncode else []


def _owner_alive(data: dict) -> bool:
    """True while the ledger's owner runs: same PID and start time, and not a zombie.

    A killed owner stays a zombie until its parent reaps it; a ``cluster up`` process's parent is PID 1, which
    may take its time (or, in a container, never do it): a zombie owns nothing.
    """
    import psutil

    try:
        proc = psutil.Process(int(data["pid"]))
        return (abs(proc.create_time() - float(data["create_time"])) < 0.05
                and proc.status() != psutil.STATUS_ZOMBIE)
    except (psutil.NoSuchProcess, psutil.ZombieProcess, KeyError, ValueError):
        return False


def reap_orphans() -> list[str]:
    """Remove what every testbed whose owning process is gone left behind (processes, namespaces, bridge,
    cgroups); return the cluster ids reaped. A running testbed's ledger is left alone, and so is the ledger of
    one whose leftovers could not all be removed (the next reaping tries again; a warning names what is left)."""
    d = config.get("deploy.testbed.ledger_dir")
    if not os.path.isdir(d):
        return []
    reaped = []
    for fn in sorted(os.listdir(d)):
        if not fn.endswith(".json"):
            continue
        path = os.path.join(d, fn)
        try:
            with open(path) as f:
                data = json.load(f)
        except (OSError, ValueError):
            continue
        if _owner_alive(data):
            continue
        errors = []
        for netns in data.get("netns", []):
            errors += delete_netns(netns)
        if data.get("bridge"):
            errors += delete_link(data["bridge"])
        for cg in data.get("cgroups", []):
            errors += _remove_cgroup_tree(cg)
        if errors:
            logger.warning("testbed %s: could not remove %s", data.get("cluster_id"), "; ".join(errors))
            continue
        with contextlib.suppress(FileNotFoundError):  # another `down` reaped it at the same time
            os.remove(path)
        reaped.append(data.get("cluster_id", fn[:-5]))
    return reaped


def _remove_cgroup_tree(path: str) -> list[str]:
    """Kill every process left in a cgroup directory and remove it and its now empty parents up to ``stockdag``;
    return what could not be removed."""
    if not os.path.isdir(path):
        return []

    def procs() -> list[int]:
        try:
            with open(os.path.join(path, "cgroup.procs")) as f:
                return [int(x) for x in f if x.strip()]
        except OSError:
            return []

    left = _kill_until_gone(procs)
    for attempt in range(100):
        try:
            os.rmdir(path)
            break
        except FileNotFoundError:
            break
        except OSError as exc:
            if attempt == 99:
                return [f"cgroup {path}: {exc.strerror}" + (f" (processes {left} survived SIGKILL)" if left else "")]
            time.sleep(0.05)
    parent = os.path.dirname(path)
    while os.path.basename(parent) != "stockdag" and "stockdag" in parent:
        try:
            os.rmdir(parent)
        except OSError:
            return []  # another cluster's machines are still there
        parent = os.path.dirname(parent)
    try:
        os.rmdir(parent)
    except OSError:
        pass
    return []

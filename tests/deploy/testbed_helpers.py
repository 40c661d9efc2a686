"""What a testbed cluster holds on this host, counted from the kernel's own records (shared by the testbed and ssh tests)."""
from __future__ import annotations

import os
import re
import time

from stockdag.deploy.netns import ip, short


def resources(cluster_id: str) -> dict[str, set]:
    """What this host holds of one testbed cluster, found by the names it gives everything: its namespaces, veths,
    bridge, tbf qdiscs, cgroups, and every process its cgroups or namespaces hold. Other clusters' things (another
    run's on this host, or a crashed run's leftovers) are not counted: they neither fail nor pass this test."""
    tag = short(cluster_id)
    netns = {line.split()[0] for line in ip("netns", "list").stdout.splitlines()
             if line.startswith(f"stockdag-{cluster_id}-")}
    links = ip("-o", "link", "show").stdout
    veths = set(re.findall(rf"^\d+: (sdv-{tag}-\d+)", links, re.MULTILINE))
    bridges = set(re.findall(rf"^\d+: (sdb-{tag})\b", links, re.MULTILINE))
    qdiscs = {line for line in ip("tc", "qdisc", "show").stdout.splitlines()
              if "tbf" in line and re.search(rf" dev sd[bv]-{tag}\b", line)}
    cgroups = set()
    for hier in ("cpu", "cpuacct"):
        for d, _, _ in os.walk(f"/sys/fs/cgroup/{hier}/stockdag/{cluster_id}"):
            cgroups.add(d)
    inodes = set()
    for n in netns:
        try:
            inodes.add(os.stat(f"/run/netns/{n}").st_ino)
        except OSError:
            pass
    procs = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cgroup") as f:
                held = f"/stockdag/{cluster_id}/" in f.read()
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            inside = os.stat(f"/proc/{pid}/ns/net").st_ino in inodes
        except OSError:  # gone, or a zombie (it holds no namespace and no cgroup)
            continue
        if held or inside or f"netns exec stockdag-{cluster_id}-" in cmd:
            procs.add(int(pid))
    return {"netns": netns, "veths": veths, "bridges": bridges, "qdiscs": qdiscs, "cgroups": cgroups, "processes": procs}


def settle(cluster_id: str, timeout: float = 30.0) -> dict:
    """What is left of the cluster, once the kernel had time to free its namespaces and processes to be reaped."""
    deadline = time.monotonic() + timeout
    while True:
        left = {k: v for k, v in resources(cluster_id).items() if v}
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)

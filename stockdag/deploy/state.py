"""The record of clusters that outlive the command that started them (``stockdag cluster up``).

One JSON state file a cluster in :func:`state_dir` (a private folder, 0700: it
holds scheduler addresses and, beside each TLS cluster's record, its client
key), read by :func:`status` and by :func:`security_for`, which any process
that connects to such a cluster calls. Starting and stopping are
:mod:`.service`'s; this module starts nothing, so the executors can import it
without importing the cluster kinds.
"""
from __future__ import annotations

import json
import os
import stat

from .. import config


def state_dir() -> str:
    """The folder of the state files, created private (0700, like each cluster's ``.tls/``) whatever the umask."""
    d = config.get("deploy.state_dir") or os.path.join(os.path.expanduser("~"), ".cache", "stockdag", "clusters")
    os.makedirs(d, mode=0o700, exist_ok=True)
    if stat.S_IMODE(os.stat(d).st_mode) != 0o700:  # the umask narrowed the mode, or an older version made it open
        os.chmod(d, 0o700)
    return d


def _alive(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)  # reap it if it is our child (tests start it in-process)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _identity() -> dict:
    """What identifies this process beyond its PID (which the OS reuses): its start time and command line."""
    import psutil

    me = psutil.Process()
    return {"pid": me.pid, "create_time": me.create_time(), "cmdline": me.cmdline()}


def _ours(info: dict) -> bool:
    """True if the recorded cluster process still runs: same PID *and* same start time and command line.

    A PID alone is not enough: after the cluster's process ends, the OS may give
    its PID to an unrelated process, which ``down`` must never signal. A record
    without a start time (written by an older version) is never trusted.
    """
    import psutil

    pid, created = int(info.get("pid", 0)), info.get("create_time")
    if pid <= 0 or created is None or not _alive(pid):
        return False
    try:
        proc = psutil.Process(pid)
        same = abs(proc.create_time() - float(created)) < 0.05
        return same and (not info.get("cmdline") or proc.cmdline() == info["cmdline"])
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.AccessDenied:  # another user's process: not one we started
        return False


TLS_FILES = {"ca_file": "tls_ca_file", "cert": "tls_client_cert", "key": "tls_client_key"}


def _tls_dir(state_file: str) -> str:
    return state_file[: -len(".json")] + ".tls"


def _save_tls(security, folder: str) -> dict | None:
    """Write a TLS cluster's client credentials to ``folder`` (0700, files 0600); return their paths.

    dask-cloudprovider's temporary certificates exist only in the memory of the
    process that made them: without these files no other process can connect.
    """
    if security is None or not getattr(security, "require_encryption", False):
        return None
    os.makedirs(folder, mode=0o700)
    os.chmod(folder, 0o700)  # whatever the umask
    out = {}
    for name, attr in TLS_FILES.items():
        value = getattr(security, attr)
        if value and "-----BEGIN" not in value:  # a path, not the PEM itself
            with open(value) as f:
                value = f.read()
        path = os.path.join(folder, f"{name}.pem")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(value or "")
        out[name] = path
    return out


def security_for(address):
    """The :class:`distributed.Security` of the ``cluster up`` cluster at ``address``; None if there is none.

    Commands given ``--scheduler tls://...`` call this, so a TLS cluster started
    by ``stockdag cluster up`` is usable from any process of the same user.
    """
    if not isinstance(address, str) or not address.startswith("tls://"):
        return None
    for c in status():
        if c.get("scheduler") == address and c.get("tls") and c["alive"]:
            from distributed import Security

            t = c["tls"]
            return Security(require_encryption=True, tls_ca_file=t["ca_file"], tls_client_cert=t["cert"],
                            tls_client_key=t["key"])
    return None


def _write_state(path: str, info: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(info, f, indent=2)
    os.replace(tmp, path)


def status() -> list[dict]:
    """Every recorded cluster, each with ``alive`` (its process still runs)."""
    out = []
    d = state_dir()
    for fn in sorted(os.listdir(d)):
        if not fn.endswith(".json"):
            continue
        try:
            with open(os.path.join(d, fn)) as f:
                info = json.load(f)
        except (OSError, ValueError):
            continue
        info["alive"] = _ours(info)
        info["state_file"] = os.path.join(d, fn)
        out.append(info)
    return out

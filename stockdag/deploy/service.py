"""Clusters that outlive the command that started them: ``stockdag cluster up / status / down``.

``up`` starts a detached process (``python -m stockdag.deploy.service``, a new
session, so closing the terminal does not stop it) that runs
``with start(spec) as cluster:`` and records the cluster in a JSON state file
under ``stockdag.deploy.state_dir`` (``~/.cache/stockdag/clusters``), with its
PID, start time and command line. A TLS cluster's client certificate, key and
CA are written beside it (``<cluster id>.tls/``, folder 0700, files 0600), so
other processes connect with :func:`security_for`. ``down`` sends it SIGTERM
only if the process with that PID still has that start time and command line
(PIDs are reused); :func:`stockdag.deploy.start` turns that into the same
teardown as any other exit, and the process removes its state file last.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid

from .. import config
from .spec import DeployError, load_spec


def state_dir() -> str:
    d = config.get("deploy.state_dir") or os.path.join(os.path.expanduser("~"), ".cache", "stockdag", "clusters")
    os.makedirs(d, exist_ok=True)
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


def up(spec, timeout: float | None = None) -> dict:
    """Start the spec's cluster in a detached process; return its state (addresses, workers, pid)."""
    spec = load_spec(spec)
    if spec.source is None:
        raise DeployError("cluster up needs a spec file (the detached process reads it)")
    timeout = float(config.get("deploy.start_timeout", timeout)) + 30
    cluster_id = f"{spec.name}-{uuid.uuid4().hex[:8]}"
    d = state_dir()
    state = os.path.join(d, f"{cluster_id}.json")
    log = os.path.join(d, f"{cluster_id}.log")
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "stockdag.deploy.service", os.path.abspath(spec.source),
                                 "--cluster-id", cluster_id, "--state", state],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout
    while not os.path.exists(state):
        if proc.poll() is not None:
            with open(log, errors="replace") as f:
                lines = [ln for ln in f.read().strip().splitlines() if ln.strip()]
            raise DeployError(f"cluster {cluster_id} failed to start: {lines[-1] if lines else 'no output'} (log: {log})")
        if time.monotonic() > deadline:
            _signal(proc.pid, signal.SIGTERM)
            raise DeployError(f"cluster {cluster_id} did not start within {timeout:g} s (log: {log}); stopping it")
        time.sleep(0.1)
    with open(state) as f:
        return json.load(f)


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


def _signal(pid: int, sig) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def down(names: list[str] | None = None, all: bool = False, timeout: float = 60.0) -> list[dict]:
    """Stop the named clusters (cluster id or spec name), or all with ``all=True``; return what was stopped."""
    if not names and not all:
        raise DeployError("name a cluster to stop (see `stockdag cluster status`) or pass --all")
    running = status()
    chosen = running if all else [c for c in running if c["cluster_id"] in names or c["name"] in names]
    if not all:
        missing = [n for n in names if not any(n in (c["cluster_id"], c["name"]) for c in running)]
        if missing:
            raise DeployError(f"no running cluster named {', '.join(missing)}; running: "
                              f"{', '.join(c['cluster_id'] for c in running) or 'none'}")
    for c in chosen:
        if c["alive"] and _ours(c):  # checked again right before the signal
            _signal(int(c["pid"]), signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for c in chosen:
        while c["alive"] and _ours(c):
            if time.monotonic() > deadline:
                raise DeployError(f"cluster {c['cluster_id']} (pid {c['pid']}) did not stop within {timeout:g} s")
            time.sleep(0.1)
        for fn in (c["state_file"], c["state_file"][:-5] + ".log"):
            if os.path.exists(fn):
                os.remove(fn)
        shutil.rmtree(_tls_dir(c["state_file"]), ignore_errors=True)  # the process removes it; a dead one could not
    return chosen


def _serve(argv=None) -> int:
    from . import start

    p = argparse.ArgumentParser(prog="python -m stockdag.deploy.service")
    p.add_argument("spec")
    p.add_argument("--cluster-id", required=True)
    p.add_argument("--state", required=True)
    args = p.parse_args(argv)
    try:
        with start(args.spec, cluster_id=args.cluster_id) as cluster:
            tls = _save_tls(cluster.security, _tls_dir(args.state))
            _write_state(args.state, {**cluster.info(), **_identity(), "tls": tls,
                                      "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
            while True:
                signal.pause()
    except KeyboardInterrupt:
        return 0
    finally:
        if os.path.exists(args.state):
            os.remove(args.state)
        shutil.rmtree(_tls_dir(args.state), ignore_errors=True)


if __name__ == "__main__":
    sys.exit(_serve())

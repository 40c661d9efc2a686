"""Clusters that outlive the command that started them: ``stockdag cluster up / status / down``.

The record of those clusters (state folder, files, TLS credentials) is
:mod:`.state`'s. ``up`` starts a detached process (``python -m stockdag.deploy.service``, a new
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
from .schema import DeployError
from .spec import load_spec
from .state import (  # noqa: F401  (re-exported: the record's functions were defined here)
    TLS_FILES,
    _alive,
    _identity,
    _ours,
    _save_tls,
    _tls_dir,
    _write_state,
    security_for,
    state_dir,
    status,
)


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
    try:
        while not os.path.exists(state):
            if proc.poll() is not None:
                with open(log, errors="replace") as f:
                    lines = [ln for ln in f.read().strip().splitlines() if ln.strip()]
                raise DeployError(f"cluster {cluster_id} failed to start: {lines[-1] if lines else 'no output'} (log: {log})")
            if time.monotonic() > deadline:
                raise DeployError(f"cluster {cluster_id} did not start within {timeout:g} s (log: {log}); stopped it")
            time.sleep(0.1)
    except BaseException as exc:
        # a failed start or Ctrl-C of `up`: the detached process (its own session: the signal never reached it)
        # must not come up anyway, nor be left half made; it tears down on SIGTERM, whatever it has started
        _signal(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            _signal(proc.pid, signal.SIGKILL)
            proc.wait()
            from .netns import reap_orphans

            reap_orphans()
        # the log stays when the error names it; an interrupted `up` leaves no file
        for fn in (state, log) if isinstance(exc, KeyboardInterrupt) else (state,):
            if os.path.exists(fn):
                os.remove(fn)
        raise
    with open(state) as f:
        return json.load(f)


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
    from .netns import reap_orphans

    reap_orphans()  # a testbed whose process was killed: its namespaces, bridge and cgroups (from its ledger)
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

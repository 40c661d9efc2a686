"""A throw-away OpenSSH server for the ssh kind's tests: its own config, host key and authorized_keys.

:class:`SSHServer` runs one ``/usr/sbin/sshd -D -e -f <config> -p <port>`` listening on several
addresses (one ``ListenAddress`` each), so one server stands for several machines: a session's
processes tell which address they were reached at by ``SSH_CONNECTION`` in their environment.
*How* it is launched is a parameter (``launcher``: argv -> Popen), so the same server can run inside
a testbed machine (e.g. ``ip netns exec NAME`` before the argv) instead of on this host's loopback. Every session's processes carry ``STOCKDAG_TEST_SSHD=<the server's folder>``
in their environment (sshd ``SetEnv``), so :meth:`SSHServer.session_pids` finds them even after
they were orphaned; ``PYTHONPATH`` is set the same way so remote Python imports this checkout.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time

import psutil

SSHD = "/usr/sbin/sshd"
MARK = "STOCKDAG_TEST_SSHD"
#: the loopback addresses the session's sshd listens on, each standing for one machine of an ssh spec
ADDRESSES = {"head": "127.0.0.2", "lab1": "127.0.0.3", "lab2": "127.0.0.4"}


def keygen(path) -> str:
    """A new unencrypted ed25519 key at ``path``; returns the public key line."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "stockdag-test", "-f", str(path)], check=True)
    with open(f"{path}.pub") as f:
        return f.read().strip()


def free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def local_launcher(argv, **kwargs) -> subprocess.Popen:
    """Start sshd as a process of this host (the default launcher)."""
    return subprocess.Popen(argv, **kwargs)


class SSHServer:
    """One sshd listening on ``port`` of every address in ``addresses``, accepting only the keys given to :meth:`authorize`."""

    def __init__(self, folder, addresses, pythonpath: str, launcher=local_launcher, port: int | None = None):
        self.folder = str(folder)
        os.makedirs(self.folder, mode=0o700, exist_ok=True)
        self.addresses = tuple(addresses)
        self.port = port or free_port(self.addresses[0])
        self.launcher = launcher
        self.host_key = os.path.join(self.folder, "ssh_host_ed25519_key")
        self.host_pub = keygen(self.host_key)
        self.authorized = os.path.join(self.folder, "authorized_keys")
        open(self.authorized, "w").close()
        os.chmod(self.authorized, 0o600)
        self.log = os.path.join(self.folder, "sshd.log")
        self.config = os.path.join(self.folder, "sshd_config")
        with open(self.config, "w") as f:
            f.write("\n".join([
                *(f"ListenAddress {a}" for a in self.addresses), f"HostKey {self.host_key}", f"AuthorizedKeysFile {self.authorized}",
                f"PidFile {os.path.join(self.folder, 'sshd.pid')}", f"AllowUsers {psutil.Process().username()}",
                "PubkeyAuthentication yes", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
                "PermitRootLogin prohibit-password", "UsePAM no", "StrictModes no", "AllowAgentForwarding no",
                "X11Forwarding no", "PrintMotd no", "LogLevel VERBOSE",
                f"SetEnv {MARK}={self.folder} PYTHONPATH={pythonpath}", ""]))
        self.proc: subprocess.Popen | None = None

    def authorize(self, public_key: str) -> None:
        with open(self.authorized, "a") as f:
            f.write(public_key + "\n")

    def known_hosts_line(self, address: str) -> str:
        """This server's entry for a known_hosts file as reached at ``address`` (``[address]:port key``)."""
        return f"[{address}]:{self.port} {' '.join(self.host_pub.split()[:2])}"

    def start(self, timeout: float = 20.0) -> SSHServer:
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege-separation folder, when run as root
        with open(self.log, "wb") as log:
            self.proc = self.launcher([SSHD, "-D", "-e", "-f", self.config, "-p", str(self.port)],
                                      stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while self.read_log().count("Server listening on") < len(self.addresses):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"sshd on {', '.join(self.addresses)} port {self.port} did not start: {self.read_log()[-500:]}")
            time.sleep(0.05)
        return self

    def read_log(self) -> str:
        with open(self.log, errors="replace") as f:
            return f.read()

    def session_pids(self, address: str | None = None) -> list[int]:
        """Processes started by this server's sessions (their environment has its mark), orphaned or not.

        ``address``: only those of sessions reached at that address (``SSH_CONNECTION``'s third field).
        """
        mark = f"{MARK}={self.folder}".encode()
        out = []
        for pid in psutil.pids():
            try:
                with open(f"/proc/{pid}/environ", "rb") as f:
                    env = f.read().split(b"\0")
            except OSError:  # gone meanwhile, or not ours to read
                continue
            if mark not in env:
                continue
            conn = next((e.split(b"=", 1)[1].split() for e in env if e.startswith(b"SSH_CONNECTION=")), [])
            if address is None or (len(conn) == 4 and conn[2].decode() == address):
                out.append(pid)
        return out

    def children(self) -> list[int]:
        """The listener's descendants (one sshd per connection, and what each session runs)."""
        try:
            return [p.pid for p in psutil.Process(self.proc.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        for pid in self.session_pids():  # a test that failed half way: nothing of it outlives the server
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

#!/bin/sh
# Make sure OpenSSH's `sshd` and `ssh-keygen` are there for the ssh cluster kind's tests
# (tests/deploy/test_deploy_ssh.py), which start their own throw-away servers on loopback addresses,
# each with its own config, host key and authorized_keys in a temp folder.
# Idempotent: does nothing when both are there. Installs Debian's openssh-server with apt-get otherwise
# (needs root or sudo and the Debian archive). The package's own system service is not needed: it is
# stopped and disabled again if apt started it, so nothing listens on port 22 because of the tests.
# Exits non-zero when sshd is missing and cannot be installed, so CI fails instead of skipping.
set -eu
SSHD=/usr/sbin/sshd
if [ ! -x "$SSHD" ] || ! command -v ssh-keygen >/dev/null 2>&1; then
    sh "$(dirname "$0")/apt-install.sh" ensure-sshd openssh-server
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
        $SUDO systemctl disable --now ssh >/dev/null 2>&1 || true
    fi
fi
if [ ! -x "$SSHD" ] || ! command -v ssh-keygen >/dev/null 2>&1; then
    echo "ensure-sshd: apt-get finished but $SSHD or ssh-keygen is still missing" >&2
    exit 1
fi

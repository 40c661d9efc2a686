#!/bin/sh
# Make sure `redis-server` is on PATH for the Redis cache tests (tests/data/test_cache_redis.py), which start
# their own throw-away server on a free loopback port.
# Idempotent: does nothing when it is already there. Installs Debian's redis-server with apt-get otherwise
# (needs root or sudo and the Debian archive). The package's own system service is not needed: it is stopped
# again if apt started it, so nothing listens on 6379 because of the tests.
# Exits non-zero when redis-server is missing and cannot be installed, so CI fails instead of skipping.
set -eu
if command -v redis-server >/dev/null 2>&1; then
    exit 0
fi
sh "$(dirname "$0")/apt-install.sh" ensure-redis redis-server
# in a container apt starts no service; on a host with systemd, stop and disable the one it started
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO systemctl disable --now redis-server >/dev/null 2>&1 || true
fi
if ! command -v redis-server >/dev/null 2>&1; then
    echo "ensure-redis: apt-get finished but redis-server is still not on PATH" >&2
    exit 1
fi

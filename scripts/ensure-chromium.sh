#!/bin/sh
# Make sure Debian's chromium is at /usr/bin/chromium for the browser tests (tests/webapp, marker `browser`).
# Idempotent: does nothing when it is already there. Installs it with apt-get otherwise (needs root and the
# Debian archive); never downloads a browser any other way (no `playwright install`).
# Exits non-zero when chromium is missing and cannot be installed, so CI fails instead of skipping.
set -eu
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
if [ -x "$CHROMIUM" ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-chromium: $CHROMIUM is missing and apt-get is not available; install Debian's chromium" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "ensure-chromium: $CHROMIUM is missing; run as root (or with sudo): apt-get install chromium" >&2
        exit 1
    fi
fi
echo "ensure-chromium: installing Debian's chromium with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
if [ ! -x "$CHROMIUM" ]; then
    echo "ensure-chromium: apt-get finished but $CHROMIUM is still missing" >&2
    exit 1
fi

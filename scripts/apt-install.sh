#!/bin/sh
# Install Debian packages with apt-get, as root or through sudo: the shared step of scripts/ensure-*.sh.
#   scripts/apt-install.sh TAG PACKAGE...     (TAG prefixes the messages, e.g. ensure-redis)
# Exits non-zero when apt-get is missing or there is no way to become root, so CI fails instead of skipping.
set -eu
tag=$1
shift
if ! command -v apt-get >/dev/null 2>&1; then
    echo "$tag: apt-get is not available; install $* yourself" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "$tag: run as root (or with sudo): apt-get install $*" >&2
        exit 1
    fi
fi
echo "$tag: installing $* with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null

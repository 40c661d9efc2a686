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
sh "$(dirname "$0")/apt-install.sh" ensure-chromium chromium fonts-dejavu-core
if [ ! -x "$CHROMIUM" ]; then
    echo "ensure-chromium: apt-get finished but $CHROMIUM is still missing" >&2
    exit 1
fi

#!/bin/sh
# The tests that used to flake on a busy machine, run while two busy-loop processes compete for the cores.
# They prove mechanisms (counters, records, a virtual clock), so they must pass however slow the host is.
# Usage: scripts/under-load.sh [extra pytest args]; `make test` runs it after the suite.
set -eu
PY=${PYTHON:-.venv/bin/python}
hogs=""
cleanup() { for pid in $hogs; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM
for _ in 1 2; do
    "$PY" -c "while True: pass" &
    hogs="$hogs $!"
done
echo "under-load: two busy-loop processes ($hogs) beside the tests"
start=$(date +%s)
"$PY" -m pytest -q -p no:cacheprovider \
    tests/deploy/test_deploy_emulated.py \
    tests/bench/test_loadgen.py tests/bench/test_loadgen_clock.py \
    tests/test_latency.py \
    "$@"
echo "under-load: passed in $(( $(date +%s) - start )) s with two CPU hogs running"

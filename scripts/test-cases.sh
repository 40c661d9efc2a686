#!/usr/bin/env bash
# The design report's test cases, on the local cluster and on the emulated heterogeneous one.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/sweep.sh experiments/params/test-cases-local.yaml "$@"
scripts/sweep.sh experiments/params/test-cases-emulated.yaml "$@"

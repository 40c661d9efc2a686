#!/usr/bin/env bash
# Issue 22 in one command: the test cases on the testbed's scaled machines, then the simulator out of sample, then
# the REPORTs. Needs root and iproute2 (network namespaces, cgroups); run it on a quiet machine.
# A block (one configuration in one repeat: testbed start, server boot, warm-up, its points, teardown) took ~2 min on
# quarter-core machines (results/20261207-1700-test-cases-core), so:
#   scripts/test-cases-testbed.sh core    # ~80 min: experiments/params/test-cases-testbed-core.yaml (13 x 3 blocks)
#   scripts/test-cases-testbed.sh pilot   # ~40 min: a first check of every part (7 x 3 blocks)
#   scripts/test-cases-testbed.sh full    # ~5 h: pretrained (every strategy), hetero, refit (subset)
#   scripts/test-cases-testbed.sh pretrained hetero   # the named parameter files only, in that order
# Each parameter file becomes results/<stamp>-test-cases-<name>/ (one stamp for the whole call): its REPORT.md holds
# the strategy statistics and, from `stockdag simulate holdout`, measured vs simulated per number of machines.
# RUN_STAMP=<stamp> resumes an interrupted call (the sweep skips the points it has). VENV as in scripts/sweep.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
usage="usage: scripts/test-cases-testbed.sh pilot|full|NAME..."
[ $# -gt 0 ] || { echo "$usage" >&2; exit 2; }
case "$1" in
    full) names=(pretrained hetero refit) ;;
    *) names=("$@") ;;
esac
for name in "${names[@]}"; do
    if [ ! -f "experiments/params/test-cases-testbed-$name.yaml" ]; then
        echo "scripts/test-cases-testbed.sh: no experiments/params/test-cases-testbed-$name.yaml (choose pilot, full," \
             "or names of such files: $(ls experiments/params | sed -n 's/^test-cases-testbed-\(.*\)\.yaml$/\1/p' | tr '\n' ' '))" >&2
        exit 2
    fi
done
if [ "$(id -u)" != 0 ]; then
    echo "scripts/test-cases-testbed.sh: the testbed needs root (network namespaces and cgroups)" >&2; exit 2
fi
bin=${VENV:-.venv}/bin
stamp=${RUN_STAMP:-$(date +%Y%m%d-%H%M%S)}
status=0
for name in "${names[@]}"; do
    run="$stamp-test-cases-$name"
    # the 8-64-machine extension (scale.ipynb) is separate: these runs are the measured answer
    RUN_ID="$run" SCALE=0 VENV="${VENV:-.venv}" scripts/sweep.sh "experiments/params/test-cases-testbed-$name.yaml"
    # calibrated on the centralized and 1-machine points only; a failed check keeps the measured run and its REPORT
    "$bin/python" -m stockdag.cli simulate holdout "results/$run" --repeats 3 || status=$?
    "$bin/python" -m stockdag.cli report "results/$run"
done
"$bin/python" -m stockdag.cli report results
exit "$status"

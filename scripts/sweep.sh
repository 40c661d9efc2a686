#!/usr/bin/env bash
# Run the sweep notebook with a parameter file; the executed notebook, data, charts and REPORT.md
# land in results/<run-id>/, and results/REPORT.md is remade.
#   scripts/sweep.sh experiments/params/default.yaml [papermill -p NAME VALUE ...]
#   scripts/sweep.sh experiments/params/full.yaml   # the full grid (make experiment-full)
#   scripts/sweep.sh experiments/params/test-cases-local.yaml
#   RUN_ID=my-run scripts/sweep.sh experiments/params/test-cases-emulated.yaml   # resumes my-run if it exists
#   RESULTS=/tmp/runs scripts/sweep.sh PARAMS.yaml   # the folder of run folders (default results)
# The terminal shows each point as it starts (i of N, its configuration) and an ETA: papermill --log-output prints
# the kernel's stderr, where the sweep and the scale grid write their progress (and each cell's output).
# On EC2: `stockdag cluster plan experiments/clusters/ec2-small.yaml`, then
#   scripts/sweep.sh experiments/params/default.yaml -p cluster experiments/clusters/ec2-small.yaml
set -euo pipefail
cd "$(dirname "$0")/.."
params=${1:?usage: scripts/sweep.sh PARAMS.yaml [papermill options]}
shift
bin=${VENV:-.venv}/bin
run_id=${RUN_ID:-$(date +%Y%m%d-%H%M%S)-$(basename "$params" .yaml)}
results=${RESULTS:-results}
mkdir -p "$results/$run_id"
"$bin/papermill" experiments/sweep.ipynb "$results/$run_id/sweep.ipynb" -f "$params" --log-output \
    -p run_id "$run_id" -p out "$results" --cwd . "$@"
# The design report's test cases at 1-5 and 8-64 machines, SIMULATED by stockdag.lab.simulate calibrated on this run's
# centralized and 1-worker points (experiments/scale.ipynb; SCALE=0 skips it, SCALE_PARAMS overrides its parameters).
# A failed simulation does not lose the measured run: its report is still made, then the script exits non-zero.
scale_status=0
# (a variable: in ${SCALE_PARAMS:-{...}} the first } closes the expansion, so a given SCALE_PARAMS gained a stray })
# SCALE_SEEDS: the seeds of each simulated point (three judge ties with the best; `make experiment` runs one to fit its
# ~10 minutes, and its table then says that no tie was judged)
default_scale="{requests: 100, seeds: ${SCALE_SEEDS:-[0, 1, 2]}, strategies: [dask, round-robin, least-loaded, heft, adaptive]}"
scale_params=${SCALE_PARAMS:-$default_scale}
if [ "${SCALE:-1}" != 0 ]; then
    "$bin/papermill" experiments/scale.ipynb "$results/$run_id/scale.ipynb" -p run "$results/$run_id" --log-output \
        -y "$scale_params" --cwd . || scale_status=$?
fi
"$bin/stockdag" report "$results/$run_id"
"$bin/stockdag" report "$results"
echo "$results/$run_id/REPORT.md"
exit "$scale_status"

#!/usr/bin/env bash
# Run the sweep notebook with a parameter file; the executed notebook, data, charts and REPORT.md
# land in results/<run-id>/, and results/REPORT.md is remade.
#   scripts/sweep.sh experiments/params/default.yaml [papermill -p NAME VALUE ...]
#   scripts/sweep.sh experiments/params/test-cases-local.yaml
#   RUN_ID=my-run scripts/sweep.sh experiments/params/test-cases-emulated.yaml   # resumes my-run if it exists
# On EC2: `stockdag cluster plan experiments/clusters/ec2-small.yaml`, then
#   scripts/sweep.sh experiments/params/default.yaml -p cluster experiments/clusters/ec2-small.yaml
set -euo pipefail
cd "$(dirname "$0")/.."
params=${1:?usage: scripts/sweep.sh PARAMS.yaml [papermill options]}
shift
bin=${VENV:-.venv}/bin
run_id=${RUN_ID:-$(date +%Y%m%d-%H%M%S)-$(basename "$params" .yaml)}
mkdir -p "results/$run_id"
"$bin/papermill" experiments/sweep.ipynb "results/$run_id/sweep.ipynb" -f "$params" \
    -p run_id "$run_id" -p out results --cwd . "$@"
"$bin/stockdag" report "results/$run_id"
"$bin/stockdag" report results
echo "results/$run_id/REPORT.md"

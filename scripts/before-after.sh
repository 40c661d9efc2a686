#!/usr/bin/env bash
# Before/after in one interleaved run: the same `stockdag demo` command from an older commit and from this
# checkout, alternated (old, new, new, old, ...) so a machine that drifts slows both alike.
#   scripts/before-after.sh OLD_COMMIT ROUNDS OUT_DIR -- demo arguments...
# writes OUT_DIR/{old,new}-<round>.json (each the demo's --json output) and OUT_DIR/commits.txt.
# The old commit runs from a temporary git worktree (removed on every exit path) with this venv's packages.
# Each side trains and reads a model store of its own (the store's format changes between commits, and
# neither side may read what the other wrote); the stores are temporary too.
set -euo pipefail
old=$1 rounds=$2 out=$3; shift 4
root=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-$root/.venv/bin/python}
tree=$(mktemp -d) stores=$(mktemp -d)
trap 'git -C "$root" worktree remove --force "$tree" >/dev/null 2>&1 || rm -rf "$tree"; rm -rf "$stores"' EXIT INT TERM
git -C "$root" worktree add --detach -q "$tree" "$old"
for side in old new; do
  src=$root; [ "$side" = old ] && src=$tree
  echo "training the $side side's model store" >&2
  (cd "$src" && PYTHONPATH="$src" "$py" -m stockdag.cli train --store "$stores/$side" >/dev/null)
done
mkdir -p "$out"
{ echo "old $(git -C "$tree" rev-parse HEAD)"; echo "new $(git -C "$root" rev-parse HEAD) dirty=$(git -C "$root" status --porcelain -uno | wc -l)"
  echo "command: stockdag demo $*"; } > "$out/commits.txt"
for i in $(seq 1 "$rounds"); do
  if [ $((i % 2)) -eq 1 ]; then order="old new"; else order="new old"; fi
  for side in $order; do
    echo "round $i: $side" >&2
    (src=$root; [ "$side" = old ] && src=$tree
     cd "$src" && DASK_STOCKDAG__MODELS__STORE="$stores/$side" PYTHONPATH="$src" "$py" -m stockdag.cli demo "$@" --json) > "$out/$side-$i.json"
  done
done

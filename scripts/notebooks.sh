#!/usr/bin/env bash
# Runs every notebook in notebooks/ top to bottom, headless (jupyter nbconvert --execute), and fails
# on any cell error or on a committed notebook that still holds outputs.
#
#   scripts/notebooks.sh                       train the miniature sweeps of notebooks/ci/ into a
#                                              temporary results root and run the notebooks on it
#   LAB_RESULTS=results scripts/notebooks.sh   run them on your own results (the shipped sweeps)
#
# The pinned Python dependencies (notebooks/requirements.txt) go into a virtual environment,
# $LAB_VENV (default .venv). The lab binary is $LAB_BIN (default: the dev build, built if missing).
# Executed copies (with outputs) are left in $LAB_NOTEBOOKS_OUT (default: a temporary folder).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${LAB_VENV:-.venv}

source scripts/venv.sh
make_venv "$venv" notebooks/requirements.txt

# Outputs are stripped before commit: a notebook in the repository holds code and text only.
"$venv/bin/python" - notebooks/*.ipynb <<'EOF'
import sys, nbformat
bad = []
for path in sys.argv[1:]:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None):
            bad.append(f"{path}: cell {i} holds outputs (clear them before committing)")
if bad:
    sys.exit("\n".join(bad))
EOF

lab_bin
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -z "${LAB_RESULTS:-}" ]; then
  for sweep in notebooks/ci/*.yaml; do
    echo "notebooks: training $sweep"
    "$LAB_BIN" sweep "$sweep" --results "$work/results" >"$work/sweep.log" 2>&1 ||
      { cat "$work/sweep.log"; exit 1; }
  done
  export LAB_RESULTS="$work/results"
fi
out=${LAB_NOTEBOOKS_OUT:-$work/executed}
for nb in notebooks/*.ipynb; do
  echo "notebooks: running $nb on $LAB_RESULTS"
  start=$SECONDS
  if ! "$venv/bin/jupyter" nbconvert --to notebook --execute --ExecutePreprocessor.timeout=900 \
    --output-dir "$out" "$nb" >"$work/run.log" 2>&1; then
    grep -v 'without encryption' "$work/run.log" >&2
    echo "notebooks: $nb failed" >&2
    exit 1
  fi
  echo "notebooks: $nb ran in $((SECONDS - start)) s"
done

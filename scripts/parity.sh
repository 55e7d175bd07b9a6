#!/usr/bin/env bash
# The step-by-step parity check against PyTorch: trains each run of bench/parity/ with
# `lab train --trace` (50 steps of AdamW with warmup, decay and clipping) and replays it in PyTorch
# (bench/torch_parity.py), failing on any step whose loss differs by more than 1e-4 (relative).
#
#   scripts/parity.sh                     every run of bench/parity/
#   scripts/parity.sh bench/parity/moe.yaml
#
# PyTorch (bench/requirements.txt, pinned) goes into a virtual environment, $LAB_TORCH_VENV
# (default .venv-torch; PyPI's Linux wheel brings its CUDA libraries, about 5 GB). The lab binary
# is $LAB_BIN (default: the dev build, built if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${LAB_TORCH_VENV:-.venv-torch}
source scripts/venv.sh
make_venv "$venv" bench/requirements.txt
lab_bin
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
runs=("$@")
[ ${#runs[@]} -gt 0 ] || runs=(bench/parity/*.yaml)
for run in "${runs[@]}"; do
  name=$(basename "$run" .yaml)
  "$LAB_BIN" train "$run" --backend flex --out "$work/$name" --trace "$work/$name/trace" >"$work/train.log" 2>&1 ||
    { cat "$work/train.log"; echo "parity: lab train $run failed" >&2; exit 1; }
  echo "parity: $run"
  if ! "$venv/bin/python" bench/torch_parity.py "$work/$name/trace" >"$work/replay.log" 2>&1; then
    cat "$work/replay.log"
    echo "parity: $run diverged from PyTorch" >&2
    exit 1
  fi
  grep -E "^[0-9]+ (of [0-9]+ )?steps|^routing|^parity" "$work/replay.log" | sed "s/^/  /"
done

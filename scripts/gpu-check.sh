#!/usr/bin/env bash
# The GPU check: on a machine with an NVIDIA GPU (driver, CUDA, PyTorch; no Rust, no network), runs
# the binaries scripts/build-gpu.sh left in dist/gpu/: the CPU/GPU parity tests, `lab bench` on
# models S, M and L for each GPU backend in f32 and bf16, PyTorch eager on the same models, the gain
# of several small runs per device, and the GPU sweep. Writes every number to one file (default
# gpu-check.txt, or $OUT/gpu-check.txt) and stays within about 8 minutes.
#   scripts/gpu-check.sh [REPORT]
set -uo pipefail
cd "$(dirname "$0")/.."
report="${1:-${OUT:-.}/gpu-check.txt}"
bin=dist/gpu
lab="$PWD/$bin/lab"
start=$(date +%s)
: >"$report"
say() { echo "$@" | tee -a "$report"; }
step() { say; say "## $* ($(($(date +%s) - start)) s)"; }
# Runs a command with a time limit, its output into the report.
run() {
  local limit=$1
  shift
  say "\$ $*"
  timeout "$limit" "$@" 2>&1 | grep -v '^@progress' | tee -a "$report"
  local rc=${PIPESTATUS[0]}
  [ "$rc" = 0 ] || say "(exit $rc)"
}

# The Vulkan loader, where the machine lacks it, and NVIDIA's ICD where the loader finds none.
if ! ldconfig -p | grep -q libvulkan.so.1 && [ -d "$bin/debs" ]; then
  for f in "$bin"/debs/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -f "$icd" ] && ! ls /usr/share/vulkan/icd.d/*nvidia* /etc/vulkan/icd.d/*nvidia* >/dev/null 2>&1; then
  export VK_DRIVER_FILES=$icd
fi

step "machine"
run 20 nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
run 20 "$lab" --version
run 60 "$lab" backends
backends=$(cat "$bin/FEATURES" 2>/dev/null | tr ',' ' ')

step "parity tests (CPU vs GPU)"
for b in $backends; do
  LAB_BIN="$lab" LAB_GPU_BACKEND=$b run 150 "$bin/gpu-tests" --test-threads 1
done

step "lab bench"
for b in $backends; do
  for p in f32 bf16; do
    run 90 "$lab" bench --backend "$b" --model all --precision "$p" --steps 10 --peak-size 4096
  done
done

step "PyTorch eager, same models"
for p in f32 bf16; do
  run 90 python3 bench/torch_bench.py --device cuda --model all --dtype "$p" --steps 10
done

step "several small runs per device (model S, cuda if built, else wgpu)"
gb=$(echo "$backends" | grep -o cuda || echo wgpu)
one=$(timeout 60 "$lab" bench --backend "$gb" --model S --steps 30 2>&1 | awk '$1=="S"{print $4}')
say "1 process: ${one:-?} tokens/s"
tmp=$(mktemp -d)
for i in 1 2 3 4; do timeout 90 "$lab" bench --backend "$gb" --model S --steps 30 >"$tmp/$i" 2>&1 & done
wait
four=$(awk '$1=="S"{s+=$4} END{print s+0}' "$tmp"/*)
say "4 processes at once: $four tokens/s in all ($(python3 -c "print(f'{$four/max(${one:-1},1):.2f}')")x)"

step "GPU sweep"
left=$((480 - ($(date +%s) - start)))
if [ "$left" -gt 60 ]; then
  run "$left" "$lab" sweep sweeps/chinchilla-gpu.yaml --backend "$gb" --jobs-per-device 4 \
    --results "/tmp/gpu-results" --bootstrap 200
  [ -f "/tmp/gpu-results/chinchilla-gpu/report.md" ] &&
    cat "/tmp/gpu-results/chinchilla-gpu/report.md" >>"$report"
else
  say "skipped: $left s left of 8 minutes"
fi
step "done"

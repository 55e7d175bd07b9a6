#!/usr/bin/env bash
# Builds lab and its GPU test binary with the GPU backends into dist/gpu/, to carry to a machine with
# an NVIDIA GPU but no Rust toolchain (x86-64 Linux), where scripts/gpu-check.sh runs them. Also
# fetches the Vulkan loader package such a machine may lack (dist/gpu/debs/).
#   scripts/build-gpu.sh                  # wgpu (the dev profile: dependencies optimised)
#   FEATURES=wgpu,cuda scripts/build-gpu.sh
# The cuda feature needs network access at build time beyond the package registries: burn 0.22's
# CUDA backend depends on cubecl-llvm, whose build script (tracel-llvm-bundler) downloads an LLVM
# bundle from GitHub. On machines that reach only crates.io it fails; build it where GitHub is reachable.
set -euo pipefail
cd "$(dirname "$0")/.."
features="${FEATURES:-wgpu}"
out=dist/gpu
mkdir -p "$out"
cargo build --locked --features "$features" --bin lab
tests=$(cargo test --locked --features "$features" --test gpu --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "gpu" and m.get("executable"):
        print(m["executable"])')
cp target/debug/lab "$out/lab"
cp "$tests" "$out/gpu-tests"
if command -v apt-get >/dev/null; then
  mkdir -p "$out/debs" /tmp/amd64/partial
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  apt-get $o update -qq >/dev/null
  (cd "$out/debs" && apt-get $o download -qq libvulkan1 >/dev/null)
fi
echo "$features" > "$out/FEATURES"
ls -la "$out"

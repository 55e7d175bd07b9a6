#!/usr/bin/env bash
# The test command: every test from one build (dev profile, dependencies optimised; the default
# features, which include the wgpu backend), so the GPU code path is built and tested on every run.
# Without a GPU, the wgpu tests run on Mesa's lavapipe (software Vulkan on the CPU), installed here
# when no Vulkan driver is; the Slurm tests run on a one-machine cluster this script starts
# (scripts/slurm-local.sh; root or sudo) and stops again. LAB_SLURM=0 skips the cluster. Then the
# notebooks run headless on miniature sweeps (scripts/notebooks.sh; LAB_NOTEBOOKS=0 skips them),
# and lab's training is replayed step by step in PyTorch (scripts/parity.sh; LAB_PARITY=0 skips it),
# `lab export --tensorboard` is read back with TensorBoard's own reader (scripts/tensorboard.sh;
# LAB_TENSORBOARD=0 skips it), and `lab serve` is checked in headless Chromium (scripts/browser.sh,
# which installs Debian's chromium when missing; LAB_BROWSER=0 skips it).
#   scripts/test.sh [extra cargo test arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
icds=$(ls /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json 2>/dev/null || true)
if [ -z "$icds" ] || ! ldconfig -p | grep -q libvulkan.so.1; then
  if command -v apt-get >/dev/null; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    echo "installing Mesa's Vulkan drivers (lavapipe) for the wgpu tests"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
  else
    echo "no Vulkan driver found and no apt-get: install a Vulkan driver (e.g. Mesa's lavapipe)" >&2
    exit 1
  fi
fi
if [ "${LAB_SLURM:-1}" = 1 ]; then
  scripts/slurm-local.sh start
  trap 'scripts/slurm-local.sh stop' EXIT
  export LAB_SLURM=1
fi
cargo test --workspace --locked "$@"
if [ "${LAB_NOTEBOOKS:-1}" = 1 ]; then
  scripts/notebooks.sh
fi
if [ "${LAB_PARITY:-1}" = 1 ]; then
  scripts/parity.sh
fi
if [ "${LAB_TENSORBOARD:-1}" = 1 ]; then
  scripts/tensorboard.sh
fi
if [ "${LAB_BROWSER:-1}" = 1 ]; then
  scripts/browser.sh
fi

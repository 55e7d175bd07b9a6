#!/usr/bin/env bash
# Checks `lab serve` in a real browser: Debian's headless Chromium (installed here when missing),
# driven over the DevTools protocol by scripts/browser_check.py. Trains the miniature default sweep
# of notebooks/ci/ into a temporary results root with one run's status parked (so it shows as
# unfinished), serves it, and checks each tab: no console errors, the runs table's rows, one curve
# per run, the fit's tables, every figure, the parked run appearing as done without a reload once
# its status returns, and screenshots that are not blank (left in $LAB_BROWSER_OUT when set).
#
#   scripts/browser.sh            (LAB_BIN: the lab binary, default the dev build)
set -euo pipefail
cd "$(dirname "$0")/.."
chrome=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$chrome" ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "installing Debian's chromium for the browser check"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
  chrome=$(command -v chromium)
fi
venv=${LAB_CHECKS_VENV:-.venv-checks}
source scripts/venv.sh
make_venv "$venv" scripts/checks-requirements.txt
lab_bin
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
"$LAB_BIN" sweep notebooks/ci/chinchilla.yaml --results "$work/results" >"$work/sweep.log" 2>&1 ||
  { cat "$work/sweep.log"; exit 1; }
run=$(ls "$work/results/chinchilla/runs" | head -1)
status="$work/results/chinchilla/runs/$run/status.json"
mv "$status" "$work/parked-status.json"
"$LAB_BIN" serve "$work/results" --port 0 >"$work/serve.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do grep -q "http://" "$work/serve.log" && break; sleep 0.1; done
addr=$(grep -o "127.0.0.1:[0-9]*" "$work/serve.log" | head -1)
# Port 0: Chromium picks a free port and prints it ("DevTools listening on ws://127.0.0.1:PORT/...").
"$chrome" --headless=new --no-sandbox --disable-gpu --no-first-run --disable-extensions \
  --remote-debugging-port=0 --user-data-dir="$work/profile" about:blank >"$work/chrome.log" 2>&1 &
pids+=($!)
for _ in $(seq 200); do grep -q "DevTools listening on" "$work/chrome.log" && break; sleep 0.1; done
port=$(grep -o "DevTools listening on ws://127.0.0.1:[0-9]*" "$work/chrome.log" | grep -o "[0-9]*$" || true)
[ -n "$port" ] || { cat "$work/chrome.log"; echo "browser: Chromium did not start" >&2; exit 1; }
out=${LAB_BROWSER_OUT:-$work/shots}
mkdir -p "$out"
"$venv/bin/python" scripts/browser_check.py "$addr" "$work/results" chinchilla \
  "$work/parked-status.json" "$status" "$port" "$out"

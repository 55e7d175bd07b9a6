#!/usr/bin/env bash
# Checks `lab export --tensorboard` with TensorBoard's own reader: trains two miniature sweeps of
# notebooks/ci/ (an MoE one, for the load figures, and one with tasks, for the task metrics) into a
# temporary results root, exports them, and reads every event file back with TensorBoard's
# EventAccumulator: each run's scalars must equal its curve.parquet and evals.parquet (as f32, the
# precision TensorBoard stores), step for step.
#
#   scripts/tensorboard.sh            (LAB_BIN: the lab binary, default the dev build)
#
# The pinned Python dependencies (scripts/checks-requirements.txt) go into $LAB_CHECKS_VENV
# (default .venv-checks).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${LAB_CHECKS_VENV:-.venv-checks}
source scripts/venv.sh
make_venv "$venv" scripts/checks-requirements.txt
lab_bin
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for sweep in moe-granularity emergence-recall; do
  "$LAB_BIN" sweep "notebooks/ci/$sweep.yaml" --results "$work/results" >"$work/sweep.log" 2>&1 ||
    { cat "$work/sweep.log"; exit 1; }
  "$LAB_BIN" export "$work/results/$sweep" --tensorboard "$work/tb/$sweep"
done
"$venv/bin/python" - "$work" <<'PY'
import math, os, sys
import polars as pl
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

work = sys.argv[1]
TAGS = {"train_loss": "loss/train", "val_loss": "loss/val", "lr": "optim/lr",
        "grad_norm": "optim/grad_norm", "max_mean_expert_load": "moe/max_mean_expert_load",
        "dropped_fraction": "moe/dropped_fraction", "expert_load_cv": "moe/expert_load_cv",
        "router_bias_mean_abs": "moe/router_bias_mean_abs"}

def f32(v):
    import struct
    return struct.unpack("<f", struct.pack("<f", v))[0]

checked, tags_seen = 0, set()
for sweep in ("moe-granularity", "emergence-recall"):
    tb = os.path.join(work, "tb", sweep)
    runs = sorted(os.listdir(tb))
    done = [r for r in os.listdir(os.path.join(work, "results", sweep, "runs"))
            if os.path.exists(os.path.join(work, "results", sweep, "runs", r, "curve.parquet"))]
    assert len(runs) == len(done) > 0, (sweep, len(runs), len(done))
    for name in runs:
        run_id = name.split(" ")[-1]
        acc = EventAccumulator(os.path.join(tb, name), size_guidance={"scalars": 0})
        acc.Reload()
        rundir = os.path.join(work, "results", sweep, "runs", run_id)
        expected = {}
        curve = pl.read_parquet(os.path.join(rundir, "curve.parquet"))
        for col, tag in TAGS.items():
            if col in curve.columns:
                pts = [(s, v) for s, v in zip(curve["step"], curve[col]) if v is not None]
                if pts:
                    expected[tag] = pts
        evals = os.path.join(rundir, "evals.parquet")
        if os.path.exists(evals):
            ev = pl.read_parquet(evals)
            for s, t, m, v in zip(ev["step"], ev["task"], ev["metric"], ev["value"]):
                expected.setdefault(f"tasks/{t}/{m}", []).append((s, v))
        got_tags = set(acc.Tags()["scalars"])
        assert got_tags == set(expected), (name, sorted(got_tags ^ set(expected)))
        for tag, pts in expected.items():
            got = [(e.step, e.value) for e in acc.Scalars(tag)]
            want = [(s, f32(v)) for s, v in pts]
            assert len(got) == len(want), (name, tag, len(got), len(want))
            for (gs, gv), (ws, wv) in zip(got, want):
                assert gs == ws and (gv == wv or (math.isnan(gv) and math.isnan(wv))), (name, tag, gs, gv, ws, wv)
            checked += len(got)
            tags_seen.add(tag.split("/")[0] + "/" + (tag.split("/")[1] if not tag.startswith("tasks/") else "*"))
for needed in ("loss/val", "loss/train", "optim/lr", "optim/grad_norm", "moe/max_mean_expert_load", "tasks/*"):
    assert needed in tags_seen, (needed, sorted(tags_seen))
print(f"tensorboard: {checked} scalars read back with TensorBoard's EventAccumulator, equal to the Parquet files")
PY

//! `lab export --tensorboard`: a results folder's curves as TensorBoard scalars, one TensorBoard run
//! per lab run, so users who live in TensorBoard can watch and compare sweeps there. Read from each
//! run's own curve.parquet and evals.parquet, so a sweep still running exports what it has.

use crate::collect::{find_runs, FoundRun};
use crate::error::{LabError, LabResult};
use crate::results::write_atomic;
use crate::table::{numbers, read_frame, strings};
use crate::tfevents::{scalar_event, version_event, write_record};
use std::path::{Path, PathBuf};

/// Curve columns and the TensorBoard tags they are written under (null values are skipped, and a
/// column older runs lack is left out).
pub const CURVE_TAGS: [(&str, &str); 8] = [
    ("train_loss", "loss/train"),
    ("val_loss", "loss/val"),
    ("lr", "optim/lr"),
    ("grad_norm", "optim/grad_norm"),
    ("max_mean_expert_load", "moe/max_mean_expert_load"),
    ("dropped_fraction", "moe/dropped_fraction"),
    ("expert_load_cv", "moe/expert_load_cv"),
    ("router_bias_mean_abs", "moe/router_bias_mean_abs"),
];

/// What one export wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Exported {
    /// TensorBoard runs (lab runs with at least one evaluation).
    pub runs: usize,
    /// Scalar events over all of them.
    pub scalars: usize,
}

/// The TensorBoard run name of a lab run: what the sweep axes set (without the `model.` and
/// `train.` prefixes), its budget and seed, and the id that keeps names unique. Characters a folder
/// name cannot hold become `_`.
pub fn run_name(run: &FoundRun) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(p) = &run.plan {
        let axes = p.label.replace("model.", "").replace("train.", "");
        if !axes.is_empty() {
            parts.push(axes);
        }
        if let Some(b) = p.budget {
            parts.push(format!("C={b:.0e}"));
        }
    }
    if let Some(c) = &run.cfg {
        parts.push(format!("seed={}", c.train.seed));
    }
    parts.push(run.id.clone());
    parts
        .join(" ")
        .chars()
        .map(|c| {
            if c == '/' || c == '\\' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// Every scalar of one run as (step, tag, value), curves then task metrics, in file order.
fn scalars(run: &FoundRun) -> LabResult<Vec<(u64, String, f64)>> {
    let mut out = Vec::new();
    let curve = run.dir.curve();
    if curve.exists() {
        let df = read_frame(&curve)?;
        let steps = numbers(&df, "step", &curve)?;
        for (column, tag) in CURVE_TAGS {
            if df.column(column).is_err() {
                continue;
            }
            for (s, v) in steps.iter().zip(numbers(&df, column, &curve)?) {
                if let (Some(s), Some(v)) = (s, v) {
                    out.push((*s as u64, tag.to_string(), v));
                }
            }
        }
    }
    let evals = run.dir.evals();
    if evals.exists() {
        let df = read_frame(&evals)?;
        let steps = numbers(&df, "step", &evals)?;
        let tasks = strings(&df, "task", &evals)?;
        let metrics = strings(&df, "metric", &evals)?;
        let values = numbers(&df, "value", &evals)?;
        for (((s, t), m), v) in steps.iter().zip(&tasks).zip(&metrics).zip(values) {
            if let (Some(s), Some(v)) = (s, v) {
                out.push((*s as u64, format!("tasks/{t}/{m}"), v));
            }
        }
    }
    Ok(out)
}

/// Wall time of each step: the run's training time spread evenly over its steps, ending when
/// status.json was last written (TensorBoard's "relative" axis then shows training time).
fn clock(run: &FoundRun) -> impl Fn(u64) -> f64 {
    let (wall, steps) = run
        .status
        .as_ref()
        .map_or((0.0, 1), |s| (s.wall_seconds, s.step.max(1)));
    let end = std::fs::metadata(run.dir.status())
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(wall, |d| d.as_secs_f64());
    let start = end - wall;
    move |step| start + wall * step as f64 / steps as f64
}

/// Writes `<out>/<run name>/events.out.tfevents.0.lab` for every run of `results` with curves;
/// a rerun rewrites them (each file is replaced whole, never appended to).
pub fn tensorboard(results: &Path, out: &Path) -> LabResult<Exported> {
    let runs = find_runs(results)?;
    std::fs::create_dir_all(out)
        .map_err(|e| LabError::input(out, None, format!("cannot create the export folder: {e}")))?;
    let mut done = Exported::default();
    for run in &runs {
        let points = scalars(run)?;
        if points.is_empty() {
            continue;
        }
        let at = clock(run);
        let mut bytes = Vec::new();
        write_record(&mut bytes, &version_event(at(0)))?;
        for (step, tag, value) in &points {
            write_record(
                &mut bytes,
                &scalar_event(at(*step), *step as i64, tag, *value),
            )?;
        }
        let dir: PathBuf = out.join(run_name(run));
        std::fs::create_dir_all(&dir)?;
        write_atomic(&dir.join("events.out.tfevents.0.lab"), &bytes)?;
        done.runs += 1;
        done.scalars += points.len();
    }
    Ok(done)
}

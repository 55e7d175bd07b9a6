//! The per-run results folder: run.yaml, status.json, curve.parquet, ckpt/. Every file is written
//! atomically (temporary file, then rename).

use crate::error::LabResult;
use anyhow::Context;
use models::Accounting;
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = tmp_path(path);
    {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)
}

/// Writes an analysis as `<out>/<stem>.json` (`value`, pretty) and `<out>/<stem>.md` (`markdown`),
/// each atomically, creating `out`.
pub fn write_report<T: Serialize>(
    out: &Path,
    stem: &str,
    value: &T,
    markdown: &str,
) -> LabResult<()> {
    fs::create_dir_all(out)?;
    let json =
        serde_json::to_vec_pretty(value).with_context(|| format!("serialising {stem}.json"))?;
    write_atomic(&out.join(format!("{stem}.json")), &json)?;
    write_atomic(&out.join(format!("{stem}.md")), markdown.as_bytes())?;
    Ok(())
}

/// A temporary sibling of `path`, unique to this process.
pub fn tmp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// Writes a data frame to a Parquet file atomically.
pub fn write_parquet(path: &Path, df: &mut DataFrame) -> LabResult<()> {
    let tmp = tmp_path(path);
    let file = fs::File::create(&tmp)?;
    ParquetWriter::new(file)
        .finish(df)
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    fs::rename(&tmp, path)?;
    Ok(())
}

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Trained to the end.
    Done,
    /// Ended by an error.
    Failed,
    /// Loss became NaN or infinite.
    Diverged,
    /// In progress, or interrupted and resumable from its checkpoint.
    Running,
}

impl Status {
    /// Lower-case name as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Done => "done",
            Status::Failed => "failed",
            Status::Diverged => "diverged",
            Status::Running => "running",
        }
    }
}

/// status.json: the run's state and, once done, its summary figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunStatus {
    /// Run id (config hash).
    pub id: String,
    /// State.
    pub status: Status,
    /// Why it failed, diverged or stopped.
    pub reason: Option<String>,
    /// Optimizer steps taken.
    pub step: u64,
    /// Steps planned.
    pub steps: u64,
    /// Tokens consumed by the optimizer.
    pub tokens: u64,
    /// Tokens that carried loss.
    pub loss_tokens: u64,
    /// flops_per_token x tokens.
    pub compute: f64,
    /// 6 N D with N the non-embedding parameters.
    pub compute_6nd: f64,
    /// Mean training loss over the last evaluation interval.
    pub final_train_loss: Option<f64>,
    /// Validation loss at the end.
    pub final_val_loss: Option<f64>,
    /// Lowest validation loss seen.
    pub best_val_loss: Option<f64>,
    /// Entropy rate of the corpus when known (the irreducible loss).
    pub entropy_floor: Option<f64>,
    /// Distinct training tokens the corpus holds (a text corpus's training split; `None` for the
    /// synthetic stream, which never repeats): with `tokens`, the epochs a data-constrained law
    /// needs. Absent from runs trained before it was recorded.
    #[serde(default)]
    pub unique_tokens: Option<u64>,
    /// Wall time spent training, over all attempts.
    pub wall_seconds: f64,
    /// Training throughput of the last attempt.
    pub tokens_per_second: f64,
    /// Backend name.
    pub backend: String,
    /// Device description.
    pub device: String,
    /// lab version.
    pub lab_version: String,
    /// Exact accounting of the model.
    pub accounting: Accounting,
}

impl RunStatus {
    /// The status of a run that has not trained yet.
    pub fn start(id: String, steps: u64, backend: &str, accounting: Accounting) -> Self {
        RunStatus {
            id,
            status: Status::Running,
            reason: None,
            step: 0,
            steps,
            tokens: 0,
            loss_tokens: 0,
            compute: 0.0,
            compute_6nd: 0.0,
            final_train_loss: None,
            final_val_loss: None,
            best_val_loss: None,
            entropy_floor: None,
            unique_tokens: None,
            wall_seconds: 0.0,
            tokens_per_second: 0.0,
            backend: backend.into(),
            device: String::new(),
            lab_version: env!("CARGO_PKG_VERSION").into(),
            accounting,
        }
    }

    /// Records how far training got: steps, tokens and the compute they cost, and wall time.
    pub fn record_progress(&mut self, step: u64, tokens: u64, loss_tokens: u64, wall_seconds: f64) {
        self.step = step;
        self.tokens = tokens;
        self.loss_tokens = loss_tokens;
        self.compute = self.accounting.flops_per_token as f64 * tokens as f64;
        self.compute_6nd = self.accounting.flops_6n as f64 * tokens as f64;
        self.wall_seconds = wall_seconds;
    }
}

/// One curve row (every evaluation point).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurveRow {
    /// Optimizer step (1-based: steps taken).
    pub step: u64,
    /// Tokens consumed.
    pub tokens: u64,
    /// Compute spent (FLOPs).
    pub compute: f64,
    /// Mean training loss since the previous evaluation.
    pub train_loss: f64,
    /// Validation loss.
    pub val_loss: f64,
    /// Learning rate of the last step.
    pub lr: f64,
    /// Gradient norm (before clipping) of the last step.
    pub grad_norm: f64,
    /// MoE: largest expert load / mean expert load (null for dense models).
    pub max_mean_expert_load: Option<f64>,
    /// MoE: fraction of tokens dropped by capacity limits (null for dense models).
    pub dropped_fraction: Option<f64>,
    /// MoE: coefficient of variation of the expert loads, averaged over layers (null for dense).
    #[serde(default)]
    pub expert_load_cv: Option<f64>,
    /// MoE with bias balancing: mean |b_i| of the selection biases (null otherwise).
    #[serde(default)]
    pub router_bias_mean_abs: Option<f64>,
}

/// Builds the curve data frame of a run.
pub fn curve_frame(id: &str, rows: &[CurveRow]) -> LabResult<DataFrame> {
    let col_u64 = |f: fn(&CurveRow) -> u64| rows.iter().map(f).collect::<Vec<u64>>();
    let col_f64 = |f: fn(&CurveRow) -> f64| rows.iter().map(f).collect::<Vec<f64>>();
    let col_opt =
        |f: fn(&CurveRow) -> Option<f64>| rows.iter().map(f).collect::<Vec<Option<f64>>>();
    let df = df!(
        "id" => vec![id.to_string(); rows.len()],
        "step" => col_u64(|r| r.step),
        "tokens" => col_u64(|r| r.tokens),
        "compute" => col_f64(|r| r.compute),
        "train_loss" => col_f64(|r| r.train_loss),
        "val_loss" => col_f64(|r| r.val_loss),
        "lr" => col_f64(|r| r.lr),
        "grad_norm" => col_f64(|r| r.grad_norm),
        "max_mean_expert_load" => col_opt(|r| r.max_mean_expert_load),
        "dropped_fraction" => col_opt(|r| r.dropped_fraction),
        "expert_load_cv" => col_opt(|r| r.expert_load_cv),
        "router_bias_mean_abs" => col_opt(|r| r.router_bias_mean_abs),
    )
    .map_err(|e| anyhow::anyhow!("building curve table: {e}"))?;
    Ok(df)
}

/// One task metric at one evaluation (a row of evals.parquet).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalRow {
    /// Optimizer step.
    pub step: u64,
    /// Tokens consumed.
    pub tokens: u64,
    /// Compute spent (FLOPs).
    pub compute: f64,
    /// Task name.
    pub task: String,
    /// Metric name.
    pub metric: String,
    /// Value.
    pub value: f64,
    /// Examples evaluated.
    pub n_examples: u64,
    /// Lower end of the 95% Wilson interval (proportions only).
    pub ci_lo: Option<f64>,
    /// Upper end of the 95% Wilson interval (proportions only).
    pub ci_hi: Option<f64>,
}

/// Builds the evals data frame of a run (the schema of evals.parquet).
pub fn eval_frame(id: &str, rows: &[EvalRow]) -> LabResult<DataFrame> {
    let df = df!(
        "id" => vec![id.to_string(); rows.len()],
        "step" => rows.iter().map(|r| r.step).collect::<Vec<u64>>(),
        "tokens" => rows.iter().map(|r| r.tokens).collect::<Vec<u64>>(),
        "compute" => rows.iter().map(|r| r.compute).collect::<Vec<f64>>(),
        "task" => rows.iter().map(|r| r.task.clone()).collect::<Vec<String>>(),
        "metric" => rows.iter().map(|r| r.metric.clone()).collect::<Vec<String>>(),
        "value" => rows.iter().map(|r| r.value).collect::<Vec<f64>>(),
        "n_examples" => rows.iter().map(|r| r.n_examples).collect::<Vec<u64>>(),
        "ci_lo" => rows.iter().map(|r| r.ci_lo).collect::<Vec<Option<f64>>>(),
        "ci_hi" => rows.iter().map(|r| r.ci_hi).collect::<Vec<Option<f64>>>(),
    )
    .map_err(|e| anyhow::anyhow!("building evals table: {e}"))?;
    Ok(df)
}

/// Paths inside one run's folder.
#[derive(Debug, Clone)]
pub struct RunDir(pub PathBuf);

impl RunDir {
    /// run.yaml.
    pub fn config(&self) -> PathBuf {
        self.0.join("run.yaml")
    }
    /// status.json.
    pub fn status(&self) -> PathBuf {
        self.0.join("status.json")
    }
    /// evals.parquet (task metrics; runs with tasks only).
    pub fn evals(&self) -> PathBuf {
        self.0.join("evals.parquet")
    }

    /// curve.parquet.
    pub fn curve(&self) -> PathBuf {
        self.0.join("curve.parquet")
    }
    /// ckpt/.
    pub fn ckpt(&self) -> PathBuf {
        self.0.join("ckpt")
    }

    /// Reads status.json, if present.
    pub fn read_status(&self) -> LabResult<Option<RunStatus>> {
        match fs::read(self.status()) {
            Ok(b) => {
                Ok(Some(serde_json::from_slice(&b).with_context(|| {
                    format!("reading {}", self.status().display())
                })?))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes status.json atomically.
    pub fn write_status(&self, s: &RunStatus) -> LabResult<()> {
        write_atomic(
            &self.status(),
            &serde_json::to_vec_pretty(s).context("serialising status")?,
        )?;
        Ok(())
    }
}

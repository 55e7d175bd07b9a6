//! `lab collect` and `lab runs`.

use crate::collect::{collect, find_runs};
use crate::error::LabResult;
use clap::Args;
use std::path::PathBuf;

/// Arguments of `lab collect`.
#[derive(Args)]
#[command(after_help = "Example:
  lab collect results/chinchilla     writes runs.parquet, curves.parquet, evals.parquet")]
pub struct CollectArgs {
    /// A sweep's results folder.
    pub dir: PathBuf,
}

/// Runs `lab collect`.
pub fn run_collect(a: CollectArgs) -> LabResult<i32> {
    let c = collect(&a.dir)?;
    println!(
        "{}: {} done, {} failed or diverged, {} running, {} not started -> runs.parquet, curves.parquet, evals.parquet",
        a.dir.display(),
        c.done,
        c.failed,
        c.running,
        c.pending
    );
    Ok(0)
}

/// Arguments of `lab runs`.
#[derive(Args)]
#[command(after_help = "Example:
  lab runs results/chinchilla")]
pub struct RunsArgs {
    /// A sweep's results folder.
    pub dir: PathBuf,
}

/// Runs `lab runs`.
pub fn run_runs(a: RunsArgs) -> LabResult<i32> {
    println!(
        "{:<13} {:<9} {:>13} {:>9}  axes / reason",
        "id", "status", "steps", "val loss"
    );
    for r in find_runs(&a.dir)? {
        let (status, steps, loss, reason) = match &r.status {
            Some(s) => (
                s.status.as_str().to_string(),
                format!("{}/{}", s.step, s.steps),
                s.final_val_loss
                    .map(|v| format!("{v:.4}"))
                    .unwrap_or_else(|| "-".into()),
                s.reason.clone().unwrap_or_default(),
            ),
            None => ("pending".into(), "-".into(), "-".into(), String::new()),
        };
        let label = r.plan.as_ref().map(|p| p.label.clone()).unwrap_or_default();
        println!(
            "{:<13} {:<9} {:>13} {:>9}  {label} {reason}",
            r.id, status, steps, loss
        );
    }
    Ok(0)
}

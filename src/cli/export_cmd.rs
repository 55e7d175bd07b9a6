//! `lab export`: a results folder in other tools' formats.

use crate::error::{LabError, LabResult};
use crate::export::tensorboard;
use clap::Args;
use std::path::PathBuf;

/// Arguments of `lab export`.
#[derive(Args)]
#[command(after_help = "Example:
  lab export results/chinchilla --tensorboard tb/chinchilla
  tensorboard --logdir tb                        then open http://localhost:6006

One TensorBoard run per lab run (named by its sweep axes, budget, seed and id), with the scalars
loss/train, loss/val, optim/lr, optim/grad_norm, the MoE load figures (moe/...) and the task
metrics (tasks/<task>/<metric>) against the optimizer step. Reads each run's own files, so a sweep
that is still training exports what it has; rerun to refresh.")]
pub struct ExportArgs {
    /// A sweep's results folder.
    pub dir: PathBuf,
    /// Folder to write TensorBoard event files into (one subfolder per run).
    #[arg(long, value_name = "DIR")]
    pub tensorboard: Option<PathBuf>,
}

/// Runs `lab export`.
pub fn run(a: ExportArgs) -> LabResult<i32> {
    let Some(out) = a.tensorboard else {
        return Err(LabError::input(
            "--tensorboard",
            None,
            "name a format to export to (--tensorboard DIR)",
        ));
    };
    let done = tensorboard(&a.dir, &out)?;
    println!(
        "{}: {} runs, {} scalars -> {} (tensorboard --logdir {})",
        a.dir.display(),
        done.runs,
        done.scalars,
        out.display(),
        out.display()
    );
    Ok(0)
}

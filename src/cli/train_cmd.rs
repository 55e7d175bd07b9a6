//! `lab train`: one run.

use crate::config::load_run;
use crate::error::LabResult;
use crate::results::Status;
use crate::train::{train, TrainOptions};
use clap::Args;
use std::path::PathBuf;

/// Arguments of `lab train`.
#[derive(Args)]
#[command(after_help = "Examples:
  lab train sweeps/run-s.yaml
  lab train sweeps/run-s.yaml --set train.lr=1e-3 --set model.n_layer=6 --out results/try/lr1e-3
  lab train sweeps/run-s.yaml --resume        continue an interrupted run from its checkpoint
  lab train bench/parity/dense.yaml --out /tmp/p --trace /tmp/p/trace
                                              record every step; then
                                              python3 bench/torch_parity.py /tmp/p/trace

Exit codes: 0 done, 1 failure, 2 bad input, 3 diverged, 130 interrupted (resumable).")]
pub struct TrainArgs {
    /// Run YAML (model, data, train sections).
    pub config: PathBuf,
    /// Override a key, e.g. --set train.lr=1e-3 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Compute backend: auto (a hardware GPU when there is one, else the CPU), flex, ndarray, wgpu
    /// or cuda, as compiled in (see `lab backends`).
    #[arg(long, default_value = "auto")]
    pub backend: String,
    /// GPU index for GPU backends.
    #[arg(long, default_value_t = 0)]
    pub device: usize,
    /// Results folder of the run (default results/<name>/runs/<id>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue from the checkpoint in the results folder.
    #[arg(long)]
    pub resume: bool,
    /// Stop (with a checkpoint) after this many steps, as if interrupted.
    #[arg(long, hide = true)]
    pub max_steps: Option<u64>,
    /// Record the run step by step into this folder (config, initial and final parameters as
    /// safetensors, each step's tokens, learning rate, loss and gradient norm), for
    /// `bench/torch_parity.py` to replay in PyTorch. A fresh run only.
    #[arg(long, value_name = "DIR")]
    pub trace: Option<PathBuf>,
}

/// Runs `lab train`.
pub fn run(mut a: TrainArgs) -> LabResult<i32> {
    a.backend = crate::backend::resolve(&a.backend);
    let cfg = load_run(&a.config, &a.set)?;
    let out = a.out.unwrap_or_else(|| {
        PathBuf::from("results")
            .join(&cfg.name)
            .join("runs")
            .join(cfg.id())
    });
    let stop = super::stop_on_signals()?;
    let opts = TrainOptions {
        backend: a.backend,
        device_index: a.device,
        out: out.clone(),
        resume: a.resume,
        config_file: a.config.clone(),
        progress: super::progress_bar(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} steps {msg} ({per_sec}, eta {eta})",
        ),
        stop,
        max_steps_this_attempt: a.max_steps,
        trace: a.trace,
    };
    let s = train(&cfg, &opts)?;
    let loss = |v: Option<f64>| v.map(|x| format!("{x:.4}")).unwrap_or_else(|| "-".into());
    println!(
        "{} {}: step {}/{} tokens {} val loss {} (best {}, floor {}) {:.0} tokens/s, {:.1} s -> {}",
        s.id,
        s.status.as_str(),
        s.step,
        s.steps,
        s.tokens,
        loss(s.final_val_loss),
        loss(s.best_val_loss),
        loss(s.entropy_floor),
        s.tokens_per_second,
        s.wall_seconds,
        out.display()
    );
    Ok(match s.status {
        Status::Done => 0,
        Status::Diverged => {
            eprintln!("diverged: {}", s.reason.unwrap_or_default());
            3
        }
        Status::Running => {
            eprintln!("{}", s.reason.unwrap_or_default());
            130
        }
        Status::Failed => 1,
    })
}

//! Command-line interface: one module per verb.

mod collect_cmd;
mod export_cmd;
mod fit_cmd;
mod models_cmd;
pub mod plot_cmd;
mod serve_cmd;
mod sweep_cmd;
mod train_cmd;
mod tune_cmd;

use crate::error::LabError;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

const EXAMPLES: &str = "Examples:
  lab sweep sweeps/chinchilla.yaml             train a grid, collect, fit (the main job; rerun to resume)
  lab plan sweeps/chinchilla.yaml              the runs a sweep expands to, with a time estimate
  lab tune sweeps/chinchilla.yaml              calibrate the sweep's learning-rate rule on its shapes
  lab train sweeps/run-s.yaml                  train one run on the built-in synthetic corpus
  lab models sweeps/run-s.yaml                 parameter and FLOP accounting, no training
  lab fit ../shared/data/public-scaling-runs/chinchilla_epoch_svg_extracted.csv \\
      --n 'Model Size' --c 'Training FLOP' --drop-highest 5 --approach 3
  lab plot results/chinchilla                  figures (PNG + SVG) in results/chinchilla/plots
  lab report results/chinchilla                figures and report.md
  lab export results/chinchilla --tensorboard tb   TensorBoard event files of every run
  lab serve                                    browse results/ at http://127.0.0.1:8080/ (live)
  lab plot --compare results/a results/b       overlay two sweeps' frontiers, with the compute multiplier
  lab bench --model M                          training throughput against the machine's peak
  lab backends                                 backends compiled into this binary";

/// lab: a scaling-law and mixture-of-experts architecture laboratory.
#[derive(Parser)]
#[command(name = "lab", about, after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Train every run of a sweep YAML, collect the results and fit scaling laws.
    Sweep(sweep_cmd::SweepArgs),
    /// Calibrate a sweep's learning-rate rule: each shape at a grid of learning rates, the best per
    /// size, and the power law through them.
    Tune(tune_cmd::TuneArgs),
    /// Show the runs a sweep expands to, with N, D, C and an estimated wall time.
    Plan(sweep_cmd::PlanArgs),
    /// Aggregate a sweep's runs into runs.parquet, curves.parquet and evals.parquet.
    Collect(collect_cmd::CollectArgs),
    /// List a sweep's runs and their status.
    Runs(collect_cmd::RunsArgs),
    /// Train one run described by a run YAML.
    Train(train_cmd::TrainArgs),
    /// Print a run's parameter and FLOP accounting without training.
    Models(models_cmd::ModelsArgs),
    /// Fit scaling laws to a lab results folder or a CSV/Parquet table.
    Fit(Box<fit_cmd::FitArgs>),
    /// Draw the figures of a results folder or fit (PNG, SVG), or overlay several with --compare.
    Plot(plot_cmd::PlotArgs),
    /// Draw every figure and write report.md for a results folder.
    Report(plot_cmd::ReportArgs),
    /// Browse every results folder under a root in the web browser, live while sweeps run.
    Serve(serve_cmd::ServeArgs),
    /// Write a results folder's curves in another tool's format (TensorBoard event files).
    Export(export_cmd::ExportArgs),
    /// Measure training throughput on the standard shapes S and M.
    Bench(crate::bench::BenchArgs),
    /// List the compute backends compiled into this binary and the devices each one sees.
    Backends,
}

/// A flag that SIGINT and SIGTERM set: the executors stop launching runs and let the running ones
/// checkpoint.
pub(crate) fn stop_on_signals() -> crate::error::LabResult<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())?;
    }
    Ok(stop)
}

/// A progress bar with the given template, drawn only on a terminal.
pub fn progress_bar(template: &str) -> ProgressBar {
    let pb = ProgressBar::new(0);
    if !std::io::stderr().is_terminal() {
        pb.set_draw_target(ProgressDrawTarget::hidden());
    }
    pb.set_style(
        ProgressStyle::with_template(template)
            .expect("valid template")
            .progress_chars("=> "),
    );
    pb
}

/// Whether `args` (the words after `lab`) parse as a command line of this binary: the check the
/// docs' example commands go through in the tests. Parses only; runs nothing.
pub fn parses(args: &[String]) -> Result<(), String> {
    let argv = std::iter::once("lab".to_string()).chain(args.iter().cloned());
    Cli::try_parse_from(argv)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The example command lines of `lab --help` and of every verb's `--help` (each as written after
/// "lab ", continuation lines joined), so the tests can check that each one parses.
pub fn help_examples() -> Vec<String> {
    let root = Cli::command();
    let mut texts: Vec<String> = vec![EXAMPLES.to_string()];
    for sub in root.get_subcommands() {
        if let Some(h) = sub.get_after_help() {
            texts.push(h.to_string());
        }
    }
    let mut out = Vec::new();
    for text in texts {
        let mut pending: Option<String> = None;
        for line in text.lines() {
            let t = line.trim();
            if let Some(mut cmd) = pending.take() {
                cmd.push(' ');
                cmd.push_str(t.trim_end_matches('\\').trim());
                if t.ends_with('\\') {
                    pending = Some(cmd);
                } else {
                    out.push(cmd);
                }
                continue;
            }
            if let Some(rest) = t.strip_prefix("lab ") {
                // An example is the command, then two or more spaces and what it does.
                let cmd = rest.split("  ").next().unwrap_or(rest).trim();
                if t.ends_with('\\') {
                    pending = Some(cmd.trim_end_matches('\\').trim().to_string());
                } else {
                    out.push(cmd.to_string());
                }
            }
        }
    }
    out
}

pub fn main() -> i32 {
    let version = format!(
        "{} (backends: {})",
        env!("CARGO_PKG_VERSION"),
        crate::backend::compiled().join(", ")
    );
    let cmd = Cli::command().version(&*Box::leak(version.into_boxed_str()));
    let matches = cmd.get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    let result = match cli.cmd {
        Cmd::Sweep(a) => sweep_cmd::run_sweep(a),
        Cmd::Plan(a) => sweep_cmd::run_plan(a),
        Cmd::Tune(a) => tune_cmd::run(a),
        Cmd::Collect(a) => collect_cmd::run_collect(a),
        Cmd::Runs(a) => collect_cmd::run_runs(a),
        Cmd::Train(a) => train_cmd::run(a),
        Cmd::Models(a) => models_cmd::run(a),
        Cmd::Fit(a) => fit_cmd::run(*a),
        Cmd::Plot(a) => plot_cmd::run_plot(a),
        Cmd::Report(a) => plot_cmd::run_report(a),
        Cmd::Export(a) => export_cmd::run(a),
        Cmd::Serve(a) => serve_cmd::run(a),
        Cmd::Bench(a) => crate::bench::run(a),
        Cmd::Backends => {
            println!("auto -> {}", crate::backend::resolve("auto"));
            for name in crate::backend::compiled() {
                println!("{name}");
                for line in crate::backend::list_devices(name) {
                    println!("  {line}");
                }
            }
            Ok(0)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            if let LabError::Other(inner) = &e {
                for cause in inner.chain().skip(1) {
                    eprintln!("  caused by: {cause}");
                }
            }
            e.exit_code()
        }
    }
}

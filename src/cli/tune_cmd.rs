//! `lab tune`: calibrate a sweep's learning-rate rule on its own shapes and data.

use super::stop_on_signals;
use super::sweep_cmd::jobs;
use crate::backend;
use crate::error::{LabError, LabResult};
use crate::fitreport::sci;
use crate::results::write_atomic;
use crate::sweep::executor::{execute, lock_results, sweep_dir, ExecOptions};
use crate::sweep::spec::load;
use crate::sweep::tune::{plan, scans, ShapeScan};
use clap::Args;
use fit::lr_rule::{calibrate, LrCalibration, OptimumKind, RuleForm};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

/// Arguments of `lab tune`.
#[derive(Args)]
#[command(after_help = "Examples:
  lab tune sweeps/chinchilla.yaml                  5 learning rates (x1/4 .. x4 the sweep's) per shape
  lab tune sweeps/chinchilla.yaml --factors 0.5,0.7,1,1.4,2 --jobs 2
                                                   a finer grid once the rule is close
  lab tune sweeps/chinchilla.yaml --factors 0.5,0.7,1,1.4,2 --every-budget
                                                   every shape at every budget: a rule in N and D

Each shape of the sweep is trained at its median isoFLOP budget (other sweeps: every run) with the
sweep's learning rate (after its rules) times each factor. The best rate of each shape is the vertex
of a parabola in ln(lr) through the best point and its neighbours; a power law lr* = c (N / N0)^p is
fitted through the shapes whose optimum the grid brackets, its level c set where following it costs
the scans least (their losses interpolated in ln lr: losses rise faster above the best rate than
below it), and printed as the line to put under the sweep's `rules:`. With --every-budget each
shape is scanned at every budget it trains at and the rule is lr* = c (N / N0)^p (D / D0)^q: the
best rate falls with the tokens as well as the size.
Results: results/<name>-tune/{runs/, tune.json, tune.md}; rerun to resume (runs the two modes share
are reused).")]
pub struct TuneArgs {
    /// Sweep YAML whose shapes (and rules) to calibrate.
    pub sweep: PathBuf,
    /// Multiples of the sweep's learning rate to try.
    #[arg(long, value_delimiter = ',', default_value = "0.25,0.5,1,2,4")]
    pub factors: Vec<f64>,
    /// Scan every shape at every isoFLOP budget it trains at (first seed) instead of at its median
    /// one, and fit the rule in N and D.
    #[arg(long)]
    pub every_budget: bool,
    /// Concurrent runs (default: one per CPU core, one on a GPU).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Compute backend: auto (a hardware GPU when there is one, else the CPU), flex, ndarray, wgpu
    /// or cuda, as compiled in (see `lab backends`).
    #[arg(long, default_value = "auto")]
    pub backend: String,
    /// Results root folder.
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
}

/// What `tune.json` holds.
#[derive(Serialize)]
struct TuneFile<'a> {
    sweep: &'a str,
    factors: &'a [f64],
    shapes: &'a [ShapeScan],
    calibration: &'a LrCalibration,
    /// The rule as a sweep `rules:` expression.
    rule_expression: Option<String>,
}

/// Runs `lab tune`.
pub fn run(mut a: TuneArgs) -> LabResult<i32> {
    if a.factors.len() < 3 || a.factors.iter().any(|f| !(f.is_finite() && *f > 0.0)) {
        return Err(LabError::input(
            "--factors",
            None,
            "needs at least three positive factors (a parabola through the best and its neighbours)",
        ));
    }
    a.factors.sort_by(f64::total_cmp);
    a.factors.dedup();
    let sweep = load(&a.sweep)?;
    a.backend = backend::resolve(&a.backend);
    backend::device(&a.backend, 0)?;
    let tune = plan(&sweep, &a.factors, a.every_budget);
    let dir = sweep_dir(&a.results, &tune.plan);
    let _lock = lock_results(&dir)?;
    let stop = stop_on_signals()?;
    let opts = ExecOptions {
        jobs: jobs(a.jobs, &a.backend, &[0], 1),
        backend: a.backend.clone(),
        devices: vec![0],
        retry_failed: false,
        only: Vec::new(),
        filter: Vec::new(),
        stop: stop.clone(),
    };
    eprintln!(
        "tune {}: {} scans x {} learning rates = {} runs, {} jobs -> {}",
        sweep.spec.name,
        tune.scans.len(),
        a.factors.len(),
        tune.plan.runs.len(),
        opts.jobs,
        dir.display()
    );
    let outcomes = execute(&tune.plan, &dir, &opts)?;
    if stop.load(Ordering::SeqCst) {
        eprintln!("interrupted: rerun the same command to resume");
        return Ok(130);
    }
    let form = if a.every_budget {
        RuleForm::SizeAndTokens
    } else {
        RuleForm::Size
    };
    let cal = calibrate(&scans(&tune, &outcomes), form);
    let md = markdown(&sweep.spec.name, &tune.scans, &cal, form);
    print!("{md}");
    let file = TuneFile {
        sweep: &sweep.spec.name,
        factors: &a.factors,
        shapes: &tune.scans,
        calibration: &cal,
        rule_expression: cal.rule.as_ref().map(|r| r.expression()),
    };
    write_atomic(
        &dir.join("tune.json"),
        &serde_json::to_vec_pretty(&file).map_err(|e| anyhow::anyhow!("tune.json: {e}"))?,
    )?;
    write_atomic(&dir.join("tune.md"), md.as_bytes())?;
    println!("wrote {}", dir.join("tune.md").display());
    Ok(if cal.rule.is_some() { 0 } else { 1 })
}

/// The calibration as markdown: one row per shape, then the rule.
fn markdown(name: &str, shapes: &[ShapeScan], cal: &LrCalibration, form: RuleForm) -> String {
    let mut s = format!(
        "# Learning-rate calibration of {name}\n\n\
         | shape | N | budget | D | sweep lr | best lr | best / sweep | loss | rule's regret | optimum |\n\
         |---|---|---|---|---|---|---|---|---|---|\n"
    );
    for (shape, o) in shapes.iter().zip(&cal.optima) {
        let kind = match o.kind {
            OptimumKind::Bracketed => "bracketed",
            OptimumKind::BelowGrid => "below the grid: add smaller factors",
            OptimumKind::AboveGrid => "above the grid: add larger factors",
            OptimumKind::Undetermined => "undetermined (runs diverged or failed)",
        };
        s += &format!(
            "| {} | {} | {} | {} | {} | {} | {:.2} | {:.4} | {} | {kind} |\n",
            shape.label,
            shape.n,
            shape.budget.map(sci).unwrap_or_else(|| "-".into()),
            sci(shape.d),
            sci(shape.sweep_lr),
            sci(o.lr),
            o.lr / shape.sweep_lr,
            o.loss,
            o.rule_regret
                .map(|r| format!("{r:.4}"))
                .unwrap_or_else(|| "-".into()),
        );
    }
    match &cal.rule {
        Some(r) => {
            let se = |v: Option<f64>| v.map(|se| format!(" +- {se:.3}")).unwrap_or_default();
            let tokens = r
                .tokens
                .map(|t| {
                    format!(
                        " (D / {})^{:.3}{}",
                        sci(t.d0),
                        t.exponent,
                        se(t.exponent_se)
                    )
                })
                .unwrap_or_default();
            let level = cal
                .margin
                .map(|m| {
                    format!(
                        "\nIts level is {:.2}x the fit through the optima: there following it costs these \
                         scans least (loss at the rule's rate, interpolated between grid points, \
                         minus each scan's best: {:.4} nats on average and {:.4} at most, against \
                         {:.4} on average through the optima).\n",
                        m.factor, m.mean_regret, m.max_regret, m.mean_regret_through_optima
                    )
                })
                .unwrap_or_default();
            s += &format!(
                "\nRule through {} bracketed optima: lr* = {} (N / {})^{:.3}{}{tokens} \
                 (exponents with their standard errors)\n{level}\n\
                 Put it in the sweep file:\n\n```yaml\nrules:\n  train.lr: \"{}\"\n```\n",
                r.sizes,
                sci(r.coefficient),
                r.n0,
                r.exponent,
                se(r.exponent_se),
                r.expression()
            );
        }
        None if form == RuleForm::SizeAndTokens => {
            s += "\nNo rule: a rule in N and D needs at least three bracketed optima whose sizes and \
                  token counts vary independently; widen --factors.\n";
        }
        None => {
            s += "\nNo rule: fewer than two shapes have an optimum the grid brackets; widen --factors.\n";
        }
    }
    s
}

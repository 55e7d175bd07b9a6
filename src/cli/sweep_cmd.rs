//! `lab sweep` and `lab plan`.

use crate::backend;
use crate::bench::train_throughput;
use crate::collect::collect;
use crate::error::{LabError, LabResult};
use crate::fitreport::sci;
use crate::results::Status;
use crate::sweep::executor::{
    execute, lock_results, own_steps, sweep_dir, ExecOptions, RunOutcome,
};
use crate::sweep::slurm::{execute_slurm, SlurmOptions};
use crate::sweep::spec::{load, Plan};
use clap::Args;
use std::collections::HashMap;
use std::path::PathBuf;

/// Concurrent runs: `--jobs` if given, else `--jobs-per-device` on each of `--devices` on a GPU,
/// else one per CPU core.
pub(super) fn jobs(
    explicit: Option<usize>,
    backend: &str,
    devices: &[usize],
    per_device: usize,
) -> usize {
    explicit.unwrap_or_else(|| {
        if backend::is_gpu(backend) {
            devices.len().max(1) * per_device.max(1)
        } else {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        }
    })
}

/// Where a sweep's runs train.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Launcher {
    /// Child processes on this machine, --jobs at a time.
    Local,
    /// A Slurm job array, one task per pending run.
    Slurm,
}

/// Arguments of `lab sweep`.
#[derive(Args)]
#[command(after_help = "Examples:
  lab sweep sweeps/chinchilla.yaml                 train the grid, collect, fit (rerun to resume)
  lab sweep sweeps/chinchilla.yaml --jobs 1 --only 3fa2,91c0
  lab sweep sweeps/chinchilla.yaml --filter model.d_model=128 --retry-failed
  lab sweep sweeps/chinchilla-gpu.yaml --backend cuda --devices 0,1 --jobs-per-device 4
                                                   4 small runs at a time on each of 2 GPUs
  lab sweep sweeps/chinchilla.yaml --launcher slurm --partition gpu --time 01:00:00 \
      --gpus-per-task 1 --max-concurrent 16        one Slurm array task per run; rerun to re-attach
  lab sweep sweeps/chinchilla.yaml --launcher slurm --dry-run
                                                   print the sbatch script and the task mapping

Results: results/<name>/{plan.json, runs/<id>/, runs.parquet, curves.parquet, fit/}.
Exit codes: 0 all done, 1 some runs failed or diverged, 2 bad input, 130 interrupted (rerun resumes).")]
pub struct SweepArgs {
    /// Sweep YAML.
    pub sweep: PathBuf,
    /// Concurrent runs (default: one per CPU core, or --jobs-per-device on each GPU).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Compute backend: auto (a hardware GPU when there is one, else the CPU), flex, ndarray, wgpu
    /// or cuda, as compiled in (see `lab backends`).
    #[arg(long, default_value = "auto")]
    pub backend: String,
    /// GPU indices to spread the runs over (GPU backends; see `lab backends`).
    #[arg(long, value_delimiter = ',', default_value = "0")]
    pub devices: Vec<usize>,
    /// Concurrent runs on each GPU: small models leave a large GPU idle, several at once fill it.
    #[arg(long, default_value_t = 1)]
    pub jobs_per_device: usize,
    /// Where the runs train: local (child processes here) or slurm (one job-array task per run).
    #[arg(long, value_enum, default_value = "local")]
    pub launcher: Launcher,
    /// Slurm partition.
    #[arg(long, help_heading = "Slurm")]
    pub partition: Option<String>,
    /// Slurm time limit per task, e.g. 02:00:00.
    #[arg(long, help_heading = "Slurm")]
    pub time: Option<String>,
    /// GPUs per Slurm task.
    #[arg(long, help_heading = "Slurm")]
    pub gpus_per_task: Option<u32>,
    /// CPUs per Slurm task (also the task's thread count).
    #[arg(long, help_heading = "Slurm")]
    pub cpus_per_task: Option<u32>,
    /// Slurm tasks running at once (--array=...%K).
    #[arg(long, help_heading = "Slurm")]
    pub max_concurrent: Option<usize>,
    /// An extra #SBATCH option, e.g. --sbatch-arg=--account=abc (repeatable).
    #[arg(
        long = "sbatch-arg",
        allow_hyphen_values = true,
        help_heading = "Slurm"
    )]
    pub sbatch_arg: Vec<String>,
    /// A file of shell lines to run before `lab train` in every task (module loads, environment),
    /// after the sweep file's `slurm.setup`.
    #[arg(long, help_heading = "Slurm")]
    pub setup: Option<PathBuf>,
    /// Print the sbatch script and the task mapping; submit nothing.
    #[arg(long, help_heading = "Slurm")]
    pub dry_run: bool,
    /// Seconds between polls of the Slurm queue.
    #[arg(long, default_value_t = 2.0, hide = true)]
    pub poll: f64,
    /// Rerun runs that failed or diverged.
    #[arg(long)]
    pub retry_failed: bool,
    /// Only these run ids (comma separated; prefixes accepted).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Only runs whose resolved config has key=value (repeatable).
    #[arg(long = "filter")]
    pub filter: Vec<String>,
    /// Results root folder.
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
    /// Skip the fit after the runs.
    #[arg(long)]
    pub no_fit: bool,
    /// Bootstrap replicates of the fit after the runs.
    #[arg(long, default_value_t = 1000)]
    pub bootstrap: usize,
}

/// Runs `lab sweep`.
pub fn run_sweep(mut a: SweepArgs) -> LabResult<i32> {
    let plan = load(&a.sweep)?;
    let slurm = a.launcher == Launcher::Slurm;
    // Slurm tasks resolve `auto` on their compute node; the login node's devices do not matter.
    let task_backend = a.backend.clone();
    a.backend = backend::resolve(&a.backend);
    let devices = if backend::is_gpu(&a.backend) {
        a.devices.clone()
    } else {
        vec![0]
    };
    if !slurm {
        for &d in &devices {
            backend::device(&a.backend, d)?;
        }
    }
    let slurm_opts = if slurm {
        Some(slurm_options(&a, &plan, task_backend)?)
    } else {
        None
    };
    let dir = sweep_dir(&a.results, &plan);
    let _lock = lock_results(&dir)?;
    let stop = super::stop_on_signals()?;
    for i in &plan.infeasible {
        eprintln!(
            "skipped: budget {:.3e} [{}]: {}",
            i.budget, i.shape, i.reason
        );
    }
    let opts = ExecOptions {
        jobs: jobs(a.jobs, &a.backend, &devices, a.jobs_per_device),
        backend: a.backend.clone(),
        devices,
        retry_failed: a.retry_failed,
        only: a.only,
        filter: a.filter,
        stop: stop.clone(),
    };
    let how = match slurm {
        true => "a Slurm array".to_string(),
        false => format!("{} jobs", opts.jobs),
    };
    eprintln!(
        "sweep {}: {} runs, {how} -> {}",
        plan.spec.name,
        plan.runs.len(),
        dir.display()
    );
    let start = std::time::Instant::now();
    let outcomes = match &slurm_opts {
        Some(so) => execute_slurm(&plan, &dir, &opts, so)?,
        None => execute(&plan, &dir, &opts)?,
    };
    if a.dry_run {
        return Ok(0);
    }
    let counts = collect(&dir)?;
    print_summary(&outcomes);
    println!(
        "{} done, {} failed or diverged, {} unfinished; {:.0} s; collected into {}",
        counts.done,
        counts.failed,
        counts.running + counts.pending,
        start.elapsed().as_secs_f64(),
        dir.join("runs.parquet").display()
    );
    let runs_path = dir.join("runs.parquet");
    if let Some(b) = crate::table::read_frame(&runs_path)
        .ok()
        .and_then(|df| crate::report::branching(&df, &runs_path))
    {
        println!("{}", b.line());
    }
    if stop.load(std::sync::atomic::Ordering::SeqCst) {
        eprintln!("interrupted: rerun the same command to resume");
        return Ok(130);
    }
    if !a.no_fit && counts.done >= 5 {
        for line in crate::analyses::run(&dir, a.bootstrap) {
            println!("{line}");
        }
        match super::plot_cmd::plot_and_report(&dir) {
            Ok((summary, path)) => {
                // One line per reason, naming every figure it applies to.
                let mut reasons: Vec<(&String, Vec<&str>)> = Vec::new();
                for (kind, why) in &summary.skipped {
                    match reasons.iter_mut().find(|(w, _)| *w == why) {
                        Some((_, kinds)) => kinds.push(kind.name()),
                        None => reasons.push((why, vec![kind.name()])),
                    }
                }
                for (why, kinds) in reasons {
                    println!("plot {}: not drawn: {why}", kinds.join(", "));
                }
                println!(
                    "wrote {} figures in {} and {}",
                    summary.drawn.len(),
                    dir.join("plots").display(),
                    path.display()
                );
            }
            Err(e) => eprintln!("report skipped: {e}"),
        }
    }
    Ok(if counts.failed > 0 { 1 } else { 0 })
}

/// The Slurm options of a sweep: the command line's, with the sweep file's site lines first.
fn slurm_options(a: &SweepArgs, plan: &Plan, backend: String) -> LabResult<SlurmOptions> {
    let site = plan.spec.slurm.clone().unwrap_or_default();
    let mut setup = site.setup;
    if let Some(f) = &a.setup {
        let text = std::fs::read_to_string(f)
            .map_err(|e| LabError::input(f, None, format!("--setup: {e}")))?;
        setup.extend(text.lines().map(str::to_string));
    }
    let mut sbatch_args = site.sbatch;
    sbatch_args.extend(a.sbatch_arg.iter().cloned());
    if a.max_concurrent == Some(0) {
        return Err(LabError::input(
            "--max-concurrent",
            None,
            "must be at least 1",
        ));
    }
    Ok(SlurmOptions {
        partition: a.partition.clone(),
        time: a.time.clone(),
        gpus_per_task: a.gpus_per_task,
        cpus_per_task: a.cpus_per_task,
        max_concurrent: a.max_concurrent,
        sbatch_args,
        setup,
        dry_run: a.dry_run,
        backend,
        poll: std::time::Duration::from_secs_f64(a.poll.max(0.05)),
    })
}

fn print_summary(outcomes: &[RunOutcome]) {
    println!(
        "{:<13} {:<9} {:>10} {:>11} {:>10} {:>9} {:>8}  axes",
        "id", "status", "N", "D", "C", "val loss", "wall s"
    );
    for o in outcomes {
        let Some(s) = &o.status else { continue };
        println!(
            "{:<13} {:<9} {:>10} {:>11} {:>10} {:>9} {:>8.0}  {}",
            o.run.id,
            s.status.as_str(),
            s.accounting.params_nonembedding,
            s.tokens,
            sci(s.compute),
            s.final_val_loss
                .map(|v| format!("{v:.4}"))
                .unwrap_or_else(|| "-".into()),
            s.wall_seconds,
            o.run.label
        );
        if let (Some(r), Status::Failed | Status::Diverged) = (&s.reason, s.status) {
            println!("{:<13} reason: {r}", "");
        }
    }
}

/// Arguments of `lab plan`.
#[derive(Args)]
#[command(after_help = "Examples:
  lab plan sweeps/chinchilla.yaml              the runs, with a wall-time estimate from a short probe
  lab plan sweeps/chinchilla.yaml --no-probe   the table only")]
pub struct PlanArgs {
    /// Sweep YAML.
    pub sweep: PathBuf,
    /// Skip the throughput probe (no time estimate).
    #[arg(long)]
    pub no_probe: bool,
    /// Concurrent runs assumed for the total.
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Compute backend: auto (a hardware GPU when there is one, else the CPU), flex, ndarray, wgpu
    /// or cuda, as compiled in (see `lab backends`).
    #[arg(long, default_value = "auto")]
    pub backend: String,
}

/// A run's estimated seconds: training with its validation passes and its task-suite evaluations
/// ([`crate::bench::task_eval_seconds`]), and PassUntil's sampling at its cap at every evaluation
/// (an upper bound).
struct RunEstimate {
    train: f64,
    sampling: f64,
}

/// Estimated seconds of every run from a short throughput probe per distinct shape, and one
/// evaluation of the task suite per distinct shape and suite.
fn estimate(plan: &Plan, backend_name: &str) -> LabResult<Vec<RunEstimate>> {
    let device = backend::device(backend_name, 0)?;
    let mut tps: HashMap<String, f64> = HashMap::new();
    let mut task_secs: HashMap<String, (f64, f64)> = HashMap::new();
    plan.runs
        .iter()
        .map(|r| {
            let (mb, precision) = (r.cfg.train.micro_batch(), r.cfg.train.precision());
            let key = format!("{:?}/{mb}/{precision:?}", r.cfg.model);
            let t = match tps.get(&key) {
                Some(t) => *t,
                None => {
                    let (t, _, _) = train_throughput(&r.cfg.model, mb, 3, 1, &device, precision);
                    tps.insert(key, t);
                    t
                }
            };
            // Evaluations (a branch's share of them in its cooldown): forward passes cost about
            // a third of a training step.
            let (steps, own) = (r.cfg.steps() as f64, own_steps(r) as f64);
            let evals = crate::train::evaluations(&r.cfg) as f64 * own / steps;
            let eval_tokens = evals
                * (r.cfg.train.eval_batches * r.cfg.train.micro_batch() * r.cfg.model.seq_len)
                    as f64
                / 3.0;
            let (greedy, sampling) = match &r.cfg.tasks {
                Some(tasks) => {
                    let key = format!("{:?}/{tasks:?}", r.cfg.model);
                    *task_secs.entry(key).or_insert_with(|| {
                        crate::bench::task_eval_seconds(&r.cfg.model, tasks, &device)
                    })
                }
                None => (0.0, 0.0),
            };
            Ok(RunEstimate {
                train: (own * r.cfg.tokens_per_step() as f64 + eval_tokens) / t + evals * greedy,
                sampling: evals * sampling,
            })
        })
        .collect()
}

/// One line per distinct synthetic corpus of the plan: its entropy rate and the rungs of its skill
/// ladder, the losses a model plateaus at when it has learned only part of the structure.
fn corpus_lines(plan: &Plan) {
    let mut seen: Vec<&crate::data::DataConfig> = Vec::new();
    for r in &plan.runs {
        let data = &r.cfg.data;
        if data.source != crate::data::SourceKind::Synthetic || seen.contains(&data) {
            continue;
        }
        seen.push(data);
        let ladder = crate::data::SyntheticSource::new(&data.synthetic, data.seed).skill_ladder();
        println!(
            "corpus (synthetic, seed {}): entropy rate {:.4} nats/token; {:.4} using only the previous word, {:.4} with no context",
            data.seed, ladder.two_words, ladder.one_word, ladder.unigram
        );
    }
}

/// Runs `lab plan`.
pub fn run_plan(mut a: PlanArgs) -> LabResult<i32> {
    a.backend = backend::resolve(&a.backend);
    let plan = load(&a.sweep)?;
    let secs = if a.no_probe {
        None
    } else {
        Some(estimate(&plan, &a.backend)?)
    };
    println!(
        "{:<13} {:>8} {:>10} {:>10} {:>11} {:>8} {:>10} {:>8}  axes",
        "id", "shape", "N_total", "N", "D", "D/N", "C", "est s"
    );
    for (i, r) in plan.runs.iter().enumerate() {
        let acc = r.cfg.accounting();
        let d = r.cfg.steps() * r.cfg.tokens_per_step();
        println!(
            "{:<13} {:>8} {:>10} {:>10} {:>11} {:>8.1} {:>10} {:>8}  {}",
            r.id,
            format!("{}x{}", r.cfg.model.n_layer, r.cfg.model.d_model),
            acc.params_total,
            acc.params_nonembedding,
            d,
            d as f64 / acc.params_nonembedding as f64,
            sci(acc.flops_per_token as f64 * d as f64),
            secs.as_ref()
                .map(|s| format!("{:.0}", s[i].train))
                .unwrap_or_else(|| "-".into()),
            r.label
        );
    }
    for i in &plan.infeasible {
        println!(
            "infeasible: budget {:.3e} [{}]: {}",
            i.budget, i.shape, i.reason
        );
    }
    corpus_lines(&plan);
    let jobs = jobs(a.jobs, &a.backend, &[0], 1);
    match secs {
        Some(s) => {
            let train: f64 = s.iter().map(|e| e.train).sum();
            let sampling: f64 = s.iter().map(|e| e.sampling).sum();
            let wall = |secs: f64| {
                let w = secs / jobs as f64;
                format!("{w:.0} s ({:.1} min)", w / 60.0)
            };
            let runs = plan.runs.len();
            if sampling > 0.0 {
                println!(
                    "{runs} runs; estimated {train:.0} s of training and evaluation, about {} wall with {jobs} concurrent runs; PassUntil's sampling adds up to {sampling:.0} s (at its cap at every evaluation, as for a model that never learns the task): at most {} wall",
                    wall(train),
                    wall(train + sampling)
                );
            } else {
                println!(
                    "{runs} runs; estimated {train:.0} s of training, about {} wall with {jobs} concurrent runs",
                    wall(train)
                );
            }
        }
        None => println!("{} runs", plan.runs.len()),
    }
    if plan.runs.is_empty() {
        return Err(LabError::input(&a.sweep, None, "no runs"));
    }
    Ok(0)
}

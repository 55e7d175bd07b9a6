//! The local executor: runs a plan's pending runs as `lab train` child processes, `jobs` at a time,
//! with an overall progress bar (ETA by compute) and one bar per running run.
//!
//! Each child trains one run in its own folder under a per-run lock and is told to checkpoint and
//! stop if the sweep process dies (PR_SET_PDEATHSIG), so a killed sweep loses nothing: rerunning it
//! skips done runs and resumes interrupted ones from their checkpoints.

use crate::collect::PlanEntry;
use crate::error::{LabError, LabResult};
use crate::results::{write_atomic, RunDir, RunStatus, Status};
use crate::sweep::spec::{Plan, PlannedRun};
use anyhow::Context;
use fs2::FileExt;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// How to execute a sweep.
#[derive(Clone)]
pub struct ExecOptions {
    /// Concurrent runs.
    pub jobs: usize,
    /// Backend passed to every run.
    pub backend: String,
    /// Device indices the concurrent runs take turns on (worker w uses `devices[w % len]`).
    pub devices: Vec<usize>,
    /// Rerun failed and diverged runs.
    pub retry_failed: bool,
    /// Run only these ids (prefixes accepted).
    pub only: Vec<String>,
    /// Run only runs whose resolved config matches every `key=value`.
    pub filter: Vec<String>,
    /// Set on SIGINT/SIGTERM: launch nothing new, wait for the running children to checkpoint.
    pub stop: Arc<AtomicBool>,
}

/// What happened to each run.
pub struct RunOutcome {
    /// The run.
    pub run: PlannedRun,
    /// Its final status (None: skipped by --only/--filter).
    pub status: Option<RunStatus>,
    /// Whether it was trained in this invocation.
    pub trained: bool,
}

/// A dotted key of a resolved config as text.
fn config_value(run: &PlannedRun, key: &str) -> Option<String> {
    let mut v = serde_yaml::to_value(&run.cfg).ok()?;
    for part in key.split('.') {
        v = v.get(part)?.clone();
    }
    Some(serde_yaml::to_string(&v).ok()?.trim().to_string())
}

/// Whether a run is selected by --only and --filter.
fn selected(run: &PlannedRun, opts: &ExecOptions) -> LabResult<bool> {
    if !opts.only.is_empty() && !opts.only.iter().any(|o| run.id.starts_with(o.as_str())) {
        return Ok(false);
    }
    for f in &opts.filter {
        let (k, v) = f.split_once('=').ok_or_else(|| {
            LabError::input("--filter", None, format!("'{f}': expected key=value"))
        })?;
        match config_value(run, k) {
            Some(actual) => {
                let same_number = actual
                    .parse::<f64>()
                    .ok()
                    .zip(v.parse::<f64>().ok())
                    .is_some_and(|(a, b)| a == b);
                if actual != v && !same_number {
                    return Ok(false);
                }
            }
            None => {
                return Err(LabError::input(
                    "--filter",
                    None,
                    format!("'{k}' is not a run config key"),
                ))
            }
        }
    }
    Ok(true)
}

/// The lock file in a sweep's results folder, held exclusively while a sweep runs on it.
pub const LOCK_FILE: &str = ".lock";

/// Takes the sweep's folder lock; a second sweep on the same folder gets a clear error.
pub fn lock_results(dir: &Path) -> LabResult<std::fs::File> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(LOCK_FILE);
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)?;
    if f.try_lock_exclusive().is_err() {
        let holder = std::fs::read_to_string(&path).unwrap_or_default();
        return Err(anyhow::anyhow!(
            "{} is in use by another lab sweep ({}); wait for it or stop it first",
            dir.display(),
            holder.trim()
        )
        .into());
    }
    let mut w = &f;
    let _ = f.set_len(0);
    let _ = writeln!(w, "pid {}", std::process::id());
    Ok(f)
}

/// Writes plan.json and each run's run.yaml, and prepares failed runs for a retry.
fn prepare(plan: &Plan, dir: &Path, opts: &ExecOptions) -> LabResult<()> {
    let entries: Vec<PlanEntry> = plan
        .runs
        .iter()
        .map(|r| PlanEntry {
            id: r.id.clone(),
            budget: r.budget,
            label: r.label.clone(),
        })
        .collect();
    write_atomic(
        &dir.join("plan.json"),
        &serde_json::to_vec_pretty(&entries).context("plan.json")?,
    )?;
    let _ = std::fs::copy(&plan.file, dir.join("sweep.yaml"));
    for r in &plan.runs {
        let rd = RunDir(dir.join("runs").join(&r.id));
        std::fs::create_dir_all(&rd.0)?;
        let yaml = serde_yaml::to_string(&r.cfg).context("run config")?;
        if std::fs::read_to_string(rd.config()).ok().as_deref() != Some(yaml.as_str()) {
            write_atomic(&rd.config(), yaml.as_bytes())?;
        }
        if opts.retry_failed {
            if let Some(s) = rd.read_status()? {
                if matches!(s.status, Status::Failed | Status::Diverged) {
                    let _ = std::fs::remove_file(rd.status());
                    let _ = std::fs::remove_file(rd.curve());
                    let _ = std::fs::remove_dir_all(rd.ckpt());
                }
            }
        }
    }
    Ok(())
}

/// Records a run that ended without writing a final status (crash, kill) as failed.
pub(crate) fn mark_failed(
    rd: &RunDir,
    run: &PlannedRun,
    reason: String,
    backend: &str,
) -> LabResult<RunStatus> {
    let mut s = rd.read_status()?.unwrap_or_else(|| {
        RunStatus::start(
            run.id.clone(),
            run.cfg.steps(),
            backend,
            run.cfg.accounting(),
        )
    });
    s.status = Status::Failed;
    s.reason = Some(reason);
    rd.write_status(&s)?;
    Ok(s)
}

/// Process ids of the running `lab train` children.
type Children = Arc<Mutex<Vec<u32>>>;

/// Trains one run in a child process, relaying its progress lines to `bar`; the child's pid is in
/// `children` while it runs.
fn train_child(
    run: &PlannedRun,
    rd: &RunDir,
    (backend, device): (&str, usize),
    bars: (&ProgressBar, &ProgressBar),
    children: &Children,
) -> LabResult<RunStatus> {
    let (bar, overall) = bars;
    let exe = std::env::current_exe().context("locating the lab binary")?;
    let mut cmd = Command::new(exe);
    cmd.arg("train")
        .arg(rd.config())
        .arg("--out")
        .arg(&rd.0)
        .arg("--resume")
        .arg("--backend")
        .arg(backend)
        .arg("--device")
        .arg(device.to_string())
        .env("LAB_PROGRESS", "lines")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl is async-signal-safe; the child asks to get SIGTERM when the sweep dies, so
        // that it checkpoints instead of training on unsupervised.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
    }
    let mut child = cmd.spawn().context("starting lab train")?;
    let pid = child.id();
    children.lock().expect("children").push(pid);
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(rd.0.join("train.log"))?;
    let mut last_step = None::<u64>;
    if let Some(err) = child.stderr.take() {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if !apply_progress(&line, run, bar, overall, &mut last_step) {
                let _ = writeln!(log, "{line}");
            }
        }
    }
    let exit = child.wait().context("waiting for lab train");
    children.lock().expect("children").retain(|&p| p != pid);
    let exit = exit?;
    match rd.read_status()? {
        Some(s) if s.status != Status::Running || exit.code() == Some(130) => Ok(s),
        _ => mark_failed(
            rd,
            run,
            format!(
                "lab train exited with {exit}; see {}",
                rd.0.join("train.log").display()
            ),
            backend,
        ),
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .expect("valid template")
        .progress_chars("=> ")
}

/// Prepares the sweep folder and lists every run's outcome so far with the indices of the
/// selected runs still to train (not done, failed or diverged).
pub(crate) fn pending_runs(
    plan: &Plan,
    dir: &Path,
    opts: &ExecOptions,
) -> LabResult<(Vec<RunOutcome>, Vec<usize>)> {
    prepare(plan, dir, opts)?;
    let mut outcomes: Vec<RunOutcome> = Vec::new();
    let mut pending: Vec<usize> = Vec::new();
    for (i, r) in plan.runs.iter().enumerate() {
        let rd = RunDir(dir.join("runs").join(&r.id));
        let status = rd.read_status()?;
        let sel = selected(r, opts)?;
        let needs = !matches!(
            status.as_ref().map(|s| s.status),
            Some(Status::Done | Status::Failed | Status::Diverged)
        );
        if sel && needs {
            pending.push(i);
        }
        outcomes.push(RunOutcome {
            run: r.clone(),
            status: if sel { status } else { None },
            trained: false,
        });
    }
    Ok((outcomes, pending))
}

/// GFLOP of one optimizer step of a run.
pub(crate) fn gflop_per_step(run: &PlannedRun) -> f64 {
    run.cfg.tokens_per_step() as f64 * run.cfg.accounting().flops_per_token as f64 / 1e9
}

/// Optimizer steps a run trains itself: a cooldown branch starts at its fork step.
pub(crate) fn own_steps(run: &PlannedRun) -> u64 {
    let from = run.cfg.train.branch.as_ref().map_or(0, |b| b.step);
    run.cfg.steps().saturating_sub(from)
}

/// GFLOP a run trains itself (a branch: its cooldown only).
pub(crate) fn own_gflop(run: &PlannedRun) -> f64 {
    own_steps(run) as f64 * gflop_per_step(run)
}

/// The pending runs as units of work: a trunk followed by its pending branches (they start from
/// its checkpoints), every other run alone; the costliest units first, so that the longest do
/// not start last.
pub(crate) fn work_units(plan: &Plan, pending: &[usize]) -> Vec<Vec<usize>> {
    let mut units: Vec<Vec<usize>> = Vec::new();
    for &i in pending {
        let trunk = plan.runs[i].cfg.train.branch.as_ref().map(|b| &b.trunk);
        match trunk.and_then(|t| units.iter_mut().find(|u| &plan.runs[u[0]].id == t)) {
            Some(unit) => unit.push(i),
            None => units.push(vec![i]),
        }
    }
    let cost = |u: &Vec<usize>| u.iter().map(|&i| own_gflop(&plan.runs[i])).sum::<f64>();
    units.sort_by(|a, b| cost(b).total_cmp(&cost(a)));
    units
}

/// Why a branch cannot start: its trunk has not finished (None when it has, or for other runs).
fn trunk_unfinished(run: &PlannedRun, dir: &Path) -> LabResult<Option<String>> {
    let Some(b) = &run.cfg.train.branch else {
        return Ok(None);
    };
    let status = RunDir(dir.join("runs").join(&b.trunk)).read_status()?;
    Ok(match status.map(|s| s.status) {
        Some(Status::Done) => None,
        other => Some(format!(
            "its trunk {} is {}; the branch was not trained",
            b.trunk,
            other.map_or("not started", |s| s.as_str())
        )),
    })
}

/// Units of the overall bar per GFLOP: it counts MFLOP, so that the steps of small models (well
/// under a GFLOP each) add up.
const BAR_UNITS_PER_GFLOP: f64 = 1e3;

/// The multi-bar display: an overall bar of the `pending` runs' compute, with an ETA.
pub(crate) fn overall_progress(plan: &Plan, pending: &[usize]) -> (MultiProgress, ProgressBar) {
    let multi = MultiProgress::new();
    if !std::io::stderr().is_terminal() {
        multi.set_draw_target(ProgressDrawTarget::hidden());
    }
    let total_gflop: f64 = pending.iter().map(|&i| own_gflop(&plan.runs[i])).sum();
    let overall = multi.add(ProgressBar::new(
        (total_gflop * BAR_UNITS_PER_GFLOP).ceil() as u64
    ));
    overall.set_style(style(
        "{prefix} [{elapsed_precise}] {bar:30} {percent}% of {msg} GFLOP, eta {eta}",
    ));
    overall.set_prefix(format!("{} runs", pending.len()));
    overall.set_message(format!("{total_gflop:.0}"));
    (multi, overall)
}

/// Without a terminal (a log file, a batch job) the bars are hidden; instead one line per finished
/// run says where the sweep stands: `[done/total] what; share of the compute, elapsed, ETA`.
pub(crate) fn log_finished(overall: &ProgressBar, done: usize, total: usize, what: &str) {
    if std::io::stderr().is_terminal() {
        return;
    }
    let share = (overall.position() as f64 / overall.length().unwrap_or(0).max(1) as f64).min(1.0);
    // The rest at the pace so far (by compute): steadier than the bar's recent-rate estimate,
    // which swings with each run's speed.
    let elapsed = overall.elapsed();
    let eta = if share > 0.0 {
        format!(
            ", eta {}",
            indicatif::HumanDuration(elapsed.mul_f64((1.0 - share) / share))
        )
    } else {
        String::new()
    };
    eprintln!(
        "[{done}/{total}] {what}; {:.0}% of the compute, elapsed {}{eta}",
        100.0 * share,
        indicatif::HumanDuration(elapsed)
    );
}

/// What a finished run's line says of it.
fn outcome_text(run: &PlannedRun, outcome: &LabResult<RunStatus>) -> String {
    let what = match outcome {
        Ok(s) => match s.final_val_loss {
            Some(l) if s.status == Status::Done => format!("done, validation loss {l:.4}"),
            _ => format!("{:?}", s.status).to_lowercase(),
        },
        Err(e) => format!("could not run: {e}"),
    };
    format!("{} {}: {what}", run.id, run.label)
}

/// A run's bar under the overall one.
pub(crate) fn run_bar(multi: &MultiProgress, run: &PlannedRun) -> ProgressBar {
    let bar = multi.add(ProgressBar::new(run.cfg.steps()));
    bar.set_style(style("  {prefix} {bar:20} {pos}/{len} {msg}"));
    bar.set_prefix(format!("{} {}", run.id, run.label));
    bar
}

/// Applies one `@progress step steps message` line of a run to its bar and the overall bar;
/// `last` is the step of the previous line. Returns false for any other line.
pub(crate) fn apply_progress(
    line: &str,
    run: &PlannedRun,
    bar: &ProgressBar,
    overall: &ProgressBar,
    last: &mut Option<u64>,
) -> bool {
    let Some(rest) = line.strip_prefix("@progress ") else {
        return false;
    };
    let mut parts = rest.splitn(3, ' ');
    let step: u64 = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let steps: u64 = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    bar.set_length(steps);
    bar.set_position(step);
    if let Some(m) = parts.next() {
        bar.set_message(m.to_string());
    }
    // Credit the compute between the previous line (or the run's first step) and this one, as
    // differences of whole cumulative bar units, so that no fraction is lost to rounding.
    let first = run.cfg.train.branch.as_ref().map_or(0, |b| b.step);
    let from = last.unwrap_or(first);
    let cumulative = |s: u64| (s as f64 * gflop_per_step(run) * BAR_UNITS_PER_GFLOP) as u64;
    overall.inc(cumulative(step).saturating_sub(cumulative(from)));
    *last = Some(step);
    true
}

/// Runs every pending, selected run of `plan` into `dir` and returns the outcome of each.
pub fn execute(plan: &Plan, dir: &Path, opts: &ExecOptions) -> LabResult<Vec<RunOutcome>> {
    let (mut outcomes, pending) = pending_runs(plan, dir, opts)?;
    let (multi, overall) = overall_progress(plan, &pending);
    let queue = Arc::new(Mutex::new(work_units(plan, &pending).into_iter()));
    let results: Arc<Mutex<Vec<(usize, RunStatus)>>> = Arc::new(Mutex::new(Vec::new()));
    let errors: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let children: Children = Arc::new(Mutex::new(Vec::new()));
    let units = queue.lock().expect("queue").len();
    let workers = opts.jobs.max(1).min(units.max(1));
    let (finished, total) = (std::sync::atomic::AtomicUsize::new(0), pending.len());
    let active = Arc::new(std::sync::atomic::AtomicUsize::new(workers));
    std::thread::scope(|scope| {
        // A signal to the sweep alone (kill, a scheduler) reaches the children too: each
        // checkpoints at its next step and stops, instead of training to the end.
        let (watch_children, watch_active) = (children.clone(), active.clone());
        scope.spawn(move || {
            let mut signalled: Vec<u32> = Vec::new();
            while watch_active.load(Ordering::SeqCst) > 0 {
                if opts.stop.load(Ordering::SeqCst) {
                    for &pid in watch_children.lock().expect("children").iter() {
                        if !signalled.contains(&pid) {
                            // SAFETY: kill(2) on a child we spawned and have not reaped yet.
                            unsafe {
                                libc::kill(pid as libc::pid_t, libc::SIGTERM);
                            }
                            signalled.push(pid);
                        }
                    }
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        });
        for worker in 0..workers {
            let device = opts
                .devices
                .get(worker % opts.devices.len().max(1))
                .copied()
                .unwrap_or(0);
            let finished = &finished;
            let (queue, results, errors, multi, overall, children, active) = (
                queue.clone(),
                results.clone(),
                errors.clone(),
                &multi,
                &overall,
                children.clone(),
                active.clone(),
            );
            scope.spawn(move || {
                loop {
                    if opts.stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Some(unit) = queue.lock().expect("queue").next() else {
                        break;
                    };
                    for i in unit {
                        if opts.stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let run = &plan.runs[i];
                        let rd = RunDir(dir.join("runs").join(&run.id));
                        let outcome = match trunk_unfinished(run, dir) {
                            Ok(Some(why)) => mark_failed(&rd, run, why, &opts.backend),
                            Ok(None) => {
                                let bar = run_bar(multi, run);
                                let backend = (opts.backend.as_str(), device);
                                let s = train_child(run, &rd, backend, (&bar, overall), &children);
                                bar.finish_and_clear();
                                multi.remove(&bar);
                                s
                            }
                            Err(e) => Err(e),
                        };
                        let done = finished.fetch_add(1, Ordering::SeqCst) + 1;
                        log_finished(overall, done, total, &outcome_text(run, &outcome));
                        match outcome {
                            Ok(s) => results.lock().expect("results").push((i, s)),
                            Err(e) => errors
                                .lock()
                                .expect("errors")
                                .push(format!("{}: {e}", run.id)),
                        }
                    }
                }
                active.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    overall.finish_and_clear();
    for (i, s) in results.lock().expect("results").drain(..) {
        outcomes[i].status = Some(s);
        outcomes[i].trained = true;
    }
    let errors = errors.lock().expect("errors");
    if !errors.is_empty() {
        return Err(anyhow::anyhow!("could not run: {}", errors.join("; ")).into());
    }
    Ok(outcomes)
}

/// The results folder of a plan under `root`.
pub fn sweep_dir(root: &Path, plan: &Plan) -> PathBuf {
    root.join(&plan.spec.name)
}

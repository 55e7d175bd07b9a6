//! The Slurm launcher: a sweep's pending runs as one job array (one task per run, each task
//! `lab train` on its run folder inside the shared results folder), submitted with `sbatch`, followed
//! with `squeue` and the tasks' logs under the same progress display as the local executor, and
//! re-attached to (not resubmitted) when `lab` is started again while the array is still queued or
//! running. State: `<results>/slurm/array.json` (job id and the task -> run mapping), the scripts
//! `slurm/array-N.sbatch` and the task logs `slurm/logs/<job>_<task>.out`.

use crate::error::{LabError, LabResult};
use crate::results::{write_atomic, RunDir, Status};
use crate::sweep::executor::{
    apply_progress, log_finished, mark_failed, overall_progress, pending_runs, run_bar, work_units,
    ExecOptions, RunOutcome,
};
use crate::sweep::spec::{Plan, PlannedRun};
use anyhow::Context;
use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Site-specific Slurm settings of a sweep file (`slurm:` section).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlurmSite {
    /// Shell lines run before `lab train` in every task (modules, environment).
    #[serde(default)]
    pub setup: Vec<String>,
    /// Extra `#SBATCH` options, e.g. `--account=abc`.
    #[serde(default)]
    pub sbatch: Vec<String>,
}

/// How to submit a sweep to Slurm.
#[derive(Debug, Clone, Default)]
pub struct SlurmOptions {
    /// Partition (`--partition`).
    pub partition: Option<String>,
    /// Time limit per task (`--time`, e.g. 02:00:00).
    pub time: Option<String>,
    /// GPUs per task (`--gpus-per-task`).
    pub gpus_per_task: Option<u32>,
    /// CPUs per task (`--cpus-per-task`; also the task's thread count).
    pub cpus_per_task: Option<u32>,
    /// Tasks running at once (`--array=...%K`).
    pub max_concurrent: Option<usize>,
    /// Extra `#SBATCH` options (the sweep file's, then the command line's).
    pub sbatch_args: Vec<String>,
    /// Shell lines run before `lab train` (the sweep file's, then `--setup FILE`'s).
    pub setup: Vec<String>,
    /// Print the script and the task mapping; submit nothing.
    pub dry_run: bool,
    /// Backend the tasks train on (`auto` picks per task, on the compute node).
    pub backend: String,
    /// Seconds between polls of the queue.
    pub poll: Duration,
}

/// The submitted array: what `lab` needs to re-attach.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArrayState {
    /// Slurm's job id of the array.
    pub job_id: String,
    /// Run ids of each task, by task index, separated by spaces: one run, or a trunk followed by
    /// its cooldown branches (trained in order by the task).
    pub runs: Vec<String>,
    /// The submitted script.
    pub script: PathBuf,
}

fn slurm_dir(dir: &Path) -> PathBuf {
    dir.join("slurm")
}

fn state_path(dir: &Path) -> PathBuf {
    slurm_dir(dir).join("array.json")
}

/// A task's log file.
pub fn task_log(dir: &Path, job: &str, task: usize) -> PathBuf {
    slurm_dir(dir)
        .join("logs")
        .join(format!("{job}_{task}.out"))
}

/// Single-quotes a word for the shell.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The sbatch script of an array over `units` (one task each: a run, or a trunk and its branches,
/// trained in order), training with the binary `exe`.
pub fn sbatch_script(
    name: &str,
    dir: &Path,
    units: &[Vec<&PlannedRun>],
    exe: &Path,
    so: &SlurmOptions,
) -> String {
    let mut s = String::from("#!/bin/bash\n");
    let mut opt = |line: String| s.push_str(&format!("#SBATCH {line}\n"));
    opt(format!("--job-name=lab-{name}"));
    let throttle = so
        .max_concurrent
        .map(|k| format!("%{k}"))
        .unwrap_or_default();
    opt(format!(
        "--array=0-{}{throttle}",
        units.len().saturating_sub(1)
    ));
    opt(format!(
        "--output={}",
        slurm_dir(dir).join("logs").join("%A_%a.out").display()
    ));
    if let Some(p) = &so.partition {
        opt(format!("--partition={p}"));
    }
    if let Some(t) = &so.time {
        opt(format!("--time={t}"));
    }
    if let Some(c) = so.cpus_per_task {
        opt(format!("--cpus-per-task={c}"));
    }
    if let Some(g) = so.gpus_per_task {
        opt(format!("--gpus-per-task={g}"));
    }
    for a in &so.sbatch_args {
        opt(a.clone());
    }
    s.push_str("# Written by `lab sweep --launcher slurm`: one task per run (or per trunk and its cooldown branches, in order); `lab train` resumes from the run's checkpoint.\n");
    s.push_str("set -eo pipefail\n");
    for line in &so.setup {
        s.push_str(line);
        s.push('\n');
    }
    s.push_str("export LAB_PROGRESS=lines\n");
    s.push_str(
        "[ -n \"${SLURM_CPUS_PER_TASK:-}\" ] && export RAYON_NUM_THREADS=$SLURM_CPUS_PER_TASK\n",
    );
    s.push_str("TASKS=(\n");
    for unit in units {
        let ids: Vec<&str> = unit.iter().map(|r| r.id.as_str()).collect();
        let label = unit
            .first()
            .map_or(String::new(), |r| r.label.replace('\n', " "));
        s.push_str(&format!("  '{}'  # {label}\n", ids.join(" ")));
    }
    s.push_str(")\nfor ID in ${TASKS[$SLURM_ARRAY_TASK_ID]}; do\n");
    let runs_dir = dir.join("runs");
    s.push_str(&format!(
        "  {} train {}/\"$ID\"/run.yaml --out {}/\"$ID\" --resume --backend {}\ndone\n",
        quote(&exe.display().to_string()),
        quote(&runs_dir.display().to_string()),
        quote(&runs_dir.display().to_string()),
        quote(&so.backend)
    ));
    s
}

/// Runs a Slurm command; a missing command is an error that says so.
fn slurm(program: &str, args: &[&str]) -> LabResult<Output> {
    Command::new(program).args(args).output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            LabError::input(
                "--launcher slurm",
                None,
                format!(
                    "'{program}' is not on PATH: run on a Slurm login node (scripts/slurm-local.sh start sets up a one-machine cluster)"
                ),
            )
        } else {
            anyhow::anyhow!("running {program}: {e}").into()
        }
    })
}

/// Submits `script`; returns the array's job id.
fn submit(script: &Path) -> LabResult<String> {
    let out = slurm("sbatch", &["--parsable", &script.display().to_string()])?;
    if !out.status.success() {
        return Err(LabError::input(
            script,
            None,
            format!(
                "sbatch rejected the array: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let id = text.trim().split(';').next().unwrap_or("").to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        return Err(anyhow::anyhow!("sbatch printed no job id: '{}'", text.trim()).into());
    }
    Ok(id)
}

/// Queued or running tasks of array `job`: task index -> state (PENDING, RUNNING, ...).
fn active_tasks(job: &str) -> LabResult<BTreeMap<usize, String>> {
    let out = slurm("squeue", &["-h", "-r", "-j", job, "-o", "%K|%T"])?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        // A job Slurm no longer knows has no active tasks.
        if err.contains("Invalid job id") {
            return Ok(BTreeMap::new());
        }
        return Err(anyhow::anyhow!("squeue -j {job}: {}", err.trim()).into());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (task, state) = l.trim().split_once('|')?;
            Some((task.parse().ok()?, state.to_string()))
        })
        .collect())
}

/// Final states of the tasks of array `job` that Slurm still remembers (`scontrol show job`).
fn final_states(job: &str) -> HashMap<usize, String> {
    let Ok(out) = slurm("scontrol", &["show", "job", "-o", job]) else {
        return HashMap::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let field = |k: &str| {
                l.split_whitespace()
                    .find_map(|w| w.strip_prefix(k))
                    .map(str::to_string)
            };
            Some((field("ArrayTaskId=")?.parse().ok()?, field("JobState=")?))
        })
        .collect()
}

/// Reads the lines appended to `path` since `offset`.
fn new_lines(path: &Path, offset: &mut u64) -> Vec<String> {
    let Ok(mut f) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let mut buf = String::new();
    if f.seek(SeekFrom::Start(*offset)).is_err() || f.read_to_string(&mut buf).is_err() {
        return Vec::new();
    }
    // Keep a partial last line for the next read.
    let complete = buf.rfind('\n').map_or(0, |i| i + 1);
    *offset += complete as u64;
    buf[..complete].lines().map(str::to_string).collect()
}

/// Follows the array until no task is queued or running (or `stop` is set): the progress of
/// running tasks from their logs. Returns false when stopped.
fn follow(
    plan: &Plan,
    dir: &Path,
    state: &ArrayState,
    opts: &ExecOptions,
    poll: Duration,
) -> LabResult<bool> {
    let index: HashMap<&str, usize> = plan
        .runs
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id.as_str(), i))
        .collect();
    let members: Vec<usize> = state
        .runs
        .iter()
        .flat_map(|ids| ids.split(' '))
        .filter_map(|id| index.get(id).copied())
        .collect();
    let (multi, overall) = overall_progress(plan, &members);
    let mut bars: HashMap<usize, (ProgressBar, Option<u64>, u64)> = HashMap::new();
    let mut finished = 0;
    loop {
        if opts.stop.load(Ordering::SeqCst) {
            return Ok(false);
        }
        let active = active_tasks(&state.job_id)?;
        for (&task, st) in &active {
            // A task's progress lines are its running member's; the members of a trunk's task
            // share one shape, so the first stands for them.
            let first = state.runs.get(task).and_then(|ids| ids.split(' ').next());
            let Some(&i) = first.and_then(|id| index.get(id)) else {
                continue;
            };
            if st != "RUNNING" && !bars.contains_key(&task) {
                continue;
            }
            let run = &plan.runs[i];
            let (bar, last, offset) = bars
                .entry(task)
                .or_insert_with(|| (run_bar(&multi, run), None, 0));
            for line in new_lines(&task_log(dir, &state.job_id, task), offset) {
                apply_progress(&line, run, bar, &overall, last);
            }
        }
        bars.retain(|task, (bar, ..)| {
            let keep = active.contains_key(task);
            if !keep {
                bar.finish_and_clear();
                multi.remove(bar);
                finished += 1;
                let ids = state.runs.get(*task).map_or("", String::as_str);
                let what = format!("task {task} ({ids}) left the queue");
                log_finished(&overall, finished, state.runs.len(), &what);
            }
            keep
        });
        if active.is_empty() {
            overall.finish_and_clear();
            return Ok(true);
        }
        std::thread::sleep(poll);
    }
}

/// Runs the sweep's pending runs as a Slurm array (or re-attaches to the one still running) and
/// returns every run's outcome, reporting failed and interrupted tasks with their logs.
pub fn execute_slurm(
    plan: &Plan,
    dir: &Path,
    opts: &ExecOptions,
    so: &SlurmOptions,
) -> LabResult<Vec<RunOutcome>> {
    let (mut outcomes, pending) = pending_runs(plan, dir, opts)?;
    // Tasks start wherever Slurm puts them: every path in the script is absolute.
    let dir = &dir.canonicalize()?;
    let previous: Option<ArrayState> = std::fs::read(state_path(dir))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let attach = match &previous {
        Some(st) if !so.dry_run => !active_tasks(&st.job_id)?.is_empty(),
        _ => false,
    };
    let state = if attach {
        let st = previous.expect("checked");
        eprintln!(
            "re-attaching to Slurm array {} ({} tasks); nothing new is submitted",
            st.job_id,
            st.runs.len()
        );
        st
    } else {
        if pending.is_empty() {
            return Ok(outcomes);
        }
        let units: Vec<Vec<&PlannedRun>> = work_units(plan, &pending)
            .into_iter()
            .map(|u| u.into_iter().map(|i| &plan.runs[i]).collect())
            .collect();
        let exe = std::env::current_exe().context("locating the lab binary")?;
        let script = sbatch_script(&plan.spec.name, dir, &units, &exe, so);
        if so.dry_run {
            println!("{script}");
            println!("task  run           label");
            for (t, unit) in units.iter().enumerate() {
                for r in unit {
                    println!("{t:<5} {:<13} {}", r.id, r.label);
                }
            }
            println!("(dry run: nothing submitted)");
            return Ok(outcomes);
        }
        std::fs::create_dir_all(slurm_dir(dir).join("logs"))?;
        let n = (0..)
            .find(|n| !slurm_dir(dir).join(format!("array-{n}.sbatch")).exists())
            .expect("a free name");
        let path = slurm_dir(dir).join(format!("array-{n}.sbatch"));
        write_atomic(&path, script.as_bytes())?;
        let job_id = submit(&path)?;
        let st = ArrayState {
            job_id,
            runs: units
                .iter()
                .map(|u| {
                    u.iter()
                        .map(|r| r.id.as_str())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect(),
            script: path,
        };
        write_atomic(
            &state_path(dir),
            &serde_json::to_vec_pretty(&st).context("array.json")?,
        )?;
        eprintln!(
            "submitted Slurm array {} ({} tasks): {}",
            st.job_id,
            st.runs.len(),
            st.script.display()
        );
        st
    };
    if !follow(plan, dir, &state, opts, so.poll)? {
        eprintln!(
            "stopped following: Slurm array {} keeps running; rerun the same command to re-attach",
            state.job_id
        );
        return Ok(outcomes);
    }
    let finals = final_states(&state.job_id);
    let members = state
        .runs
        .iter()
        .enumerate()
        .flat_map(|(task, ids)| ids.split(' ').map(move |id| (task, id)));
    for (task, id) in members {
        let Some(i) = plan.runs.iter().position(|r| r.id == id) else {
            continue;
        };
        let run = &plan.runs[i];
        let rd = RunDir(dir.join("runs").join(id));
        let log = task_log(dir, &state.job_id, task);
        let slurm_state = finals.get(&task).cloned().unwrap_or_else(|| "ENDED".into());
        let status = match rd.read_status()? {
            Some(s) if matches!(s.status, Status::Done | Status::Diverged | Status::Failed) => {
                Some(s)
            }
            s if matches!(
                slurm_state.as_str(),
                "CANCELLED" | "TIMEOUT" | "PREEMPTED" | "NODE_FAIL" | "ENDED"
            ) =>
            {
                eprintln!(
                    "interrupted: {id} (task {}_{task}, {slurm_state}); rerun the same command to resume it; log {}",
                    state.job_id,
                    log.display()
                );
                s
            }
            _ => {
                let s = mark_failed(
                    &rd,
                    run,
                    format!(
                        "Slurm task {}_{task} ended {slurm_state}; see {}",
                        state.job_id,
                        log.display()
                    ),
                    &so.backend,
                )?;
                Some(s)
            }
        };
        if let Some(s) = &status {
            if matches!(s.status, Status::Failed) {
                eprintln!(
                    "failed: {id} (task {}_{task}, {slurm_state}): {}; log {}",
                    state.job_id,
                    s.reason.as_deref().unwrap_or(""),
                    log.display()
                );
            }
        }
        outcomes[i].status = status;
        outcomes[i].trained = true;
    }
    Ok(outcomes)
}

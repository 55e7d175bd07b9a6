//! `lab sweep --launcher slurm` against a real single-node Slurm cluster (scripts/slurm-local.sh,
//! started by scripts/test.sh, which sets LAB_SLURM=1): an array completes and matches the local
//! executor, a task killed with scancel is reported and reruns on resubmit, a killed `lab`
//! re-attaches without submitting again, and Slurm's errors are clear. The dry run and the missing
//! `sbatch` need no cluster.

mod common;

use common::{lab, lab_bin, text, write};
use polars::prelude::*;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The cluster is shared: one test at a time.
static CLUSTER: Mutex<()> = Mutex::new(());

/// Whether the cluster tests run (scripts/test.sh starts the cluster and sets LAB_SLURM=1).
fn cluster() -> bool {
    if std::env::var("LAB_SLURM").is_ok_and(|v| v == "1") {
        return true;
    }
    eprintln!("no Slurm cluster (LAB_SLURM unset): scripts/test.sh starts one with scripts/slurm-local.sh");
    false
}

/// When the cluster tests run: the cluster (held for this test alone) and a fresh folder.
fn on_cluster() -> Option<(MutexGuard<'static, ()>, tempfile::TempDir)> {
    if !cluster() {
        return None;
    }
    let held = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    Some((held, tempfile::tempdir().unwrap()))
}

/// A sweep of `n` tiny runs of `tokens` tokens each (different seeds).
fn sweep(dir: &Path, name: &str, tokens: u64, n: usize) -> std::path::PathBuf {
    let seeds: Vec<String> = (0..n).map(|s| s.to_string()).collect();
    write(
        dir,
        &format!("{name}.yaml"),
        &format!(
            "name: {name}\nbase:\n  model: {{n_layer: 1, d_model: 16, n_head: 2, vocab: 64, seq_len: 32}}\n  \
             data: {{source: synthetic}}\n  train: {{tokens: {tokens}, batch_size: 8, eval_batches: 1}}\n\
             seeds: [{}]\n",
            seeds.join(", ")
        ),
    )
}

/// `lab sweep <cfg> --launcher slurm --results res --no-fit` with `extra`, to completion.
fn slurm_sweep(dir: &Path, cfg: &Path, extra: &[&str]) -> Output {
    slurm_command(dir, cfg)
        .args(["--no-fit", "--poll", "0.3"])
        .args(extra)
        .output()
        .unwrap()
}

/// `lab sweep <cfg> --launcher slurm --results res` in `dir`, to add arguments to and run.
fn slurm_command(dir: &Path, cfg: &Path) -> Command {
    let mut c = Command::new(lab_bin());
    c.args(["sweep", cfg.to_str().unwrap()])
        .args(["--launcher", "slurm", "--results", "res"])
        .current_dir(dir);
    c
}

/// Starts `lab sweep <cfg> --launcher slurm --max-concurrent 1` in the background, output piped.
fn spawn_slurm_sweep(dir: &Path, cfg: &Path) -> std::process::Child {
    slurm_command(dir, cfg)
        .args(["--no-fit", "--poll", "0.3", "--max-concurrent", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for sweep `name`'s submission and returns the array's job id.
fn submitted(dir: &Path, name: &str) -> String {
    let state = dir.join(format!("res/{name}/slurm/array.json"));
    wait_for(60, "the submission", || state.exists());
    array_job(dir, name)
}

fn runs_table(path: &Path) -> DataFrame {
    common::frame(path)
        .sort(["id"], Default::default())
        .unwrap()
}

/// Two runs tables (sorted by id) agree: `columns` exactly, final losses within 1e-5 (Slurm tasks
/// may use another thread count).
fn assert_same_runs(a: &DataFrame, b: &DataFrame, columns: &[&str]) {
    for col in columns {
        assert_eq!(a.column(col).unwrap(), b.column(col).unwrap(), "{col}");
    }
    let loss = |df: &DataFrame| -> Vec<f64> {
        df.column("final_val_loss")
            .unwrap()
            .f64()
            .unwrap()
            .into_no_null_iter()
            .collect()
    };
    for (x, y) in loss(a).iter().zip(loss(b)) {
        assert!((x - y).abs() < 1e-5 * y, "slurm {x} vs local {y}");
    }
}

/// Sweep `name`'s Slurm state file, slurm/array.json.
fn array_state(dir: &Path, name: &str) -> serde_json::Value {
    let path = dir.join(format!("res/{name}/slurm/array.json"));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn array_job(dir: &Path, name: &str) -> String {
    array_state(dir, name)["job_id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn scripts(dir: &Path, name: &str) -> usize {
    std::fs::read_dir(dir.join(format!("res/{name}/slurm")))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".sbatch")
        })
        .count()
}

/// Waits until `f` holds (panics after `secs`).
fn wait_for(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(
            t.elapsed() < Duration::from_secs(secs),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn squeue(job: &str) -> String {
    let out = Command::new("squeue")
        .args(["-h", "-r", "-j", job, "-o", "%K %T"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn dry_run_prints_the_script_and_submits_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = sweep(dir.path(), "dry", 4096, 3);
    let setup = write(dir.path(), "site.sh", "module load cuda\nexport FOO=1\n");
    let out = slurm_sweep(
        dir.path(),
        &cfg,
        &[
            "--dry-run",
            "--max-concurrent",
            "2",
            "--partition",
            "gpu",
            "--time",
            "00:10:00",
            "--gpus-per-task",
            "1",
            "--sbatch-arg=--account=abc",
            "--setup",
            setup.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let o = text(&out);
    for want in [
        "#SBATCH --array=0-2%2",
        "#SBATCH --partition=gpu",
        "#SBATCH --time=00:10:00",
        "#SBATCH --gpus-per-task=1",
        "#SBATCH --account=abc",
        "module load cuda",
        "train ",
        "--resume",
        "dry run: nothing submitted",
    ] {
        assert!(o.contains(want), "missing {want:?} in\n{o}");
    }
    // The mapping: 3 tasks, each a run id.
    assert_eq!(
        o.lines().filter(|l| l.starts_with(['0', '1', '2'])).count(),
        3,
        "{o}"
    );
    assert!(!dir.path().join("res/dry/slurm/array.json").exists());
}

#[test]
fn missing_sbatch_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = sweep(dir.path(), "nosb", 4096, 2);
    let out = slurm_command(dir.path(), &cfg)
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("'sbatch' is not on PATH"),
        "{}",
        text(&out)
    );
}

#[test]
fn an_array_completes_and_matches_the_local_executor() {
    let Some((_cluster, dir)) = on_cluster() else {
        return;
    };
    let cfg = write(
        dir.path(),
        "smoke.yaml",
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/sweeps/smoke.yaml"))
            .unwrap(),
    );
    let out = slurm_sweep(dir.path(), &cfg, &["--max-concurrent", "2"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("submitted Slurm array"),
        "{}",
        text(&out)
    );
    let local = lab(
        dir.path(),
        &[
            "sweep",
            cfg.to_str().unwrap(),
            "--results",
            "local",
            "--no-fit",
        ],
    );
    assert!(local.status.success(), "{}", text(&local));
    let a = runs_table(&dir.path().join("res/smoke/runs.parquet"));
    let b = runs_table(&dir.path().join("local/smoke/runs.parquet"));
    assert_eq!(a.height(), 6);
    assert_same_runs(&a, &b, &["id", "status", "tokens", "params_total"]);
    // A second submission finds nothing to do and submits nothing.
    let again = slurm_sweep(dir.path(), &cfg, &[]);
    assert!(again.status.success(), "{}", text(&again));
    assert!(
        !text(&again).contains("submitted Slurm array"),
        "{}",
        text(&again)
    );
    assert_eq!(scripts(dir.path(), "smoke"), 1);
}

#[test]
fn a_cancelled_task_is_reported_and_reruns_on_resubmit() {
    let Some((_cluster, dir)) = on_cluster() else {
        return;
    };
    let cfg = sweep(dir.path(), "cancel", 600_000, 2);
    let child = spawn_slurm_sweep(dir.path(), &cfg);
    let job = submitted(dir.path(), "cancel");
    let log = dir
        .path()
        .join(format!("res/cancel/slurm/logs/{job}_0.out"));
    wait_for(120, "task 0 to train", || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("@progress"))
    });
    let ok = Command::new("scancel")
        .arg(format!("{job}_0"))
        .status()
        .unwrap();
    assert!(ok.success());
    let out = child.wait_with_output().unwrap();
    let o = text(&out);
    assert!(
        o.contains("interrupted:")
            && o.contains("CANCELLED")
            && o.contains(&format!("{job}_0.out")),
        "{o}"
    );
    // Resubmitting runs the cancelled task again, from its checkpoint, and finishes the sweep.
    let again = slurm_sweep(dir.path(), &cfg, &[]);
    assert!(again.status.success(), "{}", text(&again));
    assert!(
        text(&again).contains("submitted Slurm array"),
        "{}",
        text(&again)
    );
    let table = runs_table(&dir.path().join("res/cancel/runs.parquet"));
    let status: Vec<&str> = table
        .column("status")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|v| v.unwrap_or("null"))
        .collect();
    assert_eq!(status, ["done", "done"]);
    let second = array_state(dir.path(), "cancel");
    assert_eq!(second["runs"].as_array().unwrap().len(), 1, "{second}");
}

#[test]
fn a_killed_lab_reattaches_without_resubmitting() {
    let Some((_cluster, dir)) = on_cluster() else {
        return;
    };
    let cfg = sweep(dir.path(), "attach", 200_000, 3);
    let mut child = spawn_slurm_sweep(dir.path(), &cfg);
    let job = submitted(dir.path(), "attach");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !squeue(&job).trim().is_empty(),
        "the array should still be queued"
    );
    let out = slurm_sweep(dir.path(), &cfg, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let o = text(&out);
    assert!(
        o.contains(&format!("re-attaching to Slurm array {job}")),
        "{o}"
    );
    assert!(!o.contains("submitted Slurm array"), "{o}");
    assert_eq!(scripts(dir.path(), "attach"), 1);
    assert_eq!(array_job(dir.path(), "attach"), job);
    assert!(o.contains("3 done, 0 failed"), "{o}");
}

#[test]
fn a_rejected_submission_names_slurms_reason() {
    let Some((_cluster, dir)) = on_cluster() else {
        return;
    };
    let cfg = sweep(dir.path(), "reject", 4096, 2);
    let out = slurm_sweep(dir.path(), &cfg, &["--partition", "no-such-partition"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let o = text(&out);
    assert!(
        o.contains("sbatch rejected the array") && o.contains("partition"),
        "{o}"
    );
    assert!(!dir.path().join("res/reject/slurm/array.json").exists());
}

#[test]
fn a_branched_sweep_runs_each_trunk_and_its_branches_in_one_task() {
    let Some((_cluster, dir)) = on_cluster() else {
        return;
    };
    let cfg = write(
        dir.path(),
        "brs.yaml",
        "name: brs\nbase:\n  model: {n_layer: 1, d_model: 16, n_head: 2, vocab: 64, seq_len: 32}\n  \
         data: {source: synthetic}\n  train: {tokens: 1, batch_size: 8, eval_batches: 1}\n\
         isoflop:\n  budgets: [1.0e10, 2.0e10]\n  shapes:\n    - {n_layer: 1, d_model: 16, n_head: 2}\n    \
         - {n_layer: 1, d_model: 24, n_head: 2}\n  min_steps: 5\nbranches: {cooldown: 0.2}\n",
    );
    let out = slurm_sweep(dir.path(), &cfg, &["--max-concurrent", "2"]);
    assert!(out.status.success(), "{}", text(&out));
    // Two tasks (one per trunk), each listing its trunk and two branches.
    let tasks = array_state(dir.path(), "brs")["runs"].clone();
    let tasks: Vec<String> = serde_json::from_value(tasks).unwrap();
    assert_eq!(tasks.len(), 2, "{tasks:?}");
    assert!(tasks.iter().all(|t| t.split(' ').count() == 3), "{tasks:?}");
    let local = lab(
        dir.path(),
        &[
            "sweep",
            cfg.to_str().unwrap(),
            "--results",
            "local",
            "--no-fit",
        ],
    );
    assert!(local.status.success(), "{}", text(&local));
    let a = runs_table(&dir.path().join("res/brs/runs.parquet"));
    let b = runs_table(&dir.path().join("local/brs/runs.parquet"));
    assert_eq!(a.height(), 6);
    assert_same_runs(&a, &b, &["id", "status", "role", "tokens"]);
}

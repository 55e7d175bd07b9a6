//! `lab sweep` end to end: completion and collection, resume after SIGKILL, locking, bad sweeps,
//! failures that do not stop the sweep.

mod common;

use common::{frame, lab, lab_bin, text, write};
use polars::prelude::*;
use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Starts `lab sweep <cfg> --results res --no-fit [extra]` in the background.
fn spawn_sweep(dir: &Path, cfg: &Path, extra: &[&str]) -> std::process::Child {
    Command::new(lab_bin())
        .args([
            "sweep",
            cfg.to_str().unwrap(),
            "--results",
            "res",
            "--no-fit",
        ])
        .args(extra)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// Runs `lab sweep <cfg> --results res --no-fit` to the end.
fn run_sweep(dir: &Path, cfg: &Path) -> std::process::Output {
    lab(
        dir,
        &[
            "sweep",
            cfg.to_str().unwrap(),
            "--results",
            "res",
            "--no-fit",
        ],
    )
}

fn strings(df: &DataFrame, col: &str) -> Vec<String> {
    df.column(col)
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|s| s.unwrap().to_string())
        .collect()
}

fn u64s(df: &DataFrame, col: &str) -> Vec<u64> {
    df.column(col)
        .unwrap()
        .cast(&DataType::UInt64)
        .unwrap()
        .u64()
        .unwrap()
        .iter()
        .map(|v| v.unwrap())
        .collect()
}

/// A sweep of `budgets` x 2 shapes on the synthetic corpus.
fn sweep_yaml(name: &str, budgets: &str, extra: &str) -> String {
    format!(
        "name: {name}\nbase:\n  model: {{n_layer: 1, d_model: 32, n_head: 2, vocab: 64, seq_len: 32}}\n  \
         data: {{source: synthetic}}\n  train: {{tokens: 1, batch_size: 8, lr: 0.003, eval_batches: 2}}\n\
         isoflop:\n  budgets: [{budgets}]\n  shapes:\n    - {{n_layer: 1, d_model: 16, n_head: 2}}\n    \
         - {{n_layer: 2, d_model: 32, n_head: 2}}\n  min_steps: 5\n{extra}"
    )
}

/// The shipped smoke sweep completes, is collected, and a rerun trains nothing.
#[test]
fn smoke_sweep_completes_and_rerun_skips_done_runs() {
    let dir = tempfile::tempdir().unwrap();
    let smoke = Path::new(env!("CARGO_MANIFEST_DIR")).join("sweeps/smoke.yaml");
    let args = [
        "sweep",
        smoke.to_str().unwrap(),
        "--results",
        "res",
        "--bootstrap",
        "50",
    ];
    let out = lab(dir.path(), &args);
    assert!(out.status.success(), "{}", text(&out));
    // Without a terminal (here, a pipe) each finished run gets a progress line with the compute
    // done and an ETA.
    let log = text(&out);
    assert!(
        log.contains("[1/6] ") && log.contains("[6/6] ") && log.contains("100% of the compute"),
        "{log}"
    );
    let res = dir.path().join("res/smoke");
    let runs = frame(&res.join("runs.parquet"));
    assert_eq!(runs.height(), 6);
    assert!(strings(&runs, "status").iter().all(|s| s == "done"));
    let curves = frame(&res.join("curves.parquet"));
    assert!(curves.height() >= 6 * 5);
    assert!(res.join("fit/fit.json").exists(), "{}", text(&out));
    // The sweep ends with its figures and report.
    assert!(res.join("plots/curves.png").exists(), "{}", text(&out));
    let report = std::fs::read_to_string(res.join("report.md")).unwrap();
    assert!(report.contains("](plots/curves.png)"), "{report}");
    let walls: Vec<String> = std::fs::read_dir(res.join("runs"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path().join("status.json")).unwrap())
        .collect();
    let again = lab(dir.path(), &args);
    assert!(again.status.success(), "{}", text(&again));
    let walls_after: Vec<String> = std::fs::read_dir(res.join("runs"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path().join("status.json")).unwrap())
        .collect();
    assert_eq!(walls, walls_after, "a rerun must not retrain done runs");
    let listing = text(&lab(dir.path(), &["runs", "res/smoke"]));
    assert_eq!(listing.matches(" done ").count(), 6, "{listing}");
    // TensorBoard export: one event file per run, named by its axes, budget, seed and id (what
    // TensorBoard reads from them is checked by scripts/tensorboard.sh with its own reader).
    let tb = lab(dir.path(), &["export", "res/smoke", "--tensorboard", "tb"]);
    assert!(tb.status.success(), "{}", text(&tb));
    let names: Vec<String> = std::fs::read_dir(dir.path().join("tb"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 6, "{names:?}");
    for n in &names {
        assert!(n.contains("seed=0") && n.contains("C="), "{n}");
        let f = dir
            .path()
            .join("tb")
            .join(n)
            .join("events.out.tfevents.0.lab");
        let bytes = std::fs::read(&f).unwrap();
        // The first record is the version event: its length, then "brain.Event:2" inside.
        let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let first = &bytes[12..12 + len];
        assert!(first.windows(13).any(|w| w == b"brain.Event:2"), "{f:?}");
    }
    // report.html: the report as one page, with every figure report.md links embedded.
    let html = lab(dir.path(), &["report", "res/smoke", "--html"]);
    assert!(html.status.success(), "{}", text(&html));
    let page = std::fs::read_to_string(res.join("report.html")).unwrap();
    let md = std::fs::read_to_string(res.join("report.md")).unwrap();
    let figures = md.matches("](plots/").count();
    assert!(figures >= 3, "{md}");
    assert_eq!(
        page.matches("src=\"data:image/png;base64,").count(),
        figures
    );
    assert!(!page.contains("src=\"plots/") && page.contains("<table>"));
    let refused = lab(dir.path(), &["export", "res/smoke"]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(
        text(&refused).contains("--tensorboard"),
        "{}",
        text(&refused)
    );
    let not_results = lab(dir.path(), &["export", "tb", "--tensorboard", "tb2"]);
    assert_eq!(not_results.status.code(), Some(2), "{}", text(&not_results));
}

/// SIGKILL the sweep while runs train; rerunning finishes every run exactly once.
#[test]
fn killed_sweep_resumes_without_losing_or_duplicating_runs() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "kill.yaml",
        &sweep_yaml("kill", "3.0e10, 6.0e10", ""),
    );
    let mut child = spawn_sweep(dir.path(), &cfg, &["--jobs", "2"]);
    // Wait until some run has made progress, then kill the sweep outright.
    let res = dir.path().join("res/kill");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let progressed = std::fs::read_dir(res.join("runs"))
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .any(|e| e.path().join("curve.parquet").exists())
            })
            .unwrap_or(false);
        if progressed || std::time::Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
    let out = run_sweep(dir.path(), &cfg);
    assert!(out.status.success(), "{}", text(&out));
    let runs = frame(&res.join("runs.parquet"));
    let ids = strings(&runs, "id");
    assert_eq!(ids.len(), 4);
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        4,
        "duplicated runs"
    );
    assert!(
        strings(&runs, "status").iter().all(|s| s == "done"),
        "{runs}"
    );
    let curves = frame(&res.join("curves.parquet"));
    let keys: Vec<(String, u64)> = strings(&curves, "id")
        .into_iter()
        .zip(u64s(&curves, "step"))
        .collect();
    assert_eq!(
        keys.iter().collect::<HashSet<_>>().len(),
        keys.len(),
        "duplicated curve rows"
    );
    // Every run's curve ends at its last step.
    let steps: Vec<u64> = u64s(&runs, "tokens");
    assert!(steps.iter().all(|&t| t > 0));
}

/// SIGTERM to the sweep alone (as `kill` or a scheduler sends it) stops its children at their next
/// step with a checkpoint, promptly (the runs stay resumable: "running" with a checkpoint).
#[test]
fn terminated_sweep_stops_its_children_promptly_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(dir.path(), "term.yaml", &sweep_yaml("term", "1.0e12", ""));
    let mut child = spawn_sweep(dir.path(), &cfg, &["--jobs", "2"]);
    let res = dir.path().join("res/term");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !std::fs::read_dir(res.join("runs"))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .any(|e| e.path().join("curve.parquet").exists())
        })
        .unwrap_or(false)
    {
        assert!(std::time::Instant::now() < deadline, "no run progressed");
        std::thread::sleep(Duration::from_millis(100));
    }
    let t = std::time::Instant::now();
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    // The runs of a 1e12 budget take minutes on 2 cores; stopping takes a step and a checkpoint.
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(status.code(), Some(130));
    let listing = text(&lab(dir.path(), &["runs", "res/term"]));
    assert!(listing.contains("running"), "{listing}");
}

/// A second sweep on the same results folder is refused while the first runs.
#[test]
fn concurrent_sweeps_on_one_folder_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(dir.path(), "lock.yaml", &sweep_yaml("lock", "1.0e11", ""));
    let mut first = spawn_sweep(dir.path(), &cfg, &[]);
    let lock = dir.path().join("res/lock/.lock");
    while !lock.exists() {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    let second = run_sweep(dir.path(), &cfg);
    let msg = text(&second);
    first.wait().unwrap();
    assert!(!second.status.success(), "{msg}");
    assert!(msg.contains("in use by another lab sweep"), "{msg}");
}

/// Invalid sweeps fail before any training with exit code 2 and a message naming the key.
#[test]
fn invalid_sweeps_are_rejected_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let good = sweep_yaml("bad", "3.0e10", "");
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "unknown key",
            good.replace("isoflop:", "isoflops:"),
            "isoflops",
        ),
        (
            "wrong type",
            good.replace("min_steps: 5", "min_steps: many"),
            "min_steps",
        ),
        (
            "empty grid",
            format!("{good}grid:\n  train.lr: []\n"),
            "grid.train.lr",
        ),
        (
            "budget too small",
            good.replace("3.0e10", "1.0e3"),
            "has no feasible shape",
        ),
        (
            "impossible shape",
            good.replace(
                "n_layer: 2, d_model: 32, n_head: 2",
                "n_layer: 2, d_model: 30, n_head: 4",
            ),
            "model.n_head",
        ),
        (
            "unknown run key",
            format!("{good}grid:\n  train.lrr: [0.1]\n"),
            "lrr",
        ),
    ];
    for (what, yaml, key) in cases {
        let cfg = write(dir.path(), "bad.yaml", &yaml);
        let out = lab(
            dir.path(),
            &["sweep", cfg.to_str().unwrap(), "--results", "res"],
        );
        let msg = text(&out);
        assert_eq!(out.status.code(), Some(2), "{what}: {msg}");
        assert!(
            msg.contains(key) && msg.contains("bad.yaml"),
            "{what}: {msg}"
        );
        assert!(!msg.contains("panicked"), "{what}: {msg}");
        assert!(
            !dir.path().join("res").exists(),
            "{what}: results were written"
        );
    }
}

/// A diverging run is recorded with its status and reason, and the other runs still finish.
#[test]
fn a_diverging_run_does_not_stop_the_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let extra = "grid:\n  train.lr: [0.003, 1.0e30]\n  train.grad_clip: [0]\n";
    let cfg = write(dir.path(), "div.yaml", &sweep_yaml("div", "3.0e10", extra));
    let out = run_sweep(dir.path(), &cfg);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let runs = frame(&dir.path().join("res/div/runs.parquet"));
    let status = strings(&runs, "status");
    assert_eq!(
        status.iter().filter(|s| *s == "done").count(),
        2,
        "{status:?}"
    );
    assert_eq!(
        status.iter().filter(|s| *s == "diverged").count(),
        2,
        "{status:?}"
    );
    assert!(text(&out).contains("reason: loss"), "{}", text(&out));
}

/// Every shipped sweep and run file is valid: sweeps expand (`lab plan`), run files account
/// (`lab models`), with exit 0.
#[test]
fn shipped_sweeps_and_runs_are_valid() {
    let dir = tempfile::tempdir().unwrap();
    let sweeps = Path::new(env!("CARGO_MANIFEST_DIR")).join("sweeps");
    let mut checked = 0;
    for entry in std::fs::read_dir(&sweeps).unwrap() {
        let path = entry.unwrap().path();
        let yaml = std::fs::read_to_string(&path).unwrap();
        let p = path.to_str().unwrap();
        let out = if yaml.contains("\nbase:") {
            lab(dir.path(), &["plan", p, "--no-probe"])
        } else {
            lab(dir.path(), &["models", p])
        };
        assert!(out.status.success(), "{p}: {}", text(&out));
        if p.ends_with("chinchilla.yaml") {
            // The default sweep's corpus: its entropy rate and the plateaus of partial knowledge.
            assert!(
                text(&out).contains("corpus (synthetic, seed 0): entropy rate 0.9872 nats/token; 1.0890 using only the previous word"),
                "{}",
                text(&out)
            );
        }
        checked += 1;
    }
    assert!(checked >= 7, "{checked} files");
}

/// A sweep over the three architectures on one isoFLOP grid: `lab sweep` fits each architecture
/// apart (only the laws each group's design identifies) and compares them, without being asked;
/// runs.parquet names the encoder-decoder's encoder (null for the decoders).
#[test]
fn a_sweep_over_architectures_fits_and_compares_each() {
    let dir = tempfile::tempdir().unwrap();
    let extra = "zip:\n  model.arch: [causal, prefix, encoder_decoder]\n  \
                 model.prefix: [null, {min: 0, max: 16}, 8]\nseeds: [0]\n";
    let yaml = sweep_yaml("archs", "2.0e9, 4.0e9, 8.0e9", extra).replace(
        "  min_steps: 5\n",
        "    - {n_layer: 2, d_model: 48, n_head: 2}\n  min_steps: 5\n",
    );
    let cfg = write(dir.path(), "archs.yaml", &yaml);
    let out = lab(
        dir.path(),
        &[
            "sweep",
            cfg.to_str().unwrap(),
            "--results",
            "res",
            "--bootstrap",
            "20",
        ],
    );
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    let groups = dir.path().join("res/archs/fit/groups");
    for arch in ["causal", "prefix", "encoder_decoder"] {
        assert!(
            groups.join(format!("arch-{arch}/fit.json")).exists(),
            "{arch}:\n{log}"
        );
        // Runs this short are far from converged: which laws fit is not the point, only that each
        // group is fitted on its own.
        assert!(
            log.contains(&format!("fit arch={arch} approach3: ")),
            "{log}"
        );
    }
    assert!(groups.join("compare.md").exists(), "{log}");
    assert!(log.contains("compute multiplier"), "{log}");
    let runs = common::frame(&dir.path().join("res/archs/runs.parquet"));
    let arch: Vec<String> = runs
        .column("arch")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|a| a.unwrap().to_string())
        .collect();
    let depth = common::float_column(&runs, "encoder_n_layer");
    let encoder = common::float_column(&runs, "params_encoder");
    for ((a, n), p) in arch.iter().zip(&depth).zip(&encoder) {
        // The encoder has the decoder's shape: as many blocks, and its stack (blocks, final
        // norm, positions) is counted apart.
        assert_eq!(n.is_some(), a == "encoder_decoder", "{a}");
        assert_eq!(p.is_some_and(|p| p > 0.0), a == "encoder_decoder", "{a}");
    }
    assert!(arch.iter().any(|a| a == "encoder_decoder"));
    // Each group's loss frontiers hold E at that group's own floor (the causal decoder's loss
    // covers every position, the others' only the targets: their floors differ).
    let floors = common::float_column(&runs, "entropy_floor");
    for group in ["causal", "prefix"] {
        let floor = arch
            .iter()
            .zip(&floors)
            .find(|(a, _)| *a == group)
            .and_then(|(_, f)| *f)
            .unwrap();
        let fit: serde_json::Value = serde_json::from_slice(
            &std::fs::read(groups.join(format!("arch-{group}/fit.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(
            fit["options"]["approach2"]["fixed_e"].as_f64(),
            Some(floor),
            "{group}: {}",
            fit["options"]
        );
    }
    assert_ne!(
        floors.iter().flatten().copied().fold(0.0, f64::max),
        floors.iter().flatten().copied().fold(9.0, f64::min)
    );
}

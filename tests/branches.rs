//! WSD cooldown branches end to end: a branched isoFLOP sweep trains one trunk per shape and one
//! cooldown per budget, each branch equals an independent WSD run bit for bit, the runs table says
//! what each run is and what the branches saved, and a sweep killed during a trunk and during a
//! branch resumes to bit-identical results with every branch done once.

mod common;

use common::{float_column, frame, lab, lab_bin, status, text, write};
use polars::prelude::*;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Two shapes x budgets 3e10, 6e10 and 1.2e11 (one listed budget between the two given).
const SWEEP: &str = "name: br\nbase:\n  model: {n_layer: 1, d_model: 32, n_head: 2, vocab: 64, seq_len: 32}\n  \
     data: {source: synthetic}\n  train: {tokens: 1, batch_size: 8, lr: 0.003, eval_batches: 2}\n\
     isoflop:\n  budgets: [3.0e10, 1.2e11]\n  shapes:\n    - {n_layer: 1, d_model: 16, n_head: 2}\n    \
     - {n_layer: 2, d_model: 32, n_head: 2}\n  min_steps: 5\nbranches: {cooldown: 0.2, between: 1}\n";

fn strings(df: &DataFrame, col: &str) -> Vec<Option<String>> {
    df.column(col)
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|s| s.map(str::to_string))
        .collect()
}

/// Final validation loss by run id.
fn finals(res: &Path) -> HashMap<String, f64> {
    let runs = frame(&res.join("runs.parquet"));
    strings(&runs, "id")
        .into_iter()
        .zip(float_column(&runs, "final_val_loss"))
        .map(|(id, l)| (id.unwrap(), l.unwrap()))
        .collect()
}

fn sweep(dir: &Path, cfg: &Path, results: &str) -> std::process::Output {
    lab(
        dir,
        &[
            "sweep",
            cfg.to_str().unwrap(),
            "--results",
            results,
            "--no-fit",
            "--jobs",
            "2",
        ],
    )
}

/// Run folders under `runs` whose config is a branch (`is_branch`) or not, with progress on disk.
fn progressed(runs: &Path, is_branch: bool) -> bool {
    std::fs::read_dir(runs).is_ok_and(|rd| {
        rd.filter_map(|e| e.ok()).any(|e| {
            let yaml = std::fs::read_to_string(e.path().join("run.yaml")).unwrap_or_default();
            yaml.contains("branch:") == is_branch
                && (e.path().join("ckpt").exists() || e.path().join("curve.parquet").exists())
        })
    })
}

#[test]
fn branches_equal_independent_wsd_runs_and_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(dir.path(), "br.yaml", SWEEP);

    // Uninterrupted.
    let out = sweep(dir.path(), &cfg, "a");
    assert!(out.status.success(), "{}", text(&out));
    let res = dir.path().join("a/br");
    let runs = frame(&res.join("runs.parquet"));
    let roles: Vec<String> = strings(&runs, "role")
        .into_iter()
        .map(Option::unwrap)
        .collect();
    let trunks = roles.iter().filter(|r| *r == "trunk").count();
    let branches = roles.iter().filter(|r| *r == "branch").count();
    assert_eq!(trunks, 2, "one trunk per shape: {runs}");
    assert!(branches >= 5, "{runs}");
    assert!(
        strings(&runs, "status")
            .iter()
            .all(|s| s.as_deref() == Some("done")),
        "{runs}"
    );
    assert!(
        text(&out).contains(&format!("{branches} cooldown branches from 2 trunks")),
        "{}",
        text(&out)
    );
    // A branch's C is its whole point's (trunk part included); it spent only its cooldown.
    let (c, spent, fork) = (
        float_column(&runs, "compute"),
        float_column(&runs, "compute_spent"),
        float_column(&runs, "branch_tokens"),
    );
    let trunk_ids: HashSet<String> = strings(&runs, "trunk").into_iter().flatten().collect();
    assert_eq!(trunk_ids.len(), 2);
    for i in 0..runs.height() {
        match roles[i].as_str() {
            "branch" => {
                assert!(spent[i].unwrap() < 0.5 * c[i].unwrap(), "row {i}");
                assert!(fork[i].unwrap() > 0.0);
            }
            _ => assert_eq!(spent[i], c[i]),
        }
    }

    // Every branch equals an independent WSD run of its length: the same config without `branch`
    // (its cooldown fraction lands on the fork step), trained from scratch.
    let ids = strings(&runs, "id");
    let losses = finals(&res);
    let mut checked = 0;
    for (i, role) in roles.iter().enumerate() {
        if role != "branch" || checked == 2 {
            continue;
        }
        let id = ids[i].clone().unwrap();
        let yaml = std::fs::read_to_string(res.join("runs").join(&id).join("run.yaml")).unwrap();
        let mut doc: serde_yaml::Value = serde_yaml::from_str(&yaml).unwrap();
        doc["train"].as_mapping_mut().unwrap().remove("branch");
        let alone = write(
            dir.path(),
            &format!("alone-{id}.yaml"),
            &serde_yaml::to_string(&doc).unwrap(),
        );
        let out_dir = dir.path().join(format!("alone-{id}"));
        let o = lab(
            dir.path(),
            &[
                "train",
                alone.to_str().unwrap(),
                "--out",
                out_dir.to_str().unwrap(),
            ],
        );
        assert!(o.status.success(), "{}", text(&o));
        let independent = status(&out_dir)["final_val_loss"].as_f64().unwrap();
        assert_eq!(
            independent.to_bits(),
            losses[&id].to_bits(),
            "branch {id}: {} vs independent WSD {independent}",
            losses[&id]
        );
        checked += 1;
    }
    assert_eq!(checked, 2);

    // The schedule-aware law, fitted on each shape's two shorter branches, predicts its longest.
    let fit_dir = res.to_str().unwrap();
    let o = lab(
        dir.path(),
        &[
            "fit",
            fit_dir,
            "--schedule-fit",
            "isoflop_budget<1e11",
            "--bootstrap",
            "20",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let sched: serde_json::Value =
        serde_json::from_slice(&std::fs::read(res.join("fit/schedule.json")).unwrap()).unwrap();
    let shapes = sched["shapes"].as_array().unwrap();
    assert_eq!(shapes.len(), 2, "{sched}");
    for sh in shapes {
        assert_eq!(sh["fitted_on"].as_array().unwrap().len(), 2, "{sh}");
        let p = &sh["predictions"].as_array().unwrap()[0];
        let err = p["final_rel_error"].as_f64().unwrap();
        assert!(err.abs() < 0.2, "{p}");
    }
    let bad = lab(
        dir.path(),
        &[
            "fit",
            fit_dir,
            "--schedule-fit",
            "schedule=wsd",
            "--schedule-lambda",
            "1.5",
        ],
    );
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    assert!(text(&bad).contains("--schedule-lambda"), "{}", text(&bad));

    // Killed during a trunk, then during a branch, then finished: the same results, bit for bit.
    let runs_dir = dir.path().join("b/br/runs");
    for during_branch in [false, true] {
        let mut child = Command::new(lab_bin())
            .args([
                "sweep",
                cfg.to_str().unwrap(),
                "--results",
                "b",
                "--no-fit",
                "--jobs",
                "2",
            ])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        while !progressed(&runs_dir, during_branch) && Instant::now() < deadline {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        child.wait().unwrap();
    }
    let out = sweep(dir.path(), &cfg, "b");
    assert!(out.status.success(), "{}", text(&out));
    let again = finals(&dir.path().join("b/br"));
    assert_eq!(again.len(), losses.len());
    for (id, l) in &losses {
        assert_eq!(
            again[id].to_bits(),
            l.to_bits(),
            "{id}: {} vs {l}",
            again[id]
        );
    }
    let curves = frame(&dir.path().join("b/br/curves.parquet"));
    let keys: Vec<(Option<String>, Option<f64>)> = strings(&curves, "id")
        .into_iter()
        .zip(float_column(&curves, "step"))
        .collect();
    let unique: HashSet<String> = keys.iter().map(|(a, b)| format!("{a:?}{b:?}")).collect();
    assert_eq!(unique.len(), keys.len(), "duplicated curve rows");
}

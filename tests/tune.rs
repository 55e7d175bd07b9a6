//! `lab tune`: learning-rate scans of a sweep's shapes, the best rate per size and the rule.

mod common;

use common::{lab, text, write};

/// A sweep of one budget x three shapes with a learning-rate rule.
fn sweep(lr_rule: &str) -> String {
    sweep_at(lr_rule, "3.0e9")
}

/// The same three shapes at the given budgets.
fn sweep_at(lr_rule: &str, budgets: &str) -> String {
    format!(
        "name: t\nbase:\n  model: {{n_layer: 1, d_model: 16, n_head: 2, vocab: 64, seq_len: 32}}\n  \
         data: {{source: synthetic}}\n  train: {{tokens: 1, batch_size: 8, eval_batches: 2}}\n\
         rules:\n  train.lr: \"{lr_rule}\"\n\
         isoflop:\n  budgets: [{budgets}]\n  min_steps: 5\n  shapes:\n    \
         - {{n_layer: 1, d_model: 16, n_head: 2}}\n    - {{n_layer: 1, d_model: 24, n_head: 2}}\n    \
         - {{n_layer: 2, d_model: 32, n_head: 2}}\n"
    )
}

fn tune_json(dir: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("res/t-tune/tune.json")).unwrap()).unwrap()
}

/// Far too small a learning rate everywhere: every size's best rate is the largest of the grid, no
/// rule is fitted, the command says to widen the grid and fails; a rerun trains nothing again.
#[test]
fn an_unbracketed_grid_gives_no_rule_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "s.yaml", &sweep("0.00001"));
    let args = [
        "tune",
        f.to_str().unwrap(),
        "--factors",
        "1,2,4",
        "--results",
        "res",
    ];
    let out = lab(dir.path(), &args);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("above the grid"), "{t}");
    assert!(t.contains("No rule"), "{t}");
    let j = tune_json(dir.path());
    assert_eq!(j["shapes"].as_array().unwrap().len(), 3);
    assert!(j["calibration"]["rule"].is_null());
    for o in j["calibration"]["optima"].as_array().unwrap() {
        assert_eq!(o["kind"], "above_grid", "{o}");
        assert!((o["lr"].as_f64().unwrap() - 4e-5).abs() < 1e-12, "{o}");
    }
    let statuses = |dir: &std::path::Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir.join("res/t-tune/runs"))
            .unwrap()
            .map(|e| std::fs::read_to_string(e.unwrap().path().join("status.json")).unwrap())
            .collect();
        v.sort();
        v
    };
    let before = statuses(dir.path());
    assert_eq!(before.len(), 9);
    let again = lab(dir.path(), &args);
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));
    assert_eq!(before, statuses(dir.path()), "a rerun must not retrain");
}

/// A grid around a sensible rate brackets the optima: the rule is printed as a sweep expression
/// whose value at each size is the fitted optimum's power law, and each optimum lies inside the grid.
#[test]
fn a_bracketing_grid_gives_a_rule_to_paste() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "s.yaml", &sweep("0.01"));
    let out = lab(
        dir.path(),
        &[
            "tune",
            f.to_str().unwrap(),
            "--factors",
            "0.01,0.1,1,10",
            "--results",
            "res",
        ],
    );
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    let j = tune_json(dir.path());
    // Every size's best rate lies strictly inside the grid, between the neighbours of 0.01.
    for o in j["calibration"]["optima"].as_array().unwrap() {
        assert_eq!(o["kind"], "bracketed", "{o}");
        let lr = o["lr"].as_f64().unwrap();
        assert!(lr > 1e-3 && lr < 0.1, "{o}");
    }
    let rule = &j["calibration"]["rule"];
    assert_eq!(rule["sizes"].as_u64(), Some(3));
    // The printed line is the rule, ready for the sweep file.
    let expr = j["rule_expression"].as_str().unwrap();
    assert!(t.contains(&format!("train.lr: \"{expr}\"")), "{t}");
    assert!(expr.contains("* math::pow(N / "), "{expr}");
    // A tuned run is a normal run folder: the sweep's shape at the sweep's tokens, lr x factor.
    let runs = j["shapes"].as_array().unwrap();
    assert_eq!(runs.len(), 3);
    assert!(runs.iter().all(|s| s["sweep_lr"].as_f64() == Some(0.01)));
}

/// Bad factors are refused before anything runs.
#[test]
fn too_few_factors_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "s.yaml", &sweep("0.01"));
    let out = lab(
        dir.path(),
        &["tune", f.to_str().unwrap(), "--factors", "1,2"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--factors"));
    assert!(!dir.path().join("results").exists());
}

/// `--every-budget` scans each shape at each of its budgets, reuses the runs the median-budget scan
/// already trained, and fits a rule in N and D that it prints as a sweep expression.
#[test]
fn every_budget_gives_a_rule_in_n_and_d_and_reuses_the_median_scans() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "s.yaml", &sweep_at("0.01", "3.0e9, 1.0e10"));
    let args = |every: bool| {
        let mut v = vec![
            "tune".to_string(),
            f.to_str().unwrap().to_string(),
            "--factors".into(),
            "0.01,0.1,1,10".into(),
            "--results".into(),
            "res".into(),
        ];
        if every {
            v.push("--every-budget".into());
        }
        v
    };
    let run = |every: bool| {
        let a = args(every);
        lab(
            dir.path(),
            &a.iter().map(String::as_str).collect::<Vec<_>>(),
        )
    };
    let median = run(false);
    assert!(median.status.success(), "{}", text(&median));
    let status_of = |id: &str| {
        std::fs::read_to_string(dir.path().join(format!("res/t-tune/runs/{id}/status.json")))
            .unwrap()
    };
    let first = tune_json(dir.path());
    let trained: Vec<(String, String)> = first["shapes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["runs"].as_array().unwrap().clone())
        .map(|r| {
            let id = r[1].as_str().unwrap().to_string();
            let status = status_of(&id);
            (id, status)
        })
        .collect();
    assert_eq!(trained.len(), 12);
    let every = run(true);
    let t = text(&every);
    assert!(every.status.success(), "{t}");
    let j = tune_json(dir.path());
    let shapes = j["shapes"].as_array().unwrap();
    // Three shapes at two budgets, each with its own D = budget / FLOPs per token.
    assert_eq!(shapes.len(), 6, "{t}");
    for s in shapes {
        let d = s["d"].as_f64().unwrap();
        let tokens = s["tokens"].as_f64().unwrap();
        assert!((d / tokens - 1.0).abs() < 0.2, "{s}");
    }
    for (id, status) in &trained {
        assert_eq!(&status_of(id), status, "run {id} was retrained");
    }
    let rule = &j["calibration"]["rule"];
    assert!(rule["tokens"]["d0"].as_f64().unwrap() > 0.0, "{rule}");
    let expr = j["rule_expression"].as_str().unwrap();
    assert!(expr.contains(") * math::pow(D / "), "{expr}");
    assert!(t.contains(&format!("train.lr: \"{expr}\"")), "{t}");
}

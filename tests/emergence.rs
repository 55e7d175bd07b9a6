//! Task evaluations end to end: a run with a task suite records every metric; `lab fit --emergence`
//! finds a planted jump in a results folder and labels it; `lab plot --only tasks` draws it.

mod common;

use common::{frame, lab, text, tiny_run, write};
use polars::prelude::*;
use std::path::Path;

/// Trains the tiny run (two evaluations) with the `tasks` section `tasks` (its lines) into
/// `dir/run` and returns its evals.parquet.
fn train_with_tasks(dir: &Path, tasks: &str) -> DataFrame {
    let cfg = tiny_run(10_240, "  eval_every_tokens: 5120\n")
        .replace("train:\n", &format!("tasks:\n{tasks}train:\n"));
    let cfg = write(dir, "run.yaml", &cfg);
    let out = lab(dir, &["train", cfg.to_str().unwrap(), "--out", "run"]);
    assert!(out.status.success(), "{}", text(&out));
    frame(&dir.join("run/evals.parquet"))
}

#[test]
fn a_run_with_tasks_records_every_metric_with_intervals() {
    let dir = tempfile::tempdir().unwrap();
    let ev = train_with_tasks(
        dir.path(),
        "  suite:\n    - {kind: add, digits: 2}\n    - {kind: mod, digits: 2, modulus: 7}\n  n_eval: 24\n  \
         pass_until: {successes: 3, max_samples: 120, below: 0.5}\n",
    );
    let metric: Vec<String> = ev
        .column("metric")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|v| v.unwrap_or_default().to_owned())
        .collect();
    for m in [
        "exact_match",
        "token_accuracy",
        "edit_distance",
        "answer_logprob",
        "answer_length",
        "chance",
        "brier",
    ] {
        assert!(metric.iter().any(|x| x == m), "{m} missing: {metric:?}");
    }
    // Two evaluations x (add: 6 metrics + mod: 7 metrics), and PassUntil's rate for each task
    // whose greedy exact match is below 0.5 (after two steps, add2's is), from at most 120 samples.
    let pass = metric.iter().filter(|m| *m == "pass_until").count();
    assert!(pass >= 2, "{metric:?}");
    let keep: Vec<bool> = metric.iter().map(|m| m != "pass_until").collect();
    let ev = ev
        .filter(&BooleanChunked::from_slice("keep".into(), &keep))
        .unwrap();
    assert_eq!(ev.height(), 2 * 13);
    let n: Vec<u64> = ev
        .column("n_examples")
        .unwrap()
        .u64()
        .unwrap()
        .into_no_null_iter()
        .collect();
    // add2 has 24 held-out examples; mod7 of two digits has only about a tenth of 100 operands.
    assert!(n[..6].iter().all(|&k| k == 24), "{n:?}");
    assert!(n[6..13].iter().all(|&k| (5..24).contains(&k)), "{n:?}");
    let lo = ev.column("ci_lo").unwrap().f64().unwrap().clone();
    let hi = ev.column("ci_hi").unwrap().f64().unwrap().clone();
    let value = ev.column("value").unwrap().f64().unwrap().clone();
    for i in 0..ev.height() {
        if let (Some(l), Some(h)) = (lo.get(i), hi.get(i)) {
            let v = value.get(i).unwrap();
            assert!(l <= v + 1e-12 && v <= h + 1e-12 && (0.0..=1.0).contains(&l) && h <= 1.0);
        }
    }
    // A bad task is an input error naming the key.
    let bad = tiny_run(10_240, "").replace(
        "train:\n",
        "tasks:\n  suite:\n    - {kind: mod, digits: 2, modulus: 40}\ntrain:\n",
    );
    let bad = write(dir.path(), "bad.yaml", &bad);
    let out = lab(
        dir.path(),
        &["train", bad.to_str().unwrap(), "--out", "bad"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("tasks.suite"), "{}", text(&out));
}

/// A composite task's steps are evaluated on their own at every evaluation (tasks
/// `chain3x1.step1`, `.step2`); the composite's exact match is never above its weakest step's.
#[test]
fn a_composite_task_records_each_step() {
    let dir = tempfile::tempdir().unwrap();
    let ev = train_with_tasks(
        dir.path(),
        "  suite:\n    - {kind: chain, digits: 1, terms: 3}\n  n_eval: 30\n",
    );
    let col = |name: &str| -> Vec<String> {
        ev.column(name)
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .map(|v| v.unwrap_or_default().to_owned())
            .collect()
    };
    let (task, metric) = (col("task"), col("metric"));
    let value: Vec<f64> = ev
        .column("value")
        .unwrap()
        .f64()
        .unwrap()
        .into_no_null_iter()
        .collect();
    let exact = |t: &str| -> Vec<f64> {
        task.iter()
            .zip(&metric)
            .zip(&value)
            .filter(|((a, m), _)| a.as_str() == t && m.as_str() == "exact_match")
            .map(|(_, v)| *v)
            .collect()
    };
    let (whole, one, two) = (
        exact("chain3x1"),
        exact("chain3x1.step1"),
        exact("chain3x1.step2"),
    );
    assert_eq!((whole.len(), one.len(), two.len()), (2, 2, 2), "{task:?}");
    for i in 0..2 {
        assert!(
            whole[i] <= one[i].min(two[i]) + 1e-12,
            "{whole:?} {one:?} {two:?}"
        );
    }
}

/// A results folder of 10 runs whose exact match jumps between N = 1e5 and 2e5 while per-token
/// accuracy stays smooth.
fn planted_jump(dir: &Path) {
    let ns: Vec<f64> = (0..10).map(|i| 1e4 * 2f64.powi(i)).collect();
    plant(dir, &ns, 400, |i, params| {
        let em = if params > 1.5e5 { 0.8 } else { 0.0 };
        let tok = 0.3 + 0.06 * i as f64;
        [
            ("exact_match", em),
            ("token_accuracy", tok),
            ("answer_logprob", -4.0 * (1.0 - tok)),
            ("answer_length", 4.0),
            ("chance", 0.001),
        ]
        .map(|(m, v)| ("add3".to_string(), m, v))
        .to_vec()
    });
}

/// Writes a results folder of done runs of sizes `ns` (ids run0, run1, ...) and one evaluation
/// each at step 100: the (task, metric, value) rows `rows(i, N)` of run i, each of `n` examples.
fn plant(
    dir: &Path,
    ns: &[f64],
    n: u64,
    rows: impl Fn(usize, f64) -> Vec<(String, &'static str, f64)>,
) {
    let ids: Vec<String> = (0..ns.len()).map(|i| format!("run{i}")).collect();
    let mut runs = df!(
        "id" => ids.clone(),
        "status" => vec!["done"; ns.len()],
        "params_nonembedding" => ns.to_vec(),
    )
    .unwrap();
    let f = std::fs::File::create(dir.join("runs.parquet")).unwrap();
    ParquetWriter::new(f).finish(&mut runs).unwrap();
    let (mut id, mut task, mut metric, mut value) = (vec![], vec![], vec![], vec![]);
    for (i, (run, &params)) in ids.iter().zip(ns).enumerate() {
        for (t, m, v) in rows(i, params) {
            id.push(run.clone());
            task.push(t);
            metric.push(m.to_string());
            value.push(v);
        }
    }
    let k = id.len();
    let mut evals = df!(
        "id" => id,
        "step" => vec![100u64; k],
        "tokens" => vec![1000u64; k],
        "compute" => vec![1e12; k],
        "task" => task,
        "metric" => metric,
        "value" => value,
        "n_examples" => vec![n; k],
    )
    .unwrap();
    let f = std::fs::File::create(dir.join("evals.parquet")).unwrap();
    ParquetWriter::new(f).finish(&mut evals).unwrap();
}

#[test]
fn a_composite_jump_is_explained_by_its_smooth_steps() {
    let dir = tempfile::tempdir().unwrap();
    let res = dir.path().join("res");
    std::fs::create_dir_all(&res).unwrap();
    let ns: Vec<f64> = (0..12).map(|i| 1e4 * 10f64.powf(i as f64 / 4.0)).collect();
    plant(&res, &ns, 2000, |i, _| {
        let p = 0.45 + 0.05 * i as f64;
        let mut rows = vec![
            ("chain".to_string(), "exact_match", p.powi(6)),
            ("chain".to_string(), "token_accuracy", p),
            ("chain".to_string(), "answer_logprob", 6.0 * p.ln()),
            ("chain".to_string(), "answer_length", 6.0),
            ("chain".to_string(), "chance", 1e-6),
        ];
        rows.extend((1..=6).map(|k| (format!("chain.step{k}"), "exact_match", p)));
        rows
    });
    let out = lab(
        dir.path(),
        &["fit", "res", "--emergence", "--emergence-x", "params"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(res.join("fit/emergence.json")).unwrap()).unwrap();
    let chain = json["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["task"] == "chain")
        .unwrap();
    assert_ne!(chain["jump"]["verdict"], "smooth", "{}", chain["jump"]);
    assert_eq!(
        chain["subtasks"]["label"], "explained by sub-tasks",
        "{}",
        chain["subtasks"]
    );
    // Where it crosses 50% (p^6 = 0.5 at p = 0.891, x = 6.20), predicted from the steps below
    // the jump.
    let crossing = &chain["crossing"];
    let observed = crossing["observed"].as_f64().unwrap();
    assert!((observed - 6.2).abs() < 0.05, "{crossing}");
    assert!(crossing["predicted"].is_f64(), "{crossing}");
    let md = std::fs::read_to_string(res.join("fit/emergence.md")).unwrap();
    assert!(
        md.contains("Sub-tasks of chain: explained by sub-tasks") && md.contains("Crossing 50%"),
        "{md}"
    );
    // The steps record exact match only: they have no continuous metric, and the figure draws.
    assert!(
        json["tasks"][1].get("continuous").is_none(),
        "{}",
        json["tasks"][1]
    );
    let out = lab(
        dir.path(),
        &["plot", "res", "--only", "tasks", "--format", "png"],
    );
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn emergence_finds_a_planted_jump_and_plots_it() {
    let dir = tempfile::tempdir().unwrap();
    let res = dir.path().join("res");
    std::fs::create_dir_all(&res).unwrap();
    planted_jump(&res);
    let out = lab(
        dir.path(),
        &["fit", "res", "--emergence", "--emergence-x", "params"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(res.join("fit/emergence.json")).unwrap()).unwrap();
    let t = &json["tasks"][0];
    assert_eq!(t["jump"]["verdict"], "jump", "{}", t["jump"]);
    let x0 = t["jump"]["sigmoid"]["x0"].as_f64().unwrap();
    assert!((x0 - 1.5e5f64.log10()).abs() < 0.2, "x0 = {x0}");
    // tok^4 rises smoothly from 0.008 to 0.6: it does not reproduce a step to 0.8 at 1.5e5.
    assert_eq!(
        t["mirage"]["label"], "not explained by the metric",
        "{}",
        t["mirage"]
    );
    let out = lab(
        dir.path(),
        &["plot", "res", "--only", "tasks", "--format", "png"],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        std::fs::metadata(res.join("plots/tasks.png"))
            .unwrap()
            .len()
            > 20_000
    );
}

/// A size sweep at one token budget with a task suite: `lab sweep` writes and prints the emergence
/// verdict itself, and reports no compute-optimal exponent (one D cannot separate N's effect from
/// D's), saying why in one line.
#[test]
fn a_fixed_budget_sweep_reports_emergence_and_no_exponent() {
    let dir = tempfile::tempdir().unwrap();
    let spec = "name: sizes\nbase:\n  model: {n_layer: 1, d_model: 16, n_head: 2, vocab: 64, seq_len: 32}\n  \
                data: {source: synthetic}\n  train: {tokens: 16384, batch_size: 8, lr: 0.003, eval_batches: 1}\n  \
                tasks:\n    suite:\n      - {kind: add, digits: 2}\n    n_eval: 24\n    \
                pass_until: {successes: 2, max_samples: 96, below: 1.0}\n\
                zip:\n  model.d_model: [8, 12, 16, 20, 24, 32]\nseeds: [0]\n";
    let spec = write(dir.path(), "sizes.yaml", spec);
    // The plan counts task evaluations, and PassUntil's sampling as a bound of its own.
    let plan = lab(dir.path(), &["plan", spec.to_str().unwrap()]);
    let printed = text(&plan);
    assert!(plan.status.success(), "{printed}");
    assert!(
        printed.contains("s of training and evaluation")
            && printed.contains("PassUntil's sampling adds up to"),
        "{printed}"
    );
    let out = lab(
        dir.path(),
        &["sweep", spec.to_str().unwrap(), "--bootstrap", "50"],
    );
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(!log.contains(" a = "), "an exponent was reported:\n{log}");
    let skipped = log
        .lines()
        .find(|l| l.starts_with("fit approach1, approach3, kaplan: skipped:"))
        .unwrap_or_else(|| panic!("no skip line:\n{log}"));
    assert!(skipped.contains("every run has D = 1.638e4"), "{skipped}");
    assert!(log.contains("fit approach2: skipped:"), "{log}");
    assert!(
        log.lines().any(|l| l.starts_with("emergence add2: ")),
        "{log}"
    );
    let res = dir.path().join("results/sizes");
    assert!(res.join("fit/emergence.json").exists() && !res.join("fit/fit.json").exists());
    // Exact match at every evaluation against the validation loss, one group per size.
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(res.join("fit/emergence.json")).unwrap()).unwrap();
    let axis = &json["tasks"][0]["loss_axis"];
    assert_eq!(axis["thresholds"].as_array().unwrap().len(), 6, "{axis}");
    assert!(axis["verdict"].is_string(), "{axis}");
    // And against the task's own loss (answer negative log-probability per token).
    let own = &json["tasks"][0]["task_loss_axis"];
    assert_eq!(own["thresholds"].as_array().unwrap().len(), 6, "{own}");
    // Its points, which the loss-axis figure draws: every evaluation of the six sizes.
    assert!(own["points"].as_array().unwrap().len() >= 12, "{own}");
    let figure = std::fs::metadata(res.join("plots/tasks-loss.png"))
        .unwrap_or_else(|e| panic!("tasks-loss.png: {e}\n{log}"));
    assert!(figure.len() > 20_000, "{} bytes", figure.len());
    // PassUntil's rates at every run's last evaluation, and their trend.
    let sampled = &json["tasks"][0]["resolution"];
    assert_eq!(
        sampled["fitted"].as_u64().unwrap() + sampled["without_success"].as_u64().unwrap(),
        6,
        "{sampled}"
    );
    let md = std::fs::read_to_string(res.join("fit/emergence.md")).unwrap();
    assert!(
        md.contains("against the validation loss")
            && md.contains("the task's own loss")
            && md.contains("PassUntil")
            && md.contains("| 50% predicted | 50% observed (sampled; greedy) |"),
        "{md}"
    );
    let report = std::fs::read_to_string(res.join("report.md")).unwrap();
    assert!(
        report.contains("- emergence (against N): run")
            && report.contains("- fit approach3: skipped"),
        "{report}"
    );
}

//! `lab train` end to end: learning, exact resume, divergence and bad input.

mod common;

use common::{lab, status, text, tiny_run, write};
use polars::prelude::*;

fn curve(run_dir: &std::path::Path) -> DataFrame {
    common::frame(&run_dir.join("curve.parquet"))
}

fn column(df: &DataFrame, name: &str) -> Vec<f64> {
    common::float_column(df, name)
        .into_iter()
        .map(|v| v.unwrap_or_else(|| panic!("null in {name}")))
        .collect()
}

#[test]
fn short_run_learns_and_records_results() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "run.yaml",
        &tiny_run(150_000, "  eval_every_tokens: 15000\n"),
    );
    let out = lab(
        dir.path(),
        &["train", cfg.to_str().unwrap(), "--out", "run"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let run = dir.path().join("run");
    let s = status(&run);
    assert_eq!(s["status"], "done");
    let df = curve(&run);
    let val = column(&df, "val_loss");
    assert!(val.len() >= 10, "{val:?}");
    let floor = s["entropy_floor"].as_f64().unwrap();
    // A margin stated in the README: validation loss falls by at least 1 nat from ln(64) = 4.16 in
    // 150k tokens, and never goes below the corpus's entropy floor.
    assert!(val[val.len() - 1] < 64f64.ln() - 1.0, "val {val:?}");
    assert!(
        val.iter().all(|&v| v > floor - 0.02),
        "below floor {floor}: {val:?}"
    );
    assert!(val[val.len() - 1] < val[0], "{val:?}");
    assert_eq!(s["tokens"].as_u64().unwrap() % (8 * 32), 0);
    let acc = &s["accounting"];
    assert!(acc["params_total"].as_u64().unwrap() > acc["params_nonembedding"].as_u64().unwrap());
    assert!(run.join("run.yaml").exists() && run.join("ckpt/model.bin").exists());
}

#[test]
fn resume_continues_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let cfg_text = tiny_run(20_480, "  eval_every_tokens: 2048\n");
    let cfg_text = cfg_text.replace("  seq_len: 32\n", "  seq_len: 32\n  dropout: 0.1\n");
    let cfg = write(dir.path(), "run.yaml", &cfg_text);
    let c = cfg.to_str().unwrap();
    let full = lab(dir.path(), &["train", c, "--out", "full"]);
    assert!(full.status.success(), "{}", text(&full));
    let part = lab(
        dir.path(),
        &["train", c, "--out", "part", "--max-steps", "33"],
    );
    assert_eq!(part.status.code(), Some(130), "{}", text(&part));
    assert_eq!(status(&dir.path().join("part"))["status"], "running");
    let again = lab(dir.path(), &["train", c, "--out", "part"]);
    assert_eq!(
        again.status.code(),
        Some(2),
        "a checkpoint without --resume is refused: {}",
        text(&again)
    );
    let resumed = lab(dir.path(), &["train", c, "--out", "part", "--resume"]);
    assert!(resumed.status.success(), "{}", text(&resumed));
    let (a, b) = (
        curve(&dir.path().join("full")),
        curve(&dir.path().join("part")),
    );
    for col in ["step", "tokens", "train_loss", "val_loss", "grad_norm"] {
        assert_eq!(
            column(&a, col),
            column(&b, col),
            "column {col} differs after resume"
        );
    }
}

#[test]
fn divergence_is_recorded_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "run.yaml",
        &tiny_run(8192, "  grad_clip: 0\n").replace("lr: 0.003", "lr: 1.0e30"),
    );
    let out = lab(
        dir.path(),
        &["train", cfg.to_str().unwrap(), "--out", "run"],
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let s = status(&dir.path().join("run"));
    assert_eq!(s["status"], "diverged");
    assert!(s["reason"].as_str().unwrap().contains("loss"), "{s}");
}

/// Each bad input: exit code 2, a message naming the key (and line when it is in the file), nothing written.
#[test]
fn bad_input_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let base = tiny_run(1000, "");
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "unknown key",
            base.replace("  lr: 0.003", "  lr: 0.003\n  learning_rate: 0.1"),
            "learning_rate",
        ),
        (
            "wrong type",
            base.replace("n_layer: 2", "n_layer: two"),
            "n_layer",
        ),
        (
            "indivisible heads",
            base.replace("n_head: 4", "n_head: 5"),
            "model.n_head",
        ),
        (
            "missing corpus",
            base.replace(
                "  source: synthetic",
                "  source: text\n  text:\n    path: no/such/corpus",
            )
            .replace("vocab: 64", "vocab: 256"),
            "data.text.path",
        ),
        (
            "vocab too small",
            base.replace("vocab: 64", "vocab: 10"),
            "model.vocab",
        ),
        (
            "key/value heads that do not divide the heads",
            base.replace("n_head: 4", "n_head: 4\n  n_kv_head: 3"),
            "model.n_kv_head",
        ),
        (
            "length evaluation past the rotary tables",
            base.replace("  lr: 0.003", "  lr: 0.003\n  length_eval: [2, 8]"),
            "train.length_eval",
        ),
    ];
    for (what, yaml, key) in cases {
        let cfg = write(dir.path(), "bad.yaml", &yaml);
        let out = lab(
            dir.path(),
            &["train", cfg.to_str().unwrap(), "--out", "never"],
        );
        let msg = text(&out);
        assert_eq!(out.status.code(), Some(2), "{what}: {msg}");
        assert!(
            msg.contains(key),
            "{what}: message does not name {key}: {msg}"
        );
        assert!(
            msg.contains("bad.yaml"),
            "{what}: message does not name the file: {msg}"
        );
        assert!(!msg.contains("panicked"), "{what}: {msg}");
        assert!(
            !dir.path().join("never").exists(),
            "{what}: something was written"
        );
    }
    // Line numbers for keys found in the file.
    let cfg = write(
        dir.path(),
        "bad.yaml",
        &base.replace("n_head: 4", "n_head: 5"),
    );
    let msg = text(&lab(dir.path(), &["train", cfg.to_str().unwrap()]));
    assert!(msg.contains("bad.yaml:5"), "{msg}");
}

/// Gradient accumulation: two micro-batches of 4 give the same training as one batch of 8 (up to
/// float summation order).
#[test]
fn gradient_accumulation_matches_the_full_batch() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "run.yaml",
        &tiny_run(20_480, "  eval_every_tokens: 10240\n"),
    );
    let c = cfg.to_str().unwrap();
    let full = lab(dir.path(), &["train", c, "--out", "full"]);
    assert!(full.status.success(), "{}", text(&full));
    let acc = lab(
        dir.path(),
        &["train", c, "--out", "acc", "--set", "train.micro_batch=4"],
    );
    assert!(acc.status.success(), "{}", text(&acc));
    let (a, b) = (
        curve(&dir.path().join("full")),
        curve(&dir.path().join("acc")),
    );
    for col in ["train_loss", "val_loss"] {
        for (x, y) in column(&a, col).iter().zip(column(&b, col)) {
            assert!((x - y).abs() < 2e-3 * x.abs(), "{col}: {x} vs {y}");
        }
    }
}

/// Trains `cfg` into `part`, stopping after `steps` steps (exit 130), then resumes it to the end.
fn stop_and_resume(dir: &std::path::Path, cfg: &str, steps: &str) {
    let part = lab(dir, &["train", cfg, "--out", "part", "--max-steps", steps]);
    assert_eq!(part.status.code(), Some(130), "{}", text(&part));
    let resumed = lab(dir, &["train", cfg, "--out", "part", "--resume"]);
    assert!(resumed.status.success(), "{}", text(&resumed));
}

/// Writes the tiny run with `model_extra` lines under `model:`, trains it into `full` and returns
/// the config path and the run's status.
fn train_variant(dir: &std::path::Path, model_extra: &str) -> (String, serde_json::Value) {
    let cfg_text = tiny_run(20_480, "  eval_every_tokens: 5120\n")
        .replace("  seq_len: 32\n", &format!("  seq_len: 32\n{model_extra}"));
    let cfg = write(dir, "run.yaml", &cfg_text);
    let c = cfg.to_str().unwrap().to_string();
    let full = lab(dir, &["train", &c, "--out", "full"]);
    assert!(full.status.success(), "{}", text(&full));
    (c, status(&dir.join("full")))
}

/// A prefix decoder trains, counts only its targets as loss tokens, resumes exactly and gives the
/// same losses with gradient accumulation (losses are normalised by the step's loss tokens).
#[test]
fn prefix_decoder_trains_resumes_and_counts_loss_tokens() {
    prefix_model_trains_resumes_and_counts_loss_tokens("  arch: prefix\n");
}

/// The same for an encoder-decoder reading the prefix (its micro-batches hold padded inputs of
/// different lengths, empty ones included, and ragged decoder rows).
#[test]
fn encoder_decoder_trains_resumes_and_counts_loss_tokens() {
    prefix_model_trains_resumes_and_counts_loss_tokens(
        "  arch: encoder_decoder\n  encoder: {n_layer: 1, d_model: 24, share_embedding: false}\n",
    );
}

/// A model of `arch_lines` with prefixes of 0 to 16 tokens: see the two tests above.
fn prefix_model_trains_resumes_and_counts_loss_tokens(arch_lines: &str) {
    let dir = tempfile::tempdir().unwrap();
    let model = format!("{arch_lines}  prefix: {{min: 0, max: 16}}\n");
    let (c, s) = train_variant(dir.path(), &model);
    let c = c.as_str();
    let (tokens, loss_tokens) = (
        s["tokens"].as_u64().unwrap() as f64,
        s["loss_tokens"].as_u64().unwrap() as f64,
    );
    // Prefix p ~ U{0..16}: a sequence of 32 has 32 - max(p - 1, 0) targets, 32 - 120/17 on average.
    let expected = 1.0 - (120.0 / 17.0) / 32.0;
    assert!(
        (loss_tokens / tokens - expected).abs() < 0.03,
        "loss tokens {loss_tokens} of {tokens} (expected ratio {expected:.3})"
    );
    let val = column(&curve(&dir.path().join("full")), "val_loss");
    assert!(
        val[val.len() - 1] < val[0] && val[0] < 64f64.ln() + 0.3,
        "{val:?}"
    );
    stop_and_resume(dir.path(), c, "31");
    let acc = lab(
        dir.path(),
        &["train", c, "--out", "acc", "--set", "train.micro_batch=2"],
    );
    assert!(acc.status.success(), "{}", text(&acc));
    let a = curve(&dir.path().join("full"));
    assert_eq!(
        column(&a, "val_loss"),
        column(&curve(&dir.path().join("part")), "val_loss"),
        "resume"
    );
    assert_eq!(
        status(&dir.path().join("part"))["loss_tokens"],
        s["loss_tokens"]
    );
    for (x, y) in column(&a, "train_loss")
        .iter()
        .zip(column(&curve(&dir.path().join("acc")), "train_loss"))
    {
        assert!((x - y).abs() < 2e-3 * x.abs(), "accumulation: {x} vs {y}");
    }
}

/// Span corruption trains an encoder-decoder with loss on its targets only (2 sentinels and 4
/// corrupted tokens of each 33-token window), has no known floor, and at rate 0 is language
/// modelling: the validation losses of the run without the section, bit for bit. A prefix that
/// does not match the corruption is refused with the value to use.
#[test]
fn span_corruption_trains_and_at_rate_zero_is_language_modelling() {
    let dir = tempfile::tempdir().unwrap();
    let base = tiny_run(20_480, "  eval_every_tokens: 5120\n").replace(
        "  vocab: 64\n  seq_len: 32\n",
        "  vocab: 66\n  seq_len: 32\n  arch: encoder_decoder\n  prefix: 27\n",
    );
    let objective = |rate: &str| {
        format!("{base}objective:\n  span_corruption: {{rate: {rate}, mean_span: 3}}\n")
    };
    let run = |name: &str, text: &str| {
        let cfg = write(dir.path(), &format!("{name}.yaml"), text);
        lab(dir.path(), &["train", cfg.to_str().unwrap(), "--out", name])
    };
    for (name, yaml) in [
        ("lm", base.clone()),
        ("zero", objective("0")),
        ("sc", objective("0.15")),
    ] {
        let out = run(name, &yaml);
        assert!(out.status.success(), "{name}: {}", text(&out));
    }
    let s = status(&dir.path().join("sc"));
    let ratio = s["loss_tokens"].as_f64().unwrap() / s["tokens"].as_f64().unwrap();
    assert_eq!(ratio, 6.0 / 32.0);
    assert!(s["entropy_floor"].is_null(), "{s}");
    let val = column(&curve(&dir.path().join("sc")), "val_loss");
    // Below the untrained ln 66 = 4.19 by more than a nat, and still falling.
    assert!(
        val[val.len() - 1] < val[0] && val[0] < 66f64.ln() - 1.0,
        "{val:?}"
    );
    assert_eq!(
        column(&curve(&dir.path().join("zero")), "val_loss"),
        column(&curve(&dir.path().join("lm")), "val_loss")
    );
    // A mixture (UL2): half span corruption (inputs of 27), half prefix LM with a 10-token
    // prefix. An encoder-decoder's FLOPs per token are the mean of the two input lengths', and
    // loss falls on 6 tokens of a span-corrupted window, 22 of a prefix-LM one.
    let mixture = format!(
        "{}objective:\n  mixture:\n    - {{weight: 1, span_corruption: {{rate: 0.15, mean_span: 3}}}}\n    - {{weight: 1}}\n",
        base.replace("prefix: 27", "prefix: 10")
    );
    for (name, yaml) in [
        ("mix", mixture),
        ("lm10", base.replace("prefix: 27", "prefix: 10")),
    ] {
        let out = run(name, &yaml);
        assert!(out.status.success(), "{name}: {}", text(&out));
    }
    let fpt = |name: &str| {
        status(&dir.path().join(name))["accounting"]["flops_per_token"]
            .as_f64()
            .unwrap()
    };
    assert_eq!(fpt("mix"), ((fpt("sc") + fpt("lm10")) / 2.0).round());
    assert_ne!(fpt("sc"), fpt("lm10"));
    let m = status(&dir.path().join("mix"));
    let ratio = m["loss_tokens"].as_f64().unwrap() / m["tokens"].as_f64().unwrap();
    assert!(ratio > 6.0 / 32.0 && ratio < 22.0 / 32.0, "{ratio}");
    let bad = run(
        "bad",
        &objective("0.15").replace("prefix: 27", "prefix: 20"),
    );
    assert_eq!(bad.status.code(), Some(2));
    let msg = text(&bad);
    assert!(
        msg.contains("model.prefix") && msg.contains("prefix: 27"),
        "{msg}"
    );
}

fn evals(run_dir: &std::path::Path) -> DataFrame {
    common::frame(&run_dir.join("evals.parquet"))
}

/// Grouped-query attention, DyT in post-norm blocks, ALiBi and two multi-token prediction modules
/// train, resume exactly (curves and the length-generalisation losses), and record the loss at 2x
/// and 4x the training length.
#[test]
fn architecture_knobs_train_resume_exactly_and_read_longer_sequences() {
    let dir = tempfile::tempdir().unwrap();
    let cfg_text = tiny_run(20_480, "  eval_every_tokens: 5120\n  length_eval: [2, 4]\n").replace(
        "  seq_len: 32\n",
        "  seq_len: 32\n  n_kv_head: 2\n  norm: dyt\n  norm_placement: post\n  position: alibi\n  \
         mtp: {depth: 2, weight: 0.3}\n",
    );
    let cfg = write(dir.path(), "run.yaml", &cfg_text);
    let c = cfg.to_str().unwrap();
    let full = lab(dir.path(), &["train", c, "--out", "full"]);
    assert!(full.status.success(), "{}", text(&full));
    let e = evals(&dir.path().join("full"));
    let tasks: Vec<String> = e
        .column("task")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|t| t.unwrap().to_string())
        .collect();
    assert_eq!(tasks, ["length_2x", "length_4x"]);
    let losses = column(&e, "value");
    let val = column(&curve(&dir.path().join("full")), "val_loss");
    // Finite losses below the untrained model's, not far from the training-length loss.
    for l in &losses {
        assert!(
            *l < 64f64.ln() && *l > 0.5 * val[val.len() - 1],
            "{losses:?} vs {val:?}"
        );
    }
    stop_and_resume(dir.path(), c, "23");
    assert_eq!(column(&curve(&dir.path().join("part")), "val_loss"), val);
    assert_eq!(column(&evals(&dir.path().join("part")), "value"), losses);
    // Learned positions stop at the training length: no length rows.
    let learned = cfg_text.replace("position: alibi", "position: learned");
    let cfg = write(dir.path(), "learned.yaml", &learned);
    let out = lab(
        dir.path(),
        &["train", cfg.to_str().unwrap(), "--out", "learned"],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(!dir.path().join("learned/evals.parquet").exists());
}

/// An MoE decoder with bias balancing trains, records its load figures at every evaluation, keeps
/// its selection biases in the checkpoint (resume is exact) and counts all experts in params_total.
#[test]
fn moe_decoder_trains_records_loads_and_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let (c, s) = train_variant(
        dir.path(),
        "  ffn: moe\n  moe: {n_experts: 4, top_k: 1, granularity: 2, n_shared: 1, balance: bias, bias_rate: 0.01}\n",
    );
    let c = c.as_str();
    let acc = &s["accounting"];
    assert!(
        acc["params_total"].as_u64() > acc["params_active"].as_u64(),
        "{acc}"
    );
    let df = curve(&dir.path().join("full"));
    let val = column(&df, "val_loss");
    assert!(val[val.len() - 1] < val[0] - 0.3, "{val:?}");
    let load: Vec<f64> = common::float_column(&df, "max_mean_expert_load")
        .into_iter()
        .map(|v| v.expect("MoE runs record their load"))
        .collect();
    assert!(load.iter().all(|&l| (1.0..=8.0).contains(&l)), "{load:?}");
    let bias = common::float_column(&df, "router_bias_mean_abs");
    assert!(bias.iter().all(|b| b.is_some_and(|b| b > 0.0)), "{bias:?}");
    assert!(common::float_column(&df, "dropped_fraction")
        .iter()
        .all(|d| *d == Some(0.0)));
    stop_and_resume(dir.path(), c, "29");
    let b = curve(&dir.path().join("part"));
    for col in [
        "val_loss",
        "train_loss",
        "max_mean_expert_load",
        "router_bias_mean_abs",
    ] {
        assert_eq!(
            common::float_column(&df, col),
            common::float_column(&b, col),
            "column {col} differs after resume"
        );
    }
}

#[test]
fn mixed_precision_trains_close_to_f32_and_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let mut finals = Vec::new();
    for p in ["f32", "bf16", "f16"] {
        let extra = if p == "f32" {
            "  eval_every_tokens: 20480\n".to_string()
        } else {
            format!("  eval_every_tokens: 20480\n  precision: {p}\n")
        };
        let cfg = write(dir.path(), &format!("{p}.yaml"), &tiny_run(61_440, &extra));
        let out = lab(
            dir.path(),
            &[
                "train",
                cfg.to_str().unwrap(),
                "--out",
                p,
                "--backend",
                "flex",
            ],
        );
        assert!(out.status.success(), "{p}: {}", text(&out));
        let s = status(&dir.path().join(p));
        finals.push(s["final_val_loss"].as_f64().unwrap());
        let saved = std::fs::read_to_string(dir.path().join(p).join("run.yaml")).unwrap();
        // f32 leaves the key out (run ids of older runs stay valid); reduced precision records it.
        assert_eq!(saved.contains("precision"), p != "f32", "{saved}");
    }
    // The same data and initialisation: reduced precision ends close to f32, and learns.
    for (p, v) in ["bf16", "f16"].iter().zip(&finals[1..]) {
        assert!(
            (v - finals[0]).abs() < 0.08,
            "{p}: {v} vs f32 {}",
            finals[0]
        );
    }
    assert!(finals[0] < 64f64.ln() - 0.5, "{finals:?}");
}

/// Names and values of a safetensors file's f32 tensors.
fn safetensors(path: &std::path::Path) -> Vec<(String, Vec<f32>)> {
    let raw = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(raw[..8].try_into().unwrap()) as usize;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&raw[8..8 + n]).unwrap();
    let data = &raw[8 + n..];
    let mut out: Vec<(String, Vec<f32>)> = header
        .iter()
        .map(|(name, meta)| {
            let lo = meta["data_offsets"][0].as_u64().unwrap() as usize;
            let hi = meta["data_offsets"][1].as_u64().unwrap() as usize;
            let values = data[lo..hi]
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                .collect();
            (name.clone(), values)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn trace_records_every_step_the_trainer_took() {
    let dir = tempfile::tempdir().unwrap();
    // 20 steps of 8 x 32 tokens, evaluated every 5 steps.
    let cfg = write(
        dir.path(),
        "run.yaml",
        &tiny_run(5_120, "  eval_every_tokens: 1280\n  warmup: 0.1\n"),
    );
    let c = cfg.to_str().unwrap();
    let out = lab(
        dir.path(),
        &["train", c, "--out", "run", "--trace", "trace"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let trace = dir.path().join("trace");
    let steps: Vec<serde_json::Value> = std::fs::read_to_string(trace.join("steps.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(steps.len(), 20);
    for (i, s) in steps.iter().enumerate() {
        assert_eq!(s["step"], i);
        let rows = s["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 8);
        assert!(rows.iter().all(|r| r.as_array().unwrap().len() == 33));
        assert_eq!(s["prefix"], serde_json::json!([0, 0, 0, 0, 0, 0, 0, 0]));
    }
    // Warmup of 2 steps: lr * (step + 1) / 2.
    assert!((steps[0]["lr"].as_f64().unwrap() - 0.0015).abs() < 1e-12);
    assert!((steps[1]["lr"].as_f64().unwrap() - 0.003).abs() < 1e-12);
    // The curve's training loss is the mean of the traced losses since the previous evaluation.
    let train_loss = column(&curve(&dir.path().join("run")), "train_loss");
    assert_eq!(train_loss.len(), 4);
    for (k, recorded) in train_loss.iter().enumerate() {
        let mean = steps[5 * k..5 * k + 5]
            .iter()
            .map(|s| s["loss"].as_f64().unwrap())
            .sum::<f64>()
            / 5.0;
        assert!((mean - recorded).abs() < 1e-9, "{k}: {mean} vs {recorded}");
    }
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(trace.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["model"]["d_model"], 64);
    let (init, last) = (
        safetensors(&trace.join("init.safetensors")),
        safetensors(&trace.join("final.safetensors")),
    );
    let names: Vec<&str> = init.iter().map(|t| t.0.as_str()).collect();
    assert!(names.contains(&"tok.weight") && names.contains(&"blocks.1.attn.qkv.weight"));
    assert_eq!(names, last.iter().map(|t| t.0.as_str()).collect::<Vec<_>>());
    assert_ne!(init, last, "training moved the parameters");
    // A trace is never overwritten, and a resumed run cannot be traced from its first step.
    let again = lab(
        dir.path(),
        &["train", c, "--out", "run2", "--trace", "trace"],
    );
    assert!(!again.status.success());
    assert!(
        text(&again).contains("already holds a trace"),
        "{}",
        text(&again)
    );
    let stopped = lab(
        dir.path(),
        &["train", c, "--out", "run3", "--max-steps", "3"],
    );
    assert_eq!(stopped.status.code(), Some(130), "{}", text(&stopped));
    let resumed = lab(
        dir.path(),
        &["train", c, "--out", "run3", "--resume", "--trace", "t3"],
    );
    assert_eq!(resumed.status.code(), Some(2), "{}", text(&resumed));
    assert!(text(&resumed).contains("--trace"), "{}", text(&resumed));
}

//! The trainer: one run of a decoder on a corpus, with evaluation, checkpoints, resume and
//! divergence handling, leaving its results folder behind.

pub mod batch;
pub mod checkpoint;
pub mod objective;
pub mod optim;
pub mod params;
pub mod routing;
pub mod scaling;
pub mod schedule;
pub mod trace;

use crate::backend;
use crate::config::RunConfig;
use crate::data::Corpus;
use crate::error::{LabError, LabResult};
use crate::results::{
    curve_frame, eval_frame, write_atomic, write_parquet, CurveRow, EvalRow, RunDir, RunStatus,
    Status,
};
use crate::tasks::eval::{evaluate_suite, held_out};
use anyhow::Context;
use batch::{loss_positions, Batch};
use burn::module::Module;
use burn::optim::GradientsParams;
use burn::prelude::*;
use checkpoint::{Checkpoint, TrainerState};
use indicatif::ProgressBar;
use models::{Decoder, LayerStats};
use optim::{AdamW, AdamWSettings};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// How to run the trainer.
#[derive(Clone)]
pub struct TrainOptions {
    /// Backend name.
    pub backend: String,
    /// GPU index for GPU backends.
    pub device_index: usize,
    /// The run's folder.
    pub out: PathBuf,
    /// Continue from the checkpoint in `out` if there is one.
    pub resume: bool,
    /// The config file, for error messages.
    pub config_file: PathBuf,
    /// Progress display (hidden for tests).
    pub progress: ProgressBar,
    /// Set to stop at the next step boundary (signals); the run checkpoints and returns `Running`.
    pub stop: Arc<AtomicBool>,
    /// Stop after this many steps in this attempt (for tests of resume); checkpoints like a signal.
    pub max_steps_this_attempt: Option<u64>,
    /// Record every step into this folder ([`trace`]) for a parity check; a fresh run only.
    pub trace: Option<PathBuf>,
}

/// Validation loss over the run's fixed validation batches: `eval_batches` batches of `batch_size`
/// sequences drawn from the data seed (the same for every run of a sweep), run in micro-batches,
/// averaged over loss-bearing tokens; with the MoE routing statistics of those batches.
pub fn evaluate(
    model: &Decoder,
    corpus: &Corpus,
    cfg: &RunConfig,
    biases: &[Vec<f32>],
    device: &Device,
) -> (f64, Vec<LayerStats>) {
    evaluate_at(model, corpus, cfg, biases, device, cfg.model.seq_len)
}

/// [`evaluate`] on validation sequences of `seq` tokens (the run's own length, or a multiple of it
/// for the length-generalisation check).
fn evaluate_at(
    model: &Decoder,
    corpus: &Corpus,
    cfg: &RunConfig,
    biases: &[Vec<f32>],
    device: &Device,
    seq: usize,
) -> (f64, Vec<LayerStats>) {
    let mb = cfg.train.micro_batch();
    let mut total = 0.0;
    let mut count = 0;
    let mut stats = Vec::new();
    for (batch, prefix) in validation_batches(corpus, cfg, seq) {
        for (rows, lens) in batch.chunks_exact(mb * (seq + 1)).zip(prefix.chunks(mb)) {
            let b = Batch::new(rows, lens, seq, cfg.model.arch, device);
            let pass = b.evaluate(model, biases, cfg.train.precision());
            let summed: f32 = pass.ce.into_scalar();
            total += summed as f64;
            count += b.loss_tokens;
            routing::accumulate(&mut stats, &pass.stats);
        }
    }
    (total / count as f64, stats)
}

/// The run's validation batches (rows of `seq + 1` tokens and their prefix lengths): `eval_batches`
/// batches of `batch_size` sequences drawn from the data seed, the same for every run of a sweep.
fn validation_batches(corpus: &Corpus, cfg: &RunConfig, seq: usize) -> Vec<(Vec<i64>, Vec<usize>)> {
    let val_seed = cfg.data.seed ^ 0x005E_ED0F_7A11;
    (0..cfg.train.eval_batches)
        .map(|i| {
            let mut rows = corpus.val_rows(val_seed, i, cfg.train.batch_size, seq);
            let prefix = cfg
                .objective()
                .apply(&cfg.model, val_seed, i as u64, &mut rows, seq);
            (rows, prefix)
        })
        .collect()
}

/// The length-generalisation rows of a finished run: the validation loss `loss_at(k)` on
/// sequences k times the training length for each k of `train.length_eval`, as task `length_<k>x`;
/// none for learned positions, which stop at the training length.
fn length_generalisation(
    cfg: &RunConfig,
    state: &TrainerState,
    flops_per_token: u64,
    loss_at: impl Fn(usize) -> f64,
) -> Vec<EvalRow> {
    if !cfg.model.position.extends_past_training_length() {
        return Vec::new();
    }
    cfg.train
        .length_eval
        .iter()
        .map(|&k| EvalRow {
            step: state.step,
            tokens: state.tokens,
            compute: flops_per_token as f64 * state.tokens as f64,
            task: format!("length_{k}x"),
            metric: "loss".into(),
            value: loss_at(k),
            n_examples: (cfg.train.eval_batches * cfg.train.batch_size) as u64,
            ci_lo: None,
            ci_hi: None,
        })
        .collect()
}

/// The run's irreducible validation loss, when the corpus's process is known: the exact predictor's
/// loss on the very windows and targets the validation loss is measured on, so that a fitted E can
/// be compared with it free of the validation set's sampling noise. None under span corruption,
/// whose targets (sentinels, then spans read bidirectionally around them) the corpus's predictor
/// does not describe.
fn validation_floor(corpus: &Corpus, cfg: &RunConfig) -> Option<f64> {
    if !cfg.objective().is_language_modelling() {
        return None;
    }
    let batches = validation_batches(corpus, cfg, cfg.model.seq_len);
    let seq = cfg.model.seq_len;
    corpus.ideal_loss(
        batches
            .iter()
            .flat_map(|(rows, prefix)| rows.chunks_exact(seq + 1).zip(prefix.iter().copied())),
    )
}

/// Seed of step `step`'s dropout masks: a fixed function of the run seed and the step, so that a
/// resumed run draws the same masks.
fn step_seed(seed: u64, step: u64) -> u64 {
    (seed ^ 0x9E37_79B9_7F4A_7C15)
        .wrapping_mul(step.wrapping_add(1))
        .rotate_left(17)
}

/// Every how many tokens to evaluate and to checkpoint.
/// How many times a run evaluates: at every `eval_every_tokens` crossed and at its last step.
pub fn evaluations(cfg: &RunConfig) -> u64 {
    let total = cfg.steps() * cfg.tokens_per_step();
    total.div_ceil(intervals(cfg).0.max(1))
}

fn intervals(cfg: &RunConfig) -> (u64, u64) {
    let total = cfg.steps() * cfg.tokens_per_step();
    let eval = cfg.train.eval_every_tokens.unwrap_or((total / 20).max(1));
    let ckpt = cfg
        .train
        .checkpoint_every_tokens
        .unwrap_or((total / 10).max(1));
    (eval, ckpt)
}

/// The run's compute precision, checked against the device: a dtype the backend cannot compute in
/// is an error naming `train.precision`.
fn checked_precision(
    cfg: &RunConfig,
    backend_name: &str,
    device: &Device,
    config_file: &std::path::Path,
) -> LabResult<models::Precision> {
    let p = cfg.train.precision();
    if p != models::Precision::F32 && !device.supports_dtype(p.dtype()) {
        return Err(LabError::input(
            config_file,
            None,
            format!(
                "train.precision: {} is not supported for computation by backend '{backend_name}' ({}); use f32{}",
                p.as_str(),
                backend::describe(device),
                if p == models::Precision::F16 { " or bf16" } else { " or f16" }
            ),
        ));
    }
    Ok(p)
}

/// Takes the run's folder lock, waiting (with a message) while another process trains it, e.g. an
/// orphan of a killed sweep that is writing its checkpoint.
fn lock_run(dir: &RunDir) -> LabResult<std::fs::File> {
    use fs2::FileExt;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.0.join(".lock"))?;
    if f.try_lock_exclusive().is_err() {
        eprintln!("waiting for another process training {}", dir.0.display());
        f.lock_exclusive()?;
    }
    Ok(f)
}

/// Progress as machine-readable lines on stderr (`@progress step steps message`), for a sweep's
/// executor; enabled by LAB_PROGRESS=lines.
fn progress_lines() -> bool {
    std::env::var("LAB_PROGRESS").is_ok_and(|v| v == "lines")
}

/// The folder of the branch-point checkpoint a trunk in `run_dir` saves at `step`.
pub fn branch_point(run_dir: &std::path::Path, step: u64) -> PathBuf {
    run_dir.join("branch-points").join(step.to_string())
}

/// A cooldown branch's starting state: its trunk's checkpoint at the fork step (the trunk's folder
/// is a sibling of the branch's), taken over under the branch's id with the trunk's wall time
/// left behind (it is the trunk's).
fn fork(
    dir: &RunDir,
    b: &crate::config::BranchFrom,
    id: &str,
    config_file: &std::path::Path,
) -> LabResult<Checkpoint> {
    let trunk_dir = dir.0.parent().unwrap_or(&dir.0).join(&b.trunk);
    let at = branch_point(&trunk_dir, b.step);
    let Some(mut ck) = checkpoint::load(&at)? else {
        return Err(LabError::input(
            config_file,
            None,
            format!(
                "train.branch: trunk {} has no checkpoint at step {} ({} is missing); train the trunk first",
                b.trunk,
                b.step,
                at.display()
            ),
        ));
    };
    if ck.state.id != b.trunk || ck.state.step != b.step {
        return Err(anyhow::anyhow!(
            "{} holds run {} at step {}, not trunk {} at step {}",
            at.display(),
            ck.state.id,
            ck.state.step,
            b.trunk,
            b.step
        )
        .into());
    }
    ck.state.id = id.to_string();
    ck.state.wall_seconds = 0.0;
    Ok(ck)
}

/// Trains one run. Returns its final status (`Running` when stopped by a signal or a step limit,
/// with a checkpoint to resume from).
pub fn train(cfg: &RunConfig, opts: &TrainOptions) -> LabResult<RunStatus> {
    let dir = RunDir(opts.out.clone());
    let id = cfg.id();
    let corpus = Corpus::open(&cfg.data, cfg.model.seq_len, &opts.config_file)?;
    if corpus.vocab() > cfg.model.vocab {
        return Err(LabError::input(
            &opts.config_file,
            None,
            format!(
                "model.vocab: the corpus uses {} token ids but model.vocab is {}",
                corpus.vocab(),
                cfg.model.vocab
            ),
        ));
    }
    if let Some(t) = &opts.trace {
        trace::ensure_new(t)?;
    }
    std::fs::create_dir_all(&dir.0)?;
    let _lock = lock_run(&dir)?;
    let yaml = serde_yaml::to_string(cfg).context("serialising run config")?;
    if let Ok(existing) = std::fs::read_to_string(dir.config()) {
        if existing != yaml {
            return Err(LabError::input(
                &opts.config_file,
                None,
                format!(
                    "{} holds a different run's config; choose another --out",
                    dir.0.display()
                ),
            ));
        }
    }
    if let Some(s) = dir.read_status()? {
        if s.status == Status::Done {
            return Ok(s);
        }
    }
    let own = checkpoint::load(&dir.ckpt())?;
    if own.is_some() && !opts.resume {
        return Err(LabError::input(
            &opts.config_file,
            None,
            format!(
                "{} has a checkpoint: pass --resume to continue it, or choose another --out",
                dir.0.display()
            ),
        ));
    }
    if opts.trace.is_some() && (own.is_some() || cfg.train.branch.is_some()) {
        return Err(LabError::input(
            &opts.config_file,
            None,
            "--trace records a run from its first step: it needs a fresh run, not a resumed one or a branch".to_string(),
        ));
    }
    let prior = match (own, &cfg.train.branch) {
        (Some(ck), _) => Some(ck),
        (None, Some(b)) => Some(fork(&dir, b, &id, &opts.config_file)?),
        (None, None) => None,
    };
    write_atomic(&dir.config(), yaml.as_bytes())?;

    let device = backend::device(&opts.backend, opts.device_index)?;
    let precision = checked_precision(cfg, &opts.backend, &device, &opts.config_file)?;
    let device = device.autodiff();
    device.seed(cfg.train.seed);
    let acc = cfg.accounting();
    let mut model = Decoder::new(&cfg.model, &device);
    let t = &cfg.train;
    let mut optim = AdamW::new(AdamWSettings {
        beta1: t.beta1,
        beta2: t.beta2,
        eps: t.eps,
        weight_decay: t.weight_decay,
        decay_all: t.decay_all,
    });
    let mut state = TrainerState {
        step: 0,
        tokens: 0,
        loss_tokens: 0,
        biases: routing::initial_biases(&cfg.model),
        curve: Vec::new(),
        evals: Vec::new(),
        loss_sum: 0.0,
        loss_count: 0,
        wall_seconds: 0.0,
        id: id.clone(),
        loss_scale: scaling::LossScale::new(precision.needs_loss_scaling()),
    };
    if let Some(ck) = prior {
        if ck.state.id != id {
            return Err(anyhow::anyhow!(
                "checkpoint in {} belongs to run {}",
                dir.ckpt().display(),
                ck.state.id
            )
            .into());
        }
        model = params::import(model, &ck.model).map_err(|m| anyhow::anyhow!(m))?;
        optim
            .import(ck.state.step, &ck.optim, &device)
            .map_err(|m| anyhow::anyhow!(m))?;
        state = ck.state;
    }

    let steps = cfg.steps();
    let tps = cfg.tokens_per_step();
    let (eval_every, ckpt_every) = intervals(cfg);
    let (mb, seq) = (t.micro_batch(), cfg.model.seq_len);
    let mut status = RunStatus::start(id.clone(), steps, &opts.backend, acc);
    status.record_progress(
        state.step,
        state.tokens,
        state.loss_tokens,
        state.wall_seconds,
    );
    status.best_val_loss = state.curve.iter().map(|r| r.val_loss).reduce(f64::min);
    status.entropy_floor = validation_floor(&corpus, cfg);
    status.unique_tokens = corpus.unique_train_tokens();
    status.device = backend::describe(&device);
    dir.write_status(&status)?;

    let task_examples = cfg.tasks.as_ref().map(held_out).unwrap_or_default();
    let pb = &opts.progress;
    pb.set_length(steps);
    pb.set_position(state.step);
    let started = Instant::now();
    let first_step = state.step;
    let lines = progress_lines();
    let line_every = (steps / 100).max(1);
    let mut message = String::new();
    let mut trace = match &opts.trace {
        Some(d) => Some(trace::Trace::create(d, cfg, &params::export(&model))?),
        None => None,
    };
    let save_ckpt = |model: &Decoder, optim: &AdamW, state: &TrainerState| -> LabResult<()> {
        checkpoint::save(
            &dir.ckpt(),
            &Checkpoint {
                state: state.clone(),
                model: params::export(model),
                optim: optim.export(),
            },
        )
    };

    while state.step < steps {
        let step = state.step;
        device.seed(step_seed(t.seed, step));
        let lr = schedule::lr_at(t, step, steps);
        let mut grads = GradientsParams::new();
        let mut step_loss = 0.0;
        // The step's data does not depend on how it is split into micro-batches.
        let mut step_rows = corpus.train_rows(t.seed, step, t.batch_size, seq);
        if let Some(tasks) = &cfg.tasks {
            tasks.mix_into(&mut step_rows, step, seq);
        }
        let prefix = cfg
            .objective()
            .apply(&cfg.model, t.seed, step, &mut step_rows, seq);
        let step_loss_tokens: usize = prefix.iter().map(|&p| loss_positions(p, seq)).sum();
        let mut step_stats = Vec::new();
        for (rows, lens) in step_rows
            .chunks_exact(mb * (seq + 1))
            .zip(prefix.chunks(mb))
        {
            let pass = Batch::new(rows, lens, seq, cfg.model.arch, &device).forward(
                &model,
                step_loss_tokens,
                &state.biases,
                precision,
            );
            routing::accumulate(&mut step_stats, &pass.stats);
            let g = pass.objective.mul_scalar(state.loss_scale.scale).backward();
            let v: f32 = pass.ce.into_scalar();
            step_loss += v as f64;
            params::accumulate(&model, &mut grads, GradientsParams::from_grads(g, &model));
        }
        if !step_loss.is_finite() {
            status.status = Status::Diverged;
            status.reason = Some(format!("loss {step_loss} at step {step}"));
            break;
        }
        let loss_scale = state.loss_scale.scale;
        let gnorm = params::grad_norm(&model, &grads) / loss_scale;
        let scale = if t.grad_clip > 0.0 && gnorm > t.grad_clip {
            t.grad_clip / gnorm
        } else {
            1.0
        };
        if let Some(tr) = trace.as_mut() {
            tr.step(&trace::StepRecord {
                step,
                lr,
                loss: step_loss,
                grad_norm: gnorm,
                clip_scale: scale,
                rows: step_rows.chunks_exact(seq + 1).collect(),
                prefix: &prefix,
                biases: &state.biases,
            })?;
        }
        // An overflowing f16 step is skipped (its data counts as seen) and the scale halved.
        if state.loss_scale.update(gnorm.is_finite()) {
            model = optim.step(lr, model, grads, scale / loss_scale);
        }
        routing::update_biases(&cfg.model, &mut state.biases, &step_stats);
        state.step += 1;
        state.tokens += tps;
        state.loss_tokens += step_loss_tokens as u64;
        state.loss_sum += step_loss;
        state.loss_count += 1;
        let crossed = |every: u64| state.tokens / every != (state.tokens - tps) / every;
        if crossed(eval_every) || state.step == steps {
            let (val, routing_stats) = evaluate(
                &model.valid(),
                &corpus,
                cfg,
                &state.biases,
                &device.clone().inner(),
            );
            let load = routing::figures(&routing_stats);
            if !val.is_finite() {
                status.status = Status::Diverged;
                status.reason = Some(format!("validation loss {val} at step {}", state.step));
                break;
            }
            state.curve.push(CurveRow {
                step: state.step,
                tokens: state.tokens,
                compute: acc.flops_per_token as f64 * state.tokens as f64,
                train_loss: state.loss_sum / state.loss_count as f64,
                val_loss: val,
                lr,
                grad_norm: gnorm,
                max_mean_expert_load: load.map(|f| f.max_mean_load),
                dropped_fraction: load.map(|f| f.dropped_fraction),
                expert_load_cv: load.map(|f| f.load_cv),
                router_bias_mean_abs: routing::bias_magnitude(&state.biases),
            });
            state.loss_sum = 0.0;
            state.loss_count = 0;
            write_parquet(&dir.curve(), &mut curve_frame(&id, &state.curve)?)?;
            if let Some(tasks) = &cfg.tasks {
                let inner = device.clone().inner();
                let valid = model.valid();
                for m in evaluate_suite(
                    &valid,
                    &cfg.model,
                    tasks,
                    &task_examples,
                    state.step,
                    &inner,
                ) {
                    state.evals.push(EvalRow {
                        step: state.step,
                        tokens: state.tokens,
                        compute: acc.flops_per_token as f64 * state.tokens as f64,
                        task: m.task,
                        metric: m.metric.to_string(),
                        value: m.value,
                        n_examples: m.n_examples as u64,
                        ci_lo: m.ci.map(|c| c.0),
                        ci_hi: m.ci.map(|c| c.1),
                    });
                }
                write_parquet(&dir.evals(), &mut eval_frame(&id, &state.evals)?)?;
            }
            message = format!("loss {step_loss:.4} val {val:.4}");
            pb.set_message(message.clone());
        }
        if t.save_at.contains(&state.step) {
            let mut s = state.clone();
            s.wall_seconds += started.elapsed().as_secs_f64();
            checkpoint::save(
                &branch_point(&dir.0, state.step),
                &Checkpoint {
                    state: s,
                    model: params::export(&model),
                    optim: optim.export(),
                },
            )?;
        }
        pb.set_position(state.step);
        if lines && (state.step.is_multiple_of(line_every) || state.step == steps) {
            eprintln!("@progress {} {steps} {message}", state.step);
        }
        let stop = opts.stop.load(Ordering::SeqCst)
            || opts
                .max_steps_this_attempt
                .is_some_and(|m| state.step - first_step >= m);
        if stop && state.step < steps {
            state.wall_seconds += started.elapsed().as_secs_f64();
            save_ckpt(&model, &optim, &state)?;
            status.reason = Some(format!(
                "stopped at step {} of {steps}; resume to continue",
                state.step
            ));
            status.record_progress(
                state.step,
                state.tokens,
                state.loss_tokens,
                state.wall_seconds,
            );
            dir.write_status(&status)?;
            return Ok(status);
        }
        if crossed(ckpt_every) && state.step < steps {
            let mut s = state.clone();
            s.wall_seconds += started.elapsed().as_secs_f64();
            save_ckpt(&model, &optim, &s)?;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    status.record_progress(
        state.step,
        state.tokens,
        state.loss_tokens,
        state.wall_seconds + elapsed,
    );
    status.tokens_per_second = ((state.step - first_step) * tps) as f64 / elapsed.max(1e-9);
    status.final_train_loss = state.curve.last().map(|r| r.train_loss);
    status.final_val_loss = state.curve.last().map(|r| r.val_loss);
    status.best_val_loss = state.curve.iter().map(|r| r.val_loss).reduce(f64::min);
    if status.status == Status::Running {
        let at = |k: usize| {
            let seq = k * cfg.model.seq_len;
            let inner = device.clone().inner();
            evaluate_at(&model.valid(), &corpus, cfg, &state.biases, &inner, seq).0
        };
        let rows = length_generalisation(cfg, &state, acc.flops_per_token, at);
        if !rows.is_empty() {
            state.evals.extend(rows);
            write_parquet(&dir.evals(), &mut eval_frame(&id, &state.evals)?)?;
        }
        status.status = Status::Done;
        status.reason = None;
    }
    if let Some(tr) = trace {
        tr.finish(&params::export(&model))?;
    }
    write_parquet(&dir.curve(), &mut curve_frame(&id, &state.curve)?)?;
    dir.write_status(&status)?;
    pb.finish();
    Ok(status)
}

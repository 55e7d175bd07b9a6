//! The run configuration (`run.yaml`): model, data and training settings, loaded with line-accurate
//! errors and `--set key=value` overrides.

use crate::data::DataConfig;
use crate::error::{LabError, LabResult};
use crate::train::objective::ObjectiveConfig;
use models::{ModelConfig, Precision};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;

/// Learning-rate schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// Linear warmup, then cosine decay to `min_lr_ratio` x lr.
    #[default]
    Cosine,
    /// Warmup-stable-decay: warmup, constant, then a cooldown over the last `cooldown` fraction of steps.
    Wsd,
    /// Warmup, then constant.
    Constant,
}

/// Shape of the WSD cooldown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum CooldownShape {
    /// Linear to the floor.
    Linear,
    /// 1 - sqrt: lr = floor + (lr - floor)(1 - sqrt(progress)) (Hägele et al. 2024).
    #[default]
    Sqrt,
}

/// Training settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Tokens to train on (rounded up to whole optimizer steps).
    pub tokens: u64,
    /// Sequences per optimizer step.
    #[serde(default = "d_batch")]
    pub batch_size: usize,
    /// Sequences per forward pass; batch_size must be a multiple (gradient accumulation).
    #[serde(default)]
    pub micro_batch: Option<usize>,
    /// Peak learning rate.
    #[serde(default = "d_lr")]
    pub lr: f64,
    /// Final learning rate as a fraction of the peak.
    #[serde(default = "d_min_lr_ratio")]
    pub min_lr_ratio: f64,
    /// Learning-rate schedule.
    #[serde(default)]
    pub schedule: Schedule,
    /// Warmup as a fraction of the steps.
    #[serde(default = "d_warmup")]
    pub warmup: f64,
    /// WSD cooldown as a fraction of the steps.
    #[serde(default = "d_cooldown")]
    pub cooldown: f64,
    /// WSD cooldown shape.
    #[serde(default)]
    pub cooldown_shape: CooldownShape,
    /// AdamW decoupled weight decay.
    #[serde(default = "d_wd")]
    pub weight_decay: f64,
    /// Apply weight decay to norms, biases and embeddings too.
    #[serde(default)]
    pub decay_all: bool,
    /// AdamW beta1.
    #[serde(default = "d_beta1")]
    pub beta1: f64,
    /// AdamW beta2.
    #[serde(default = "d_beta2")]
    pub beta2: f64,
    /// AdamW epsilon.
    #[serde(default = "d_eps")]
    pub eps: f64,
    /// Clip the global gradient norm to this (0 disables).
    #[serde(default = "d_clip")]
    pub grad_clip: f64,
    /// Evaluate every this many tokens (default: 20 evaluations per run).
    #[serde(default)]
    pub eval_every_tokens: Option<u64>,
    /// Validation batches per evaluation.
    #[serde(default = "d_eval_batches")]
    pub eval_batches: usize,
    /// Length generalisation: after the last step, the validation loss on sequences this many
    /// times `seq_len` long (2 to 4), recorded in evals.parquet as task `length_<k>x`, metric
    /// `loss`. Skipped for learned positions, which stop at `seq_len`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub length_eval: Vec<usize>,
    /// Checkpoint every this many tokens (default: 10 checkpoints per run). Checkpoints are also written
    /// on SIGINT/SIGTERM.
    #[serde(default)]
    pub checkpoint_every_tokens: Option<u64>,
    /// Seed of initialisation, data order and dropout.
    #[serde(default)]
    pub seed: u64,
    /// Compute precision: f32 (the default), bf16, or f16 with dynamic loss scaling; the
    /// parameters and optimizer state stay f32 (mixed precision). Omitted from the saved config
    /// when unset, so run ids of f32 runs do not change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<Precision>,
    /// Warmup length in optimizer steps, for runs of different lengths that must share one warmup
    /// (a WSD trunk and its cooldown branches); replaces `warmup` (a fraction of the run) when set.
    /// Omitted from the saved config when unset, so existing run ids do not change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup_steps: Option<u64>,
    /// A cooldown branch: the run starts from the checkpoint its trunk saved at `step`, and its WSD
    /// cooldown starts there (see [`BranchFrom`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<BranchFrom>,
    /// Steps at which this run (a trunk) saves a branch-point checkpoint under
    /// `branch-points/<step>/` of its folder, for cooldown branches to start from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub save_at: Vec<u64>,
}

/// Where a cooldown branch starts: its trunk's run id (the trunk's folder is a sibling of the
/// branch's, as in a sweep's `runs/`) and the trunk step it forks at. Everything before the step is
/// the trunk's, bit for bit, so a branch equals an independent WSD run with the same schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BranchFrom {
    /// Run id of the trunk.
    pub trunk: String,
    /// The trunk step the branch starts from: the first step of its cooldown.
    pub step: u64,
}

fn d_batch() -> usize {
    16
}
fn d_lr() -> f64 {
    3e-3
}
fn d_min_lr_ratio() -> f64 {
    0.1
}
fn d_warmup() -> f64 {
    0.05
}
fn d_cooldown() -> f64 {
    0.2
}
fn d_wd() -> f64 {
    0.1
}
fn d_beta1() -> f64 {
    0.9
}
fn d_beta2() -> f64 {
    0.95
}
fn d_eps() -> f64 {
    1e-8
}
fn d_clip() -> f64 {
    1.0
}
fn d_eval_batches() -> usize {
    8
}

/// A complete run: what `lab train` reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Name (the results folder `results/<name>` when no --out is given).
    #[serde(default = "d_name")]
    pub name: String,
    /// Model shape and architecture.
    pub model: ModelConfig,
    /// Training data.
    #[serde(default)]
    pub data: DataConfig,
    /// Optimisation.
    pub train: TrainConfig,
    /// Algorithmic tasks mixed into training and evaluated at every evaluation (emergence studies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks: Option<crate::tasks::TasksConfig>,
    /// The pretraining objective (absent: language modelling).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objective: Option<ObjectiveConfig>,
}

fn d_name() -> String {
    "train".into()
}

impl TrainConfig {
    /// Sequences per forward pass.
    pub fn micro_batch(&self) -> usize {
        self.micro_batch.unwrap_or(self.batch_size)
    }

    /// The compute precision (f32 unless set).
    pub fn precision(&self) -> Precision {
        self.precision.unwrap_or_default()
    }
}

impl RunConfig {
    /// The objective (language modelling when the section is absent).
    pub fn objective(&self) -> ObjectiveConfig {
        self.objective.clone().unwrap_or_default()
    }

    /// The run's parameter and FLOP accounting: the model's, with an encoder-decoder's FLOPs per
    /// token averaged over its objective's denoisers (`ObjectiveConfig::accounting`).
    pub fn accounting(&self) -> models::Accounting {
        self.objective().accounting(&self.model)
    }

    /// Tokens consumed by one optimizer step.
    pub fn tokens_per_step(&self) -> u64 {
        (self.train.batch_size * self.model.seq_len) as u64
    }

    /// Optimizer steps: the token budget rounded up to whole steps.
    pub fn steps(&self) -> u64 {
        self.train.tokens.div_ceil(self.tokens_per_step()).max(1)
    }

    /// Stable id: the first 12 hex digits of SHA-256 of the resolved config's canonical JSON.
    pub fn id(&self) -> String {
        let json = serde_json::to_string(self).expect("config serialises");
        let digest = Sha256::digest(json.as_bytes());
        digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
    }

    /// Checks everything serde cannot; errors name the key.
    pub fn validate(&self) -> Result<(), (String, String)> {
        self.model
            .validate()
            .map_err(|e| (format!("model.{}", e.key), e.message))?;
        self.data
            .validate()
            .map_err(|(k, m)| (format!("data.{k}"), m))?;
        let t = &self.train;
        let err = |k: &str, m: String| Err((format!("train.{k}"), m));
        if t.tokens == 0 {
            return err("tokens", "must be at least 1".into());
        }
        if t.batch_size == 0 {
            return err("batch_size", "must be at least 1".into());
        }
        let mb = t.micro_batch();
        if mb == 0 || !t.batch_size.is_multiple_of(mb) {
            return err(
                "micro_batch",
                format!("must divide batch_size = {}, got {mb}", t.batch_size),
            );
        }
        for (k, v) in [("lr", t.lr), ("eps", t.eps)] {
            if !(v.is_finite() && v > 0.0) {
                return err(k, format!("must be positive, got {v}"));
            }
        }
        for (k, v) in [
            ("warmup", t.warmup),
            ("cooldown", t.cooldown),
            ("min_lr_ratio", t.min_lr_ratio),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return err(k, format!("must be in [0, 1], got {v}"));
            }
        }
        for (k, v) in [("beta1", t.beta1), ("beta2", t.beta2)] {
            if !(0.0..1.0).contains(&v) {
                return err(k, format!("must be in [0, 1), got {v}"));
            }
        }
        if !(t.weight_decay >= 0.0 && t.grad_clip >= 0.0) {
            return err(
                "weight_decay",
                "weight_decay and grad_clip must be >= 0".into(),
            );
        }
        if t.eval_batches == 0 {
            return err("eval_batches", "must be at least 1".into());
        }
        let longest = models::attention::LONGEST_EVAL_FACTOR;
        if let Some(k) = t.length_eval.iter().find(|k| !(2..=longest).contains(*k)) {
            return err(
                "length_eval",
                format!("multiples of seq_len must be 2 to {longest}, got {k}"),
            );
        }
        let steps = self.steps();
        if let Some(b) = &t.branch {
            if t.schedule != Schedule::Wsd {
                return err("branch", "a cooldown branch needs schedule: wsd".into());
            }
            if b.step == 0 || b.step >= steps {
                return err(
                    "branch.step",
                    format!("must be in 1..{steps} (the run's steps), got {}", b.step),
                );
            }
        }
        if let Some(s) = t.save_at.iter().find(|&&s| s == 0 || s > steps) {
            return err(
                "save_at",
                format!("step {s} is outside the run's 1..={steps} steps"),
            );
        }
        if let Some(tasks) = &self.tasks {
            tasks
                .validate(self.model.vocab, self.model.seq_len)
                .map_err(|(k, m)| (format!("tasks.{k}"), m))?;
        }
        let objective = self.objective();
        objective.validate(&self.model, self.data.vocab())?;
        if !objective.is_language_modelling() && !t.length_eval.is_empty() {
            return err(
                "length_eval",
                "the length check measures language modelling; drop it with span corruption".into(),
            );
        }
        if let Some(vocab) = self.data.vocab() {
            if vocab > self.model.vocab {
                return Err((
                    "model.vocab".into(),
                    format!(
                        "the data has {vocab} token ids but the model's vocab is {}",
                        self.model.vocab
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Finds the 1-based line of a dotted key (`train.lr`) in YAML text, by indentation; best effort.
pub fn locate_key(text: &str, dotted: &str) -> Option<usize> {
    let mut parts = dotted.split('.').peekable();
    let mut min_indent = 0usize;
    let mut want = parts.next()?;
    let mut found = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if trimmed.starts_with('#') || trimmed.is_empty() {
            continue;
        }
        if found.is_some() && indent < min_indent {
            return found;
        }
        if indent >= min_indent
            && trimmed
                .strip_prefix(want)
                .is_some_and(|r| r.trim_start().starts_with(':'))
        {
            found = Some(i + 1);
            match parts.next() {
                Some(next) => {
                    want = next;
                    min_indent = indent + 1;
                }
                None => return found,
            }
        }
    }
    found
}

/// Applies `key=value` overrides (value parsed as YAML) to a YAML document.
pub fn apply_overrides(doc: &mut serde_yaml::Value, overrides: &[String]) -> Result<(), String> {
    for o in overrides {
        let (key, value) = o
            .split_once('=')
            .ok_or_else(|| format!("--set {o}: expected key=value"))?;
        let value: serde_yaml::Value = serde_yaml::from_str(value)
            .map_err(|e| format!("--set {o}: value is not YAML: {e}"))?;
        let mut node = &mut *doc;
        for part in key.split('.') {
            if !node.is_mapping() {
                *node = serde_yaml::Value::Mapping(Default::default());
            }
            let map = node.as_mapping_mut().expect("mapping");
            node = map
                .entry(serde_yaml::Value::String(part.into()))
                .or_insert(serde_yaml::Value::Null);
        }
        *node = value;
    }
    Ok(())
}

/// Parses YAML text into `T`, turning serde errors into input errors with the file and line.
pub fn parse_yaml<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> LabResult<T> {
    serde_yaml::from_str(text).map_err(|e| {
        let line = e.location().map(|l| l.line());
        LabError::input(path, line, e.to_string())
    })
}

/// Loads a run config from `path`, applies overrides and validates it.
pub fn load_run(path: &Path, overrides: &[String]) -> LabResult<RunConfig> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| LabError::input(path, None, format!("cannot read: {e}")))?;
    let cfg: RunConfig = parse_yaml(path, &text)?;
    let cfg = if overrides.is_empty() {
        cfg
    } else {
        let mut doc: serde_yaml::Value = parse_yaml(path, &text)?;
        apply_overrides(&mut doc, overrides).map_err(|m| LabError::input(path, None, m))?;
        serde_yaml::from_value(doc)
            .map_err(|e| LabError::input(path, None, format!("after --set: {e}")))?
    };
    check(path, &text, &cfg)?;
    Ok(cfg)
}

/// Validates a parsed run config, locating the offending key in `text`.
pub fn check(path: &Path, text: &str, cfg: &RunConfig) -> LabResult<()> {
    cfg.validate().map_err(|(key, message)| {
        LabError::input(path, locate_key(text, &key), format!("{key}: {message}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = "name: t\nmodel:\n  n_layer: 2\n  d_model: 64\n  n_head: 4\n  vocab: 64\n  seq_len: 32\ntrain:\n  tokens: 1000\n  lr: 0.001\n";

    #[test]
    fn locates_nested_keys() {
        assert_eq!(locate_key(YAML, "model.n_head"), Some(5));
        assert_eq!(locate_key(YAML, "train.lr"), Some(10));
        assert_eq!(locate_key(YAML, "train.batch_size"), Some(8));
    }

    #[test]
    fn overrides_and_ids() {
        let mut doc: serde_yaml::Value = serde_yaml::from_str(YAML).unwrap();
        apply_overrides(
            &mut doc,
            &["train.lr=0.01".into(), "model.d_model=128".into()],
        )
        .unwrap();
        let cfg: RunConfig = serde_yaml::from_value(doc).unwrap();
        assert_eq!(cfg.train.lr, 0.01);
        assert_eq!(cfg.model.d_model, 128);
        let base: RunConfig = serde_yaml::from_str(YAML).unwrap();
        assert_ne!(cfg.id(), base.id());
        assert_eq!(
            base.id(),
            serde_yaml::from_str::<RunConfig>(YAML).unwrap().id()
        );
        assert_eq!(base.id().len(), 12);
    }
}

//! Model configuration: the shape and the architectural choices of a decoder, with validation.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Attention pattern of the decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// Causal decoder: every position attends to itself and earlier positions.
    #[default]
    Causal,
    /// Prefix (non-causal) decoder, as in GLM / U-PaLM: bidirectional attention among the first
    /// `prefix` tokens of a sequence, causal attention for the rest, loss on the rest only.
    Prefix,
    /// Encoder-decoder (T5): a bidirectional encoder reads the first `prefix` tokens of a
    /// sequence, a causal decoder with cross-attention to the encoder's output in every block
    /// predicts the rest (loss on the rest only). `encoder` sets the encoder's shape.
    #[serde(rename = "encoder_decoder")]
    EncoderDecoder,
}

impl Arch {
    /// The name a sweep file and `runs.parquet` use.
    pub fn name(&self) -> &'static str {
        match self {
            Arch::Causal => "causal",
            Arch::Prefix => "prefix",
            Arch::EncoderDecoder => "encoder_decoder",
        }
    }

    /// Whether the first `prefix` tokens of a sequence are inputs without loss.
    pub fn has_prefix(&self) -> bool {
        *self != Arch::Causal
    }
}

/// The encoder of an encoder-decoder: its depth, width, heads and feed-forward width (each the
/// decoder's unless set), and whether it reads the decoder's token embedding.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncoderConfig {
    /// Encoder blocks (default: the decoder's n_layer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_layer: Option<usize>,
    /// Encoder width (default: the decoder's d_model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub d_model: Option<usize>,
    /// Encoder attention heads (default: the decoder's n_head).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_head: Option<usize>,
    /// Encoder feed-forward width (default: the rule of `mlp` on the encoder's width).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub d_ff: Option<usize>,
    /// One token embedding for encoder and decoder (T5); needs equal widths.
    #[serde(default = "yes")]
    pub share_embedding: bool,
}

fn yes() -> bool {
    true
}

impl Default for EncoderConfig {
    fn default() -> Self {
        EncoderConfig {
            n_layer: None,
            d_model: None,
            n_head: None,
            d_ff: None,
            share_embedding: true,
        }
    }
}

/// Prefix length of a prefix decoder: the same for every sequence, or drawn uniformly per sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PrefixLen {
    /// Every sequence has this many prefix tokens.
    Fixed(usize),
    /// Each sequence's prefix length is drawn uniformly from min..=max.
    Range {
        /// Shortest prefix.
        min: usize,
        /// Longest prefix.
        max: usize,
    },
}

impl PrefixLen {
    /// The smallest and largest prefix length.
    pub fn bounds(self) -> (usize, usize) {
        match self {
            PrefixLen::Fixed(p) => (p, p),
            PrefixLen::Range { min, max } => (min, max),
        }
    }
}

/// How positions enter the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Position {
    /// A learned embedding per position, added to the token embedding.
    #[default]
    Learned,
    /// Rotary position embedding applied to queries and keys (no parameters).
    Rope,
    /// Fixed sinusoids added to the token embedding (Vaswani et al. 2017; no parameters).
    Sinusoidal,
    /// Attention linear biases (Press et al. 2022): head h adds -m_h |i - j| to its scores, with
    /// geometric slopes m_h (no parameters).
    Alibi,
    /// No position information (NoPE): a causal decoder infers positions from its mask.
    None,
}

impl Position {
    /// Whether a model with this scheme can read sequences longer than it was trained on (only
    /// learned embeddings stop at `seq_len`).
    pub fn extends_past_training_length(&self) -> bool {
        *self != Position::Learned
    }
}

/// Normalisation layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Norm {
    /// LayerNorm (scale, and a shift when `bias` is on).
    #[default]
    Layernorm,
    /// RMSNorm (scale only).
    Rmsnorm,
    /// Dynamic tanh (Zhu et al. 2025): gamma * tanh(alpha x) + beta, a learned scalar alpha
    /// (initialised at 0.5) and per-channel gamma and beta, with no statistics over the features.
    Dyt,
}

/// Where each block normalises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum NormPlacement {
    /// Pre-norm (GPT-2 on): x + f(norm(x)), and a final norm before the output head.
    #[default]
    Pre,
    /// Post-norm (the original Transformer, BERT): norm(x + f(x)); no final norm, the last block's
    /// output is already normalised.
    Post,
}

impl NormPlacement {
    fn is_pre(&self) -> bool {
        *self == NormPlacement::Pre
    }
}

/// Feed-forward block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mlp {
    /// d_model -> d_ff -> d_model with GELU.
    #[default]
    Gelu,
    /// SwiGLU: (silu(x W1) * x W3) W2.
    Swiglu,
}

/// Feed-forward kind of every block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Ffn {
    /// One dense feed-forward network (`mlp` chooses GELU or SwiGLU).
    #[default]
    Dense,
    /// Mixture of experts (`moe` holds the settings; experts use `mlp`).
    Moe,
}

impl Ffn {
    fn is_dense(&self) -> bool {
        *self == Ffn::Dense
    }
}

/// How the router scores experts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Router {
    /// Softmax over experts; the top-k gates are the softmax scores (DeepSeekMoE).
    #[default]
    Softmax,
    /// Independent sigmoids; the top-k gates are normalised to sum to 1 (DeepSeek-V3).
    Sigmoid,
}

/// Load balancing of the routed experts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Balance {
    /// Expert-level auxiliary loss `aux_weight * E * sum_i f_i P_i` (DeepSeekMoE).
    #[default]
    AuxLoss,
    /// Auxiliary-loss-free: experts are selected on s_i + b_i, gates come from s_i, and b_i moves
    /// by `bias_rate` towards balance after every step (DeepSeek-V3).
    Bias,
    /// No balancing.
    None,
}

/// Mixture-of-experts settings (fine-grained, DeepSeekMoE style).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoeConfig {
    /// Routed experts at granularity 1, each as wide as the dense `d_ff`.
    pub n_experts: usize,
    /// Routed experts per token at granularity 1.
    pub top_k: usize,
    /// Granularity m: each expert is split into m experts of width d_ff / m and m x top_k of the
    /// m x n_experts are active, so total and active parameters do not change with m.
    #[serde(default = "one")]
    pub granularity: usize,
    /// Always-active shared experts, each as wide as `d_ff` (implemented as one FFN of width
    /// n_shared x d_ff).
    #[serde(default)]
    pub n_shared: usize,
    /// Router scoring.
    #[serde(default)]
    pub router: Router,
    /// Weight of the router z-loss, mean (logsumexp of router logits)^2 (0 = off).
    #[serde(default)]
    pub z_loss: f64,
    /// Load balancing.
    #[serde(default)]
    pub balance: Balance,
    /// Weight of the auxiliary balance loss (`balance: aux_loss`).
    #[serde(default = "default_aux_weight")]
    pub aux_weight: f64,
    /// Bias step gamma (`balance: bias`).
    #[serde(default = "default_bias_rate")]
    pub bias_rate: f64,
    /// Capacity factor: each expert takes at most ceil(cf x tokens x k / experts) tokens per
    /// micro-batch, the rest are dropped (pass through the residual). Absent = dropless.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_factor: Option<f64>,
}

fn one() -> usize {
    1
}

fn default_aux_weight() -> f64 {
    0.01
}

fn default_bias_rate() -> f64 {
    0.001
}

impl MoeConfig {
    /// Routed experts after fine-grained segmentation (m x n_experts).
    pub fn experts(&self) -> usize {
        self.n_experts * self.granularity
    }

    /// Routed experts per token after segmentation (m x top_k).
    pub fn active(&self) -> usize {
        self.top_k * self.granularity
    }
}

/// Multi-head latent attention settings (DeepSeek-V2).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlaConfig {
    /// Width of the key/value latent (what a token caches at inference, with its rotary key).
    pub kv_rank: usize,
    /// Width of the query latent.
    pub q_rank: usize,
    /// Decoupled rotary dimensions per head (`position: rope` only; 0 = none).
    #[serde(default)]
    pub rope_dim: usize,
}

/// Multi-token prediction (DeepSeek-V3): `depth` sequential modules, module k predicting the token
/// k + 1 positions ahead from module k - 1's hidden state and the embedding of the token k ahead,
/// sharing the embedding and output head; their mean loss is added with weight `weight`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MtpConfig {
    /// Extra tokens predicted (modules; 0 is the plain next-token model).
    pub depth: usize,
    /// Lambda: the weight of the modules' mean cross-entropy in the objective.
    pub weight: f64,
}

/// The decoder's shape and architecture. Every field has a default except the shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Attention pattern.
    #[serde(default)]
    pub arch: Arch,
    /// Prefix length (required by, and only allowed with, `arch: prefix` and
    /// `arch: encoder_decoder`, whose encoder reads the prefix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<PrefixLen>,
    /// The encoder's shape (`arch: encoder_decoder` only; absent: the decoder's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoder: Option<EncoderConfig>,
    /// Number of transformer blocks.
    pub n_layer: usize,
    /// Residual stream width.
    pub d_model: usize,
    /// Attention heads (d_model must be divisible by n_head).
    pub n_head: usize,
    /// Key/value heads: n_head (the default) is multi-head attention, 1 multi-query attention, and
    /// anything between that divides n_head grouped-query attention (n_head / n_kv_head query heads
    /// share each key/value head).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_kv_head: Option<usize>,
    /// Multi-head latent attention instead of multi-head attention (absent: multi-head).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mla: Option<MlaConfig>,
    /// Feed-forward hidden width; default 4 d_model (GELU) or 8/3 d_model rounded up to a multiple of 8 (SwiGLU).
    #[serde(default)]
    pub d_ff: Option<usize>,
    /// Vocabulary size.
    pub vocab: usize,
    /// Context length in tokens.
    pub seq_len: usize,
    /// Dropout probability on attention weights and residual branches.
    #[serde(default)]
    pub dropout: f64,
    /// Position encoding.
    #[serde(default)]
    pub position: Position,
    /// Normalisation layer.
    #[serde(default)]
    pub norm: Norm,
    /// Pre-norm or post-norm blocks.
    #[serde(default, skip_serializing_if = "NormPlacement::is_pre")]
    pub norm_placement: NormPlacement,
    /// Feed-forward type (and the experts' type for MoE).
    #[serde(default)]
    pub mlp: Mlp,
    /// Dense feed-forward or mixture of experts.
    #[serde(default, skip_serializing_if = "Ffn::is_dense")]
    pub ffn: Ffn,
    /// Mixture-of-experts settings (required by, and only allowed with, `ffn: moe`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moe: Option<MoeConfig>,
    /// Multi-token prediction modules (absent: next-token prediction only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtp: Option<MtpConfig>,
    /// Share the token embedding with the output head.
    #[serde(default)]
    pub tie_embeddings: bool,
    /// Biases in linear layers and LayerNorm shifts.
    #[serde(default)]
    pub bias: bool,
    /// Standard deviation of the normal initialisation (residual projections are scaled by 1/sqrt(2 n_layer)).
    #[serde(default = "default_init_std")]
    pub init_std: f64,
}

fn default_init_std() -> f64 {
    0.02
}

/// A configuration that cannot build a model; names the offending key.
#[derive(Debug, Error, Clone, PartialEq)]
#[error("model.{key}: {message}")]
pub struct ConfigError {
    /// Key under `model`.
    pub key: &'static str,
    /// What is wrong.
    pub message: String,
}

impl ModelConfig {
    /// A causal GELU decoder of the given shape with every other choice at its default.
    pub fn new(
        n_layer: usize,
        d_model: usize,
        n_head: usize,
        vocab: usize,
        seq_len: usize,
    ) -> Self {
        ModelConfig {
            arch: Arch::Causal,
            prefix: None,
            encoder: None,
            n_layer,
            d_model,
            n_head,
            n_kv_head: None,
            mla: None,
            d_ff: None,
            vocab,
            seq_len,
            dropout: 0.0,
            position: Position::Learned,
            norm: Norm::Layernorm,
            norm_placement: NormPlacement::Pre,
            mlp: Mlp::Gelu,
            ffn: Ffn::Dense,
            moe: None,
            mtp: None,
            tie_embeddings: false,
            bias: false,
            init_std: default_init_std(),
        }
    }

    /// The feed-forward width actually used.
    pub fn d_ff(&self) -> usize {
        self.d_ff.unwrap_or(match self.mlp {
            Mlp::Gelu => 4 * self.d_model,
            Mlp::Swiglu => (8 * self.d_model).div_ceil(3).div_ceil(8) * 8,
        })
    }

    /// Hidden width of one routed expert (d_ff / granularity), or d_ff for a dense model.
    pub fn d_expert(&self) -> usize {
        match &self.moe {
            Some(m) if self.ffn == Ffn::Moe => self.d_ff() / m.granularity.max(1),
            _ => self.d_ff(),
        }
    }

    /// The MoE settings when the feed-forward is a mixture of experts.
    pub fn moe(&self) -> Option<&MoeConfig> {
        self.moe.as_ref().filter(|_| self.ffn == Ffn::Moe)
    }

    /// Width of one attention head.
    pub fn d_head(&self) -> usize {
        self.d_model / self.n_head
    }

    /// Key/value heads actually used (n_head unless `n_kv_head` is set).
    pub fn kv_heads(&self) -> usize {
        self.n_kv_head.unwrap_or(self.n_head)
    }

    /// Checks the configuration; the error names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |key, message: String| Err(ConfigError { key, message });
        for (key, v) in [
            ("n_layer", self.n_layer),
            ("d_model", self.d_model),
            ("n_head", self.n_head),
            ("vocab", self.vocab),
            ("seq_len", self.seq_len),
        ] {
            if v == 0 {
                return err(key, "must be at least 1".into());
            }
        }
        if !self.d_model.is_multiple_of(self.n_head) {
            return err(
                "n_head",
                format!(
                    "d_model = {} is not divisible by n_head = {}",
                    self.d_model, self.n_head
                ),
            );
        }
        if let Some(kv) = self.n_kv_head {
            if kv == 0 || !self.n_head.is_multiple_of(kv) {
                return err(
                    "n_kv_head",
                    format!(
                        "must be at least 1 and divide n_head = {} (1: multi-query, n_head: \
                         multi-head), got {kv}",
                        self.n_head
                    ),
                );
            }
        }
        self.validate_mla()?;
        self.validate_mtp()?;
        if self.position == Position::Sinusoidal && !self.d_model.is_multiple_of(2) {
            return err(
                "position",
                format!(
                    "sinusoidal positions need an even d_model, got {}",
                    self.d_model
                ),
            );
        }
        if self.position == Position::Rope && !self.d_head().is_multiple_of(2) {
            return err(
                "position",
                format!(
                    "rope needs an even head width, got d_model/n_head = {}",
                    self.d_head()
                ),
            );
        }
        match (self.arch, self.prefix) {
            (Arch::Causal, Some(_)) => {
                return err(
                    "prefix",
                    "a prefix needs `arch: prefix` or `arch: encoder_decoder`".into(),
                );
            }
            (arch, None) if arch.has_prefix() => {
                return err(
                    "prefix",
                    format!(
                        "arch: {} needs a prefix length: `prefix: 32` or `prefix: {{min: 0, max: 64}}`",
                        arch.name()
                    ),
                );
            }
            (_, Some(p)) => {
                let (lo, hi) = p.bounds();
                if lo > hi {
                    return err("prefix", format!("min {lo} is above max {hi}"));
                }
                if hi >= self.seq_len {
                    return err(
                        "prefix",
                        format!(
                            "the longest prefix ({hi}) must leave at least one target token in seq_len = {}",
                            self.seq_len
                        ),
                    );
                }
            }
            (_, None) => {}
        }
        self.validate_moe()?;
        self.validate_encoder()?;
        if self.d_ff == Some(0) {
            return err("d_ff", "must be at least 1".into());
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return err(
                "dropout",
                format!("must be in [0, 1), got {}", self.dropout),
            );
        }
        if !(self.init_std.is_finite() && self.init_std > 0.0) {
            return err(
                "init_std",
                format!("must be positive, got {}", self.init_std),
            );
        }
        Ok(())
    }
}

impl ModelConfig {
    /// The encoder's settings when the model is an encoder-decoder.
    pub fn encoder(&self) -> Option<EncoderConfig> {
        (self.arch == Arch::EncoderDecoder).then(|| self.encoder.clone().unwrap_or_default())
    }

    /// Whether an encoder-decoder's encoder reads the decoder's token embedding.
    pub fn shares_encoder_embedding(&self) -> bool {
        self.encoder().is_some_and(|e| e.share_embedding)
    }

    /// The encoder as a configuration of its own (its blocks, norms and positions are built from
    /// it): the decoder's choices with the encoder's shape. None for decoder-only models.
    pub fn encoder_config(&self) -> Option<ModelConfig> {
        let e = self.encoder()?;
        let mut c = self.clone();
        c.arch = Arch::Causal;
        c.prefix = None;
        c.encoder = None;
        c.n_layer = e.n_layer.unwrap_or(self.n_layer);
        c.d_model = e.d_model.unwrap_or(self.d_model);
        c.n_head = e.n_head.unwrap_or(self.n_head);
        c.d_ff = e
            .d_ff
            .or(if e.d_model.is_some() { None } else { self.d_ff });
        c.n_kv_head = self.n_kv_head.filter(|_| e.n_head.is_none());
        c.mtp = None;
        Some(c)
    }

    fn validate_encoder(&self) -> Result<(), ConfigError> {
        let err = |key, message: String| Err(ConfigError { key, message });
        if self.arch != Arch::EncoderDecoder {
            if self.encoder.is_some() {
                return err("encoder", "an encoder needs `arch: encoder_decoder`".into());
            }
            return Ok(());
        }
        if self.ffn != Ffn::Dense {
            return err(
                "ffn",
                "encoder-decoders are built with dense feed-forward blocks; `ffn: moe` is not built for them"
                    .into(),
            );
        }
        let enc = self.encoder_config().expect("an encoder-decoder");
        let e = self.encoder().expect("an encoder-decoder");
        if e.n_layer == Some(0) {
            return err("encoder.n_layer", "must be at least 1".into());
        }
        if e.share_embedding && enc.d_model != self.d_model {
            return err(
                "encoder.share_embedding",
                format!(
                    "a shared token embedding needs equal widths (encoder {}, decoder {}): set                      `share_embedding: false`",
                    enc.d_model, self.d_model
                ),
            );
        }
        enc.validate().map_err(|e| ConfigError {
            key: match e.key {
                "n_layer" => "encoder.n_layer",
                "d_model" => "encoder.d_model",
                "n_head" => "encoder.n_head",
                "d_ff" => "encoder.d_ff",
                other => other,
            },
            message: e.message,
        })
    }

    fn validate_mtp(&self) -> Result<(), ConfigError> {
        let Some(m) = &self.mtp else {
            return Ok(());
        };
        let err = |key, message: String| Err(ConfigError { key, message });
        if m.depth >= self.seq_len {
            return err(
                "mtp.depth",
                format!("must be below seq_len = {}, got {}", self.seq_len, m.depth),
            );
        }
        if !(m.weight.is_finite() && m.weight >= 0.0) {
            return err(
                "mtp.weight",
                format!("must be a non-negative number, got {}", m.weight),
            );
        }
        if self.arch != Arch::Causal {
            return err(
                "mtp",
                "multi-token prediction is built for causal decoders only".into(),
            );
        }
        if self.ffn != Ffn::Dense {
            return err(
                "mtp",
                "multi-token prediction modules are dense blocks; `ffn: moe` with `mtp` is not built"
                    .into(),
            );
        }
        Ok(())
    }

    fn validate_mla(&self) -> Result<(), ConfigError> {
        let Some(m) = &self.mla else {
            return Ok(());
        };
        let err = |key, message: String| Err(ConfigError { key, message });
        if self.n_kv_head.is_some() {
            return err(
                "n_kv_head",
                "latent attention (mla) shares its keys and values through the latent: drop n_kv_head"
                    .into(),
            );
        }
        if m.kv_rank == 0 || m.q_rank == 0 {
            return err("mla", "kv_rank and q_rank must be at least 1".into());
        }
        if m.rope_dim > 0 && self.position != Position::Rope {
            return err(
                "mla.rope_dim",
                format!(
                    "decoupled rotary dimensions need `position: rope`, not {:?}",
                    self.position
                ),
            );
        }
        if !m.rope_dim.is_multiple_of(2) {
            return err(
                "mla.rope_dim",
                format!("must be even (rotary pairs), got {}", m.rope_dim),
            );
        }
        Ok(())
    }

    fn validate_moe(&self) -> Result<(), ConfigError> {
        let err = |key, message: String| Err(ConfigError { key, message });
        let m = match (self.ffn, &self.moe) {
            (Ffn::Dense, None) => return Ok(()),
            (Ffn::Dense, Some(_)) => return err("moe", "MoE settings need `ffn: moe`".into()),
            (Ffn::Moe, None) => {
                return err(
                    "moe",
                    "ffn: moe needs `moe: {n_experts: 8, top_k: 2}` (and optionally granularity, n_shared, router, balance, ...)"
                        .into(),
                )
            }
            (Ffn::Moe, Some(m)) => m,
        };
        if m.n_experts == 0 || m.top_k == 0 || m.granularity == 0 {
            return err(
                "moe",
                "n_experts, top_k and granularity must be at least 1".into(),
            );
        }
        if m.top_k > m.n_experts {
            return err(
                "moe.top_k",
                format!("top_k = {} exceeds n_experts = {}", m.top_k, m.n_experts),
            );
        }
        if !self.d_ff().is_multiple_of(m.granularity) {
            return err(
                "moe.granularity",
                format!(
                    "d_ff = {} is not divisible by granularity {}",
                    self.d_ff(),
                    m.granularity
                ),
            );
        }
        if m.capacity_factor
            .is_some_and(|c| !(c.is_finite() && c > 0.0))
        {
            return err("moe.capacity_factor", "must be positive".into());
        }
        for (key, v) in [
            ("moe.z_loss", m.z_loss),
            ("moe.aux_weight", m.aux_weight),
            ("moe.bias_rate", m.bias_rate),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return err(key, format!("must be a non-negative number, got {v}"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_key() {
        let mut c = ModelConfig::new(2, 130, 4, 256, 64);
        assert_eq!(c.validate().unwrap_err().key, "n_head");
        c.d_model = 128;
        assert!(c.validate().is_ok());
        c.dropout = 1.5;
        assert_eq!(c.validate().unwrap_err().key, "dropout");
    }

    #[test]
    fn prefix_settings_are_checked() {
        let mut c = ModelConfig::new(2, 64, 4, 256, 64);
        c.prefix = Some(PrefixLen::Fixed(8));
        assert_eq!(c.validate().unwrap_err().key, "prefix");
        c.arch = Arch::Prefix;
        assert!(c.validate().is_ok());
        c.prefix = Some(PrefixLen::Range { min: 10, max: 64 });
        assert_eq!(c.validate().unwrap_err().key, "prefix");
        c.prefix = None;
        assert_eq!(c.validate().unwrap_err().key, "prefix");
        let y: PrefixLen = serde_json::from_str(r#"{"min": 0, "max": 32}"#).unwrap();
        assert_eq!(y, PrefixLen::Range { min: 0, max: 32 });
    }

    #[test]
    fn kv_heads_must_divide_the_heads() {
        let mut c = ModelConfig::new(2, 64, 4, 256, 64);
        assert_eq!(c.kv_heads(), 4);
        for ok in [1, 2, 4] {
            c.n_kv_head = Some(ok);
            assert!(c.validate().is_ok(), "{ok}");
            assert_eq!(c.kv_heads(), ok);
        }
        for bad in [0, 3, 8] {
            c.n_kv_head = Some(bad);
            assert_eq!(c.validate().unwrap_err().key, "n_kv_head", "{bad}");
        }
    }

    #[test]
    fn latent_attention_settings_are_checked() {
        let mut c = ModelConfig::new(2, 64, 4, 256, 64);
        c.mla = Some(MlaConfig {
            kv_rank: 16,
            q_rank: 32,
            rope_dim: 8,
        });
        assert_eq!(c.validate().unwrap_err().key, "mla.rope_dim");
        c.position = Position::Rope;
        assert!(c.validate().is_ok());
        c.n_kv_head = Some(2);
        assert_eq!(c.validate().unwrap_err().key, "n_kv_head");
        c.n_kv_head = None;
        c.mla = Some(MlaConfig {
            kv_rank: 0,
            q_rank: 32,
            rope_dim: 3,
        });
        assert_eq!(c.validate().unwrap_err().key, "mla");
        let y: MlaConfig = serde_json::from_str(r#"{"kv_rank": 16, "q_rank": 32}"#).unwrap();
        assert_eq!(y.rope_dim, 0);
    }

    #[test]
    fn default_ff_widths() {
        let mut c = ModelConfig::new(2, 96, 4, 256, 64);
        assert_eq!(c.d_ff(), 384);
        c.mlp = Mlp::Swiglu;
        assert_eq!(c.d_ff(), 256);
    }
}

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

/// The decoder's shape and architecture. Every field has a default except the shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Attention pattern.
    #[serde(default)]
    pub arch: Arch,
    /// Number of transformer blocks.
    pub n_layer: usize,
    /// Residual stream width.
    pub d_model: usize,
    /// Attention heads (d_model must be divisible by n_head).
    pub n_head: usize,
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
    /// Feed-forward type.
    #[serde(default)]
    pub mlp: Mlp,
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
            n_layer,
            d_model,
            n_head,
            d_ff: None,
            vocab,
            seq_len,
            dropout: 0.0,
            position: Position::Learned,
            norm: Norm::Layernorm,
            mlp: Mlp::Gelu,
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

    /// Width of one attention head.
    pub fn d_head(&self) -> usize {
        self.d_model / self.n_head
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
        if self.position == Position::Rope && !self.d_head().is_multiple_of(2) {
            return err(
                "position",
                format!(
                    "rope needs an even head width, got d_model/n_head = {}",
                    self.d_head()
                ),
            );
        }
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
    fn default_ff_widths() {
        let mut c = ModelConfig::new(2, 96, 4, 256, 64);
        assert_eq!(c.d_ff(), 384);
        c.mlp = Mlp::Swiglu;
        assert_eq!(c.d_ff(), 256);
    }
}

//! # models — lab's burn modules and their exact accounting
//!
//! A decoder-only transformer ([`Decoder`]) configured by [`ModelConfig`]: learned or rotary positions,
//! pre-norm blocks with LayerNorm or RMSNorm, multi-head attention, GELU or SwiGLU feed-forward, tied or
//! untied head. [`account`] gives parameter and FLOP counts as pure functions of the configuration.

pub mod accounting;
pub mod attention;
pub mod config;
pub mod decoder;
pub mod encoder;
pub mod fused;
pub mod layers;
pub mod moe;
pub mod mtp;
pub mod precision;

pub use accounting::{account, Accounting};
pub use config::{
    Arch, Balance, ConfigError, EncoderConfig, Ffn, MlaConfig, Mlp, ModelConfig, MoeConfig,
    MtpConfig, Norm, NormPlacement, Position, PrefixLen, Router,
};
pub use decoder::{Decoder, DecoderOutput};
pub use encoder::Source;
pub use moe::LayerStats;
pub use precision::Precision;

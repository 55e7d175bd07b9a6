//! # models — lab's burn modules and their exact accounting
//!
//! A decoder-only transformer ([`Decoder`]) configured by [`ModelConfig`]: learned or rotary positions,
//! pre-norm blocks with LayerNorm or RMSNorm, multi-head attention, GELU or SwiGLU feed-forward, tied or
//! untied head. [`account`] gives parameter and FLOP counts as pure functions of the configuration.

pub mod accounting;
pub mod config;
pub mod decoder;
pub mod layers;

pub use accounting::{account, Accounting};
pub use config::{Arch, ConfigError, Mlp, ModelConfig, Norm, Position};
pub use decoder::Decoder;

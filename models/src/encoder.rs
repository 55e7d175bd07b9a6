//! The encoder of an encoder-decoder: a bidirectional stack over the input tokens, whose output
//! the decoder's blocks read through cross-attention.

use crate::config::{ModelConfig, Position};
use crate::decoder::{embed, embedding};
use crate::layers::{Block, Norm};
use crate::precision::Precision;
use burn::module::Module;
use burn::nn::Embedding;
use burn::prelude::*;

/// An encoder-decoder's input for one batch: each row's tokens, padded to the longest row.
pub struct Source {
    /// Tokens [rows, len] (len at least 1; padding after each row's own tokens).
    pub tokens: Tensor<2, Int>,
    /// Which positions are padding, [rows, 1, 1, len] (true = padding, never attended to).
    pub padding: Tensor<4, Bool>,
    /// 1 for a row with at least one token, 0 for an empty one: [rows, 1, 1].
    pub present: Tensor<3>,
}

/// Token id written into padding positions (never attended to).
const PAD: i64 = 0;

impl Source {
    /// The source of `rows` (each of any length, empty included) on `device`.
    pub fn new(rows: &[&[i64]], device: &Device) -> Source {
        let n = rows.len();
        let len = rows.iter().map(|r| r.len()).max().unwrap_or(0).max(1);
        let mut tokens = Vec::with_capacity(n * len);
        let mut padding = Vec::with_capacity(n * len);
        for r in rows {
            tokens.extend((0..len).map(|j| r.get(j).copied().unwrap_or(PAD)));
            padding.extend((0..len).map(|j| j >= r.len()));
        }
        let present: Vec<f32> = rows
            .iter()
            .map(|r| f32::from(!r.is_empty() as u8))
            .collect();
        Source {
            tokens: Tensor::from_data(TensorData::new(tokens, [n, len]), device),
            padding: Tensor::from_data(TensorData::new(padding, [n, 1, 1, len]), device),
            present: Tensor::from_data(TensorData::new(present, [n, 1, 1]), device),
        }
    }
}

/// The encoder's output as cross-attention reads it.
pub struct Memory {
    /// [rows, len, d_encoder].
    pub states: Tensor<3>,
    /// As [`Source::padding`].
    pub padding: Tensor<4, Bool>,
    /// As [`Source::present`].
    pub present: Tensor<3>,
}

/// A bidirectional transformer stack with its own positions and final norm; its token embedding
/// is its own or the decoder's.
#[derive(Module, Debug)]
pub struct Encoder {
    /// Own token embedding (`None`: the decoder's is shared).
    tok: Option<Embedding>,
    pos: Option<Embedding>,
    blocks: Vec<Block>,
    norm: Norm,
    sinusoidal: bool,
}

impl Encoder {
    /// The encoder of `cfg` (an encoder's configuration, [`ModelConfig::encoder_config`]), with
    /// its own token embedding unless `shared`.
    pub fn new(cfg: &ModelConfig, shared: bool, device: &Device) -> Self {
        Encoder {
            tok: (!shared).then(|| embedding(cfg, cfg.vocab, device)),
            pos: (cfg.position == Position::Learned).then(|| embedding(cfg, cfg.seq_len, device)),
            blocks: (0..cfg.n_layer).map(|_| Block::new(cfg, device)).collect(),
            norm: Norm::last(cfg, device),
            sinusoidal: cfg.position == Position::Sinusoidal,
        }
    }

    /// The states of `source` (every position attends to every token of its row), embedding the
    /// tokens with `shared` unless the encoder has its own embedding.
    pub fn forward(&self, shared: &Embedding, source: &Source, precision: Precision) -> Memory {
        let tok = self.tok.as_ref().unwrap_or(shared);
        let mut x = embed(
            tok,
            self.pos.as_ref(),
            self.sinusoidal,
            source.tokens.clone(),
        )
        .cast(precision.dtype());
        for block in &self.blocks {
            x = block.forward(x, &source.padding, None, None).x;
        }
        Memory {
            states: self.norm.forward(x),
            padding: source.padding.clone(),
            present: source.present.clone(),
        }
    }
}

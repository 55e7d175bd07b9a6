//! The decoder: embeddings, blocks, final norm and output head.

use crate::config::{ModelConfig, Position};
use crate::encoder::{Encoder, Memory, Source};
use crate::layers::{linear, Block, Norm};
use crate::moe::LayerStats;
use crate::mtp::MtpModule;
use crate::precision::{like, project, to_f32, Precision};
use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, Initializer, Linear};
use burn::prelude::*;

/// Everything a forward pass produces.
pub struct DecoderOutput {
    /// [batch, time, vocab].
    pub logits: Tensor<3>,
    /// MoE balance and z-losses, weighted and summed over layers (None for dense models).
    pub aux: Option<Tensor<1>>,
    /// Routing statistics of each MoE layer, in order.
    pub stats: Vec<LayerStats>,
    /// The last block's output before the final norm, when the model has multi-token prediction
    /// modules (their input; see [`Decoder::mtp_logits`]).
    pub hidden: Option<Tensor<3>>,
}

/// A decoder-only transformer, or the decoder of an encoder-decoder with its encoder.
#[derive(Module, Debug)]
pub struct Decoder {
    /// The encoder of an encoder-decoder (`None`: decoder-only).
    encoder: Option<Encoder>,
    tok: Embedding,
    pos: Option<Embedding>,
    blocks: Vec<Block>,
    norm: Norm,
    /// Untied output head (`None` when the token embedding is reused).
    head: Option<Linear>,
    /// Fixed sinusoidal positions added to the token embedding.
    sinusoidal: bool,
    /// Multi-token prediction modules (empty: none).
    mtp: Vec<MtpModule>,
    /// Weight of the modules' mean cross-entropy in the objective.
    mtp_weight: f64,
}

/// The sinusoidal position table [t, d] (d even): sin(p / 10000^(2i/d)) at 2i, cos at 2i + 1.
pub fn sinusoids(t: usize, d: usize, device: &Device) -> Tensor<2> {
    let mut values = Vec::with_capacity(t * d);
    for p in 0..t {
        for i in 0..d / 2 {
            let angle = p as f64 / 10_000f64.powf(2.0 * i as f64 / d as f64);
            values.extend([angle.sin() as f32, angle.cos() as f32]);
        }
    }
    Tensor::from_data(TensorData::new(values, [t, d]), device)
}

/// An embedding table of `n` rows of width d_model, initialised N(0, init_std).
pub(crate) fn embedding(cfg: &ModelConfig, n: usize, device: &Device) -> Embedding {
    EmbeddingConfig::new(n, cfg.d_model)
        .with_initializer(Initializer::Normal {
            mean: 0.0,
            std: cfg.init_std,
        })
        .init(device)
}

/// Token embeddings [b, t, d] of `tokens` [b, t], plus learned or sinusoidal positions 0..t.
pub(crate) fn embed(
    tok: &Embedding,
    pos: Option<&Embedding>,
    sinusoidal: bool,
    tokens: Tensor<2, Int>,
) -> Tensor<3> {
    let [b, t] = tokens.dims();
    let device = tokens.device();
    let mut x = tok.forward(tokens);
    if let Some(pos) = pos {
        let idx = Tensor::<1, Int>::arange(0..t as i64, &device)
            .reshape([1, t])
            .expand([b, t]);
        x = x + pos.forward(idx);
    }
    if sinusoidal {
        let d = x.dims()[2];
        x = x + sinusoids(t, d, &device).reshape([1, t, d]);
    }
    x
}

impl Decoder {
    /// Builds a freshly initialised decoder on `device` (seed the device first for reproducibility).
    pub fn new(cfg: &ModelConfig, device: &Device) -> Self {
        let emb = |n| embedding(cfg, n, device);
        Decoder {
            encoder: cfg
                .encoder_config()
                .map(|enc| Encoder::new(&enc, cfg.shares_encoder_embedding(), device)),
            tok: emb(cfg.vocab),
            pos: (cfg.position == Position::Learned).then(|| emb(cfg.seq_len)),
            blocks: (0..cfg.n_layer).map(|_| Block::new(cfg, device)).collect(),
            norm: Norm::last(cfg, device),
            head: (!cfg.tie_embeddings)
                .then(|| linear(cfg.d_model, cfg.vocab, cfg.bias, cfg.init_std, device)),
            sinusoidal: cfg.position == Position::Sinusoidal,
            mtp: (0..cfg.mtp.as_ref().map_or(0, |m| m.depth))
                .map(|_| MtpModule::new(cfg, device))
                .collect(),
            mtp_weight: cfg.mtp.as_ref().map_or(0.0, |m| m.weight),
        }
    }

    /// The causal mask for `t` positions: [1, 1, t, t], true above the diagonal.
    pub fn causal_mask(t: usize, device: &Device) -> Tensor<4, Bool> {
        Tensor::<2, Bool>::tril_mask([t, t], 0, device).reshape([1, 1, t, t])
    }

    /// The prefix-decoder mask for sequences with prefix lengths `prefix` (one per row):
    /// [rows, 1, t, t], position i may attend to j when j <= i or j < prefix (true = masked).
    /// With every prefix 0 it equals the causal mask.
    pub fn prefix_mask(prefix: &[usize], t: usize, device: &Device) -> Tensor<4, Bool> {
        let b = prefix.len();
        let mut masked = Vec::with_capacity(b * t * t);
        for &p in prefix {
            for i in 0..t {
                masked.extend((0..t).map(|j| j > i && j >= p));
            }
        }
        Tensor::<4, Bool>::from_data(TensorData::new(masked, [b, 1, t, t]), device)
    }

    /// Logits [batch, time, vocab] for tokens [batch, time] under `mask` ([batch or 1, 1, time, time]).
    pub fn forward_masked(&self, tokens: Tensor<2, Int>, mask: &Tensor<4, Bool>) -> Tensor<3> {
        self.forward_aux(tokens, mask, &[]).logits
    }

    /// The full forward pass: logits, the MoE routing losses (summed over layers) and per-layer
    /// routing statistics. `biases` holds one selection bias per routed expert for each MoE layer
    /// (empty: none).
    pub fn forward_aux(
        &self,
        tokens: Tensor<2, Int>,
        mask: &Tensor<4, Bool>,
        biases: &[Vec<f32>],
    ) -> DecoderOutput {
        self.forward_in(tokens, mask, biases, Precision::F32)
    }

    /// [`Decoder::forward_aux`] computing in `precision` (see [`crate::precision`]); the logits
    /// come back in f32.
    pub fn forward_in(
        &self,
        tokens: Tensor<2, Int>,
        mask: &Tensor<4, Bool>,
        biases: &[Vec<f32>],
        precision: Precision,
    ) -> DecoderOutput {
        self.forward_from(None, tokens, mask, biases, precision)
    }

    /// Whether the model has an encoder (an encoder-decoder).
    pub fn has_encoder(&self) -> bool {
        self.encoder.is_some()
    }

    /// [`Decoder::forward_in`] of an encoder-decoder's decoder reading the encoder's states of
    /// `source` (`None`, or a model without an encoder: no cross-attention). `tokens` are the
    /// decoder's inputs, `mask` its causal mask.
    pub fn forward_from(
        &self,
        source: Option<&Source>,
        tokens: Tensor<2, Int>,
        mask: &Tensor<4, Bool>,
        biases: &[Vec<f32>],
        precision: Precision,
    ) -> DecoderOutput {
        let memory: Option<Memory> = match (&self.encoder, source) {
            (Some(encoder), Some(source)) => Some(encoder.forward(&self.tok, source, precision)),
            _ => None,
        };
        let x = embed(&self.tok, self.pos.as_ref(), self.sinusoidal, tokens);
        let mut x = x.cast(precision.dtype());
        let mut aux: Option<Tensor<1>> = None;
        let mut stats = Vec::new();
        for block in &self.blocks {
            let bias = biases.get(stats.len()).map(Vec::as_slice);
            let out = block.forward(x, mask, memory.as_ref(), bias);
            x = out.x;
            if let Some(a) = out.aux {
                aux = Some(match aux {
                    Some(s) => s + a,
                    None => a,
                });
            }
            stats.extend(out.stats);
        }
        let hidden = (!self.mtp.is_empty()).then(|| x.clone());
        DecoderOutput {
            logits: self.output(self.norm.forward(x)),
            aux,
            stats,
            hidden,
        }
    }

    /// The output head (untied, or the token embedding transposed): f32 logits [b, t, vocab].
    fn output(&self, x: Tensor<3>) -> Tensor<3> {
        let logits = match &self.head {
            Some(head) => project(head, x),
            None => {
                let w = like(self.tok.weight.val(), &x); // [vocab, d]
                let [v, d] = w.dims();
                x.matmul(w.transpose().reshape([1, d, v]))
            }
        };
        to_f32(logits)
    }

    /// The weight of the multi-token prediction modules' mean cross-entropy in the objective.
    pub fn mtp_weight(&self) -> f64 {
        self.mtp_weight
    }

    /// The multi-token prediction logits from the main pass's `hidden` ([`DecoderOutput::hidden`])
    /// for inputs `tokens` [b, t]: depth k's logits [b, t - k, vocab] at positions 0..t - k predict
    /// the token k + 1 ahead (position i's target is input i + k + 1). Causal decoders only.
    pub fn mtp_logits(&self, tokens: Tensor<2, Int>, hidden: Tensor<3>) -> Vec<Tensor<3>> {
        let [b, t] = tokens.dims();
        let device = tokens.device();
        let mut h = hidden;
        let mut out = Vec::with_capacity(self.mtp.len());
        for (depth, module) in self.mtp.iter().enumerate() {
            let k = depth + 1;
            let n = t - k;
            let ahead = self
                .tok
                .forward(tokens.clone().slice([0..b, k..t]))
                .cast(h.dtype());
            let [_, _, d] = h.dims();
            let mask = Self::causal_mask(n, &device);
            h = module.forward(h.slice([0..b, 0..n, 0..d]), ahead, &mask);
            out.push(self.output(module.output_norm(h.clone())));
        }
        out
    }

    /// Logits [batch, time, vocab] with a causal mask.
    pub fn forward(&self, tokens: Tensor<2, Int>) -> Tensor<3> {
        let t = tokens.dims()[1];
        let mask = Self::causal_mask(t, &tokens.device());
        self.forward_masked(tokens, &mask)
    }
}

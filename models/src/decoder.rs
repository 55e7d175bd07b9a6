//! The decoder: embeddings, blocks, final norm and output head.

use crate::config::{ModelConfig, Position};
use crate::layers::{linear, Block, Norm};
use crate::moe::LayerStats;
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
}

/// A decoder-only transformer.
#[derive(Module, Debug)]
pub struct Decoder {
    tok: Embedding,
    pos: Option<Embedding>,
    blocks: Vec<Block>,
    norm: Norm,
    /// Untied output head (`None` when the token embedding is reused).
    head: Option<Linear>,
    /// Fixed sinusoidal positions added to the token embedding.
    sinusoidal: bool,
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

impl Decoder {
    /// Builds a freshly initialised decoder on `device` (seed the device first for reproducibility).
    pub fn new(cfg: &ModelConfig, device: &Device) -> Self {
        let emb = |n| {
            EmbeddingConfig::new(n, cfg.d_model)
                .with_initializer(Initializer::Normal {
                    mean: 0.0,
                    std: cfg.init_std,
                })
                .init(device)
        };
        Decoder {
            tok: emb(cfg.vocab),
            pos: (cfg.position == Position::Learned).then(|| emb(cfg.seq_len)),
            blocks: (0..cfg.n_layer).map(|_| Block::new(cfg, device)).collect(),
            norm: Norm::last(cfg, device),
            head: (!cfg.tie_embeddings)
                .then(|| linear(cfg.d_model, cfg.vocab, cfg.bias, cfg.init_std, device)),
            sinusoidal: cfg.position == Position::Sinusoidal,
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
        let [b, t] = tokens.dims();
        let device = tokens.device();
        let mut x = self.tok.forward(tokens);
        if let Some(pos) = &self.pos {
            let idx = Tensor::<1, Int>::arange(0..t as i64, &device)
                .reshape([1, t])
                .expand([b, t]);
            x = x + pos.forward(idx);
        }
        if self.sinusoidal {
            let d = x.dims()[2];
            x = x + sinusoids(t, d, &device).reshape([1, t, d]);
        }
        let mut x = x.cast(precision.dtype());
        let mut aux: Option<Tensor<1>> = None;
        let mut stats = Vec::new();
        for block in &self.blocks {
            let bias = biases.get(stats.len()).map(Vec::as_slice);
            let out = block.forward(x, mask, bias);
            x = out.x;
            if let Some(a) = out.aux {
                aux = Some(match aux {
                    Some(s) => s + a,
                    None => a,
                });
            }
            stats.extend(out.stats);
        }
        let x = self.norm.forward(x);
        let logits = match &self.head {
            Some(head) => project(head, x),
            None => {
                let w = like(self.tok.weight.val(), &x); // [vocab, d]
                let [v, d] = w.dims();
                x.matmul(w.transpose().reshape([1, d, v]))
            }
        };
        DecoderOutput {
            logits: to_f32(logits),
            aux,
            stats,
        }
    }

    /// Logits [batch, time, vocab] with a causal mask.
    pub fn forward(&self, tokens: Tensor<2, Int>) -> Tensor<3> {
        let t = tokens.dims()[1];
        let mask = Self::causal_mask(t, &tokens.device());
        self.forward_masked(tokens, &mask)
    }
}

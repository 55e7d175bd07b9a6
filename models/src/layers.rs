//! Building blocks of the decoder: normalisation, attention and feed-forward.

use crate::config::{Ffn, Mlp as MlpKind, ModelConfig, Norm as NormKind, Position};
use crate::moe::{LayerStats, Moe};
use crate::precision::{project, to_f32};
use burn::module::{Module, Param};
use burn::nn::{
    Dropout, DropoutConfig, Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig, RmsNorm,
    RmsNormConfig, RotaryEncoding, RotaryEncodingConfig,
};
use burn::prelude::*;
use burn::tensor::activation::{gelu, silu, softmax};

/// A linear layer initialised N(0, std).
pub fn linear(d_in: usize, d_out: usize, bias: bool, std: f64, device: &Device) -> Linear {
    LinearConfig::new(d_in, d_out)
        .with_bias(bias)
        .with_initializer(Initializer::Normal { mean: 0.0, std })
        .init(device)
}

/// LayerNorm or RMSNorm, chosen by the configuration (exactly one field is set).
#[derive(Module, Debug)]
pub struct Norm {
    layer: Option<LayerNorm>,
    rms: Option<RmsNorm>,
}

impl Norm {
    /// A norm over d_model features.
    pub fn new(cfg: &ModelConfig, device: &Device) -> Self {
        match cfg.norm {
            NormKind::Layernorm => Norm {
                layer: Some(
                    LayerNormConfig::new(cfg.d_model)
                        .with_bias(cfg.bias)
                        .init(device),
                ),
                rms: None,
            },
            NormKind::Rmsnorm => Norm {
                layer: None,
                rms: Some(RmsNormConfig::new(cfg.d_model).init(device)),
            },
        }
    }

    /// Normalises over the last axis, in f32, returning the input's dtype.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let dtype = x.dtype();
        let y = match (&self.layer, &self.rms) {
            (Some(l), _) => l.forward(to_f32(x)),
            (None, Some(r)) => r.forward(to_f32(x)),
            (None, None) => return x,
        };
        y.cast(dtype)
    }
}

/// Multi-head self-attention with a boolean mask (true = may not attend).
#[derive(Module, Debug)]
pub struct Attention {
    qkv: Linear,
    out: Linear,
    rope: Option<RotaryEncoding>,
    dropout: Dropout,
    n_head: usize,
}

impl Attention {
    /// Attention for the configuration; the output projection is scaled by 1/sqrt(2 n_layer).
    pub fn new(cfg: &ModelConfig, device: &Device) -> Self {
        let d = cfg.d_model;
        let resid_std = cfg.init_std / (2.0 * cfg.n_layer as f64).sqrt();
        Attention {
            qkv: linear(d, 3 * d, cfg.bias, cfg.init_std, device),
            out: linear(d, d, cfg.bias, resid_std, device),
            rope: (cfg.position == Position::Rope)
                .then(|| RotaryEncodingConfig::new(cfg.seq_len, cfg.d_head()).init(device)),
            dropout: DropoutConfig::new(cfg.dropout).init(),
            n_head: cfg.n_head,
        }
    }

    /// x: [batch, time, d_model]; mask: [batch or 1, 1, time, time].
    pub fn forward(&self, x: Tensor<3>, mask: &Tensor<4, Bool>) -> Tensor<3> {
        let [b, t, d] = x.dims();
        let (h, hd) = (self.n_head, d / self.n_head);
        let dtype = x.dtype();
        let qkv = project(&self.qkv, x).chunk(3, 2);
        let heads = |z: Tensor<3>| z.reshape([b, t, h, hd]).swap_dims(1, 2);
        let (mut q, mut k, v) = (
            heads(qkv[0].clone()),
            heads(qkv[1].clone()),
            heads(qkv[2].clone()),
        );
        if let Some(rope) = &self.rope {
            q = rope.forward(to_f32(q)).cast(dtype);
            k = rope.forward(to_f32(k)).cast(dtype);
        }
        let scores = to_f32(q.matmul(k.swap_dims(2, 3))).mul_scalar(1.0 / (hd as f64).sqrt());
        let scores = scores.mask_fill(mask.clone().expand([b, h, t, t]), f32::NEG_INFINITY);
        let att = self.dropout.forward(softmax(scores, 3)).cast(dtype);
        let y = att.matmul(v).swap_dims(1, 2).reshape([b, t, d]);
        project(&self.out, y)
    }
}

/// Feed-forward block: GELU MLP, or SwiGLU when `gate` is present.
#[derive(Module, Debug)]
pub struct FeedForward {
    up: Linear,
    gate: Option<Linear>,
    down: Linear,
}

impl FeedForward {
    /// The feed-forward block of the configuration.
    pub fn new(cfg: &ModelConfig, device: &Device) -> Self {
        Self::with_width(cfg, cfg.d_ff(), device)
    }

    /// A feed-forward block of hidden width `f` (e.g. MoE shared experts).
    pub fn with_width(cfg: &ModelConfig, f: usize, device: &Device) -> Self {
        let d = cfg.d_model;
        let resid_std = cfg.init_std / (2.0 * cfg.n_layer as f64).sqrt();
        FeedForward {
            up: linear(d, f, cfg.bias, cfg.init_std, device),
            gate: (cfg.mlp == MlpKind::Swiglu)
                .then(|| linear(d, f, cfg.bias, cfg.init_std, device)),
            down: linear(f, d, cfg.bias, resid_std, device),
        }
    }

    /// A feed-forward network from (weight [d_in, d_out], bias) pairs of its up, optional gate and
    /// down projections.
    pub fn from_weights(
        up: (Tensor<2>, Option<Tensor<1>>),
        gate: Option<(Tensor<2>, Option<Tensor<1>>)>,
        down: (Tensor<2>, Option<Tensor<1>>),
    ) -> Self {
        let lin = |(w, b): (Tensor<2>, Option<Tensor<1>>)| Linear {
            weight: Param::from_tensor(w),
            bias: b.map(Param::from_tensor),
        };
        FeedForward {
            up: lin(up),
            gate: gate.map(lin),
            down: lin(down),
        }
    }

    /// x: [batch, time, d_model].
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let hidden = match &self.gate {
            Some(gate) => silu(project(gate, x.clone())) * project(&self.up, x),
            None => gelu(project(&self.up, x)),
        };
        project(&self.down, hidden)
    }
}

/// Pre-norm transformer block: x + attn(norm(x)), then x + ffn(norm(x)) with a dense or MoE ffn
/// (exactly one of `ffn`, `moe` is set).
#[derive(Module, Debug)]
pub struct Block {
    norm1: Norm,
    attn: Attention,
    norm2: Norm,
    ffn: Option<FeedForward>,
    moe: Option<Moe>,
    dropout: Dropout,
}

/// A block's output: the residual stream and, for MoE blocks, the routing losses and statistics.
pub struct BlockOutput {
    /// [batch, time, d_model].
    pub x: Tensor<3>,
    /// Weighted balance and z-losses.
    pub aux: Option<Tensor<1>>,
    /// Routing statistics (MoE blocks only).
    pub stats: Option<LayerStats>,
}

impl Block {
    /// One block of the configuration.
    pub fn new(cfg: &ModelConfig, device: &Device) -> Self {
        Block {
            norm1: Norm::new(cfg, device),
            attn: Attention::new(cfg, device),
            norm2: Norm::new(cfg, device),
            ffn: (cfg.ffn == Ffn::Dense).then(|| FeedForward::new(cfg, device)),
            moe: (cfg.ffn == Ffn::Moe).then(|| Moe::new(cfg, device)),
            dropout: DropoutConfig::new(cfg.dropout).init(),
        }
    }

    /// x: [batch, time, d_model]; `bias` shifts MoE expert selection (bias balancing).
    pub fn forward(
        &self,
        x: Tensor<3>,
        mask: &Tensor<4, Bool>,
        bias: Option<&[f32]>,
    ) -> BlockOutput {
        let x = x.clone()
            + self
                .dropout
                .forward(self.attn.forward(self.norm1.forward(x), mask));
        let h = self.norm2.forward(x.clone());
        let (y, aux, stats) = match (&self.ffn, &self.moe) {
            (Some(f), _) => (f.forward(h), None, None),
            (None, Some(m)) => {
                let o = m.forward(h, bias);
                (o.y, o.aux, Some(o.stats))
            }
            (None, None) => (h.zeros_like(), None, None),
        };
        BlockOutput {
            x: x + self.dropout.forward(y),
            aux,
            stats,
        }
    }
}

//! Building blocks of the decoder: normalisation, feed-forward and the transformer block.

use crate::attention::{Attention, CrossAttention, LatentAttention};
use crate::config::{Ffn, Mlp as MlpKind, ModelConfig, Norm as NormKind, NormPlacement};
use crate::encoder::Memory;
use crate::fused::gelu;
use crate::moe::{LayerStats, Moe};
use crate::precision::{project, to_f32};
use burn::module::{Module, Param};
use burn::nn::{
    Dropout, DropoutConfig, Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig, RmsNorm,
    RmsNormConfig,
};
use burn::prelude::*;
use burn::tensor::activation::silu;

/// A linear layer initialised N(0, std).
pub fn linear(d_in: usize, d_out: usize, bias: bool, std: f64, device: &Device) -> Linear {
    LinearConfig::new(d_in, d_out)
        .with_bias(bias)
        .with_initializer(Initializer::Normal { mean: 0.0, std })
        .init(device)
}

/// Dynamic tanh (Zhu et al. 2025): gamma * tanh(alpha x) + beta over d_model features.
#[derive(Module, Debug)]
pub struct DynamicTanh {
    alpha: Param<Tensor<1>>,
    gamma: Param<Tensor<1>>,
    beta: Param<Tensor<1>>,
}

/// DyT's initial alpha (the paper's default for non-LLM and small models).
const DYT_ALPHA: f64 = 0.5;

impl DynamicTanh {
    fn new(d: usize, device: &Device) -> Self {
        DynamicTanh {
            alpha: Param::from_tensor(Tensor::full([1], DYT_ALPHA, device)),
            gamma: Param::from_tensor(Tensor::ones([d], device)),
            beta: Param::from_tensor(Tensor::zeros([d], device)),
        }
    }

    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let d = x.dims()[2];
        let alpha = self.alpha.val().reshape([1, 1, 1]);
        (x * alpha).tanh() * self.gamma.val().reshape([1, 1, d])
            + self.beta.val().reshape([1, 1, d])
    }
}

/// LayerNorm's epsilon (burn's default), set by [`Norm::new`] and used by [`Norm::forward`], which
/// normalises through [`crate::fused::layer_norm`] (burn's LayerNorm keeps its epsilon private).
const LAYER_NORM_EPS: f64 = 1e-5;

/// LayerNorm, RMSNorm or DyT, chosen by the configuration (at most one field is set; none is the
/// identity, the final "norm" of a post-norm decoder).
#[derive(Module, Debug)]
pub struct Norm {
    layer: Option<LayerNorm>,
    rms: Option<RmsNorm>,
    dyt: Option<DynamicTanh>,
}

impl Norm {
    /// A norm over d_model features.
    pub fn new(cfg: &ModelConfig, device: &Device) -> Self {
        let mut norm = Self::identity();
        match cfg.norm {
            NormKind::Layernorm => {
                norm.layer = Some(
                    LayerNormConfig::new(cfg.d_model)
                        .with_bias(cfg.bias)
                        .with_epsilon(LAYER_NORM_EPS)
                        .init(device),
                )
            }
            NormKind::Rmsnorm => norm.rms = Some(RmsNormConfig::new(cfg.d_model).init(device)),
            NormKind::Dyt => norm.dyt = Some(DynamicTanh::new(cfg.d_model, device)),
        }
        norm
    }

    /// No normalisation (no parameters).
    pub fn identity() -> Self {
        Norm {
            layer: None,
            rms: None,
            dyt: None,
        }
    }

    /// The decoder's final norm: the configured one for pre-norm blocks, none after post-norm ones.
    pub fn last(cfg: &ModelConfig, device: &Device) -> Self {
        match cfg.norm_placement {
            NormPlacement::Pre => Self::new(cfg, device),
            NormPlacement::Post => Self::identity(),
        }
    }

    /// Normalises over the last axis, in f32, returning the input's dtype.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let dtype = x.dtype();
        let y = match (&self.layer, &self.rms, &self.dyt) {
            (Some(l), _, _) => crate::fused::layer_norm(
                to_f32(x),
                l.gamma.val(),
                l.beta.as_ref().map(|b| b.val()),
                LAYER_NORM_EPS,
            ),
            (None, Some(r), _) => crate::fused::rms_norm(to_f32(x), r.gamma.val(), r.epsilon),
            (None, None, Some(t)) => t.forward(to_f32(x)),
            (None, None, None) => return x,
        };
        y.cast(dtype)
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

/// Transformer block with multi-head or latent attention (exactly one of `attn`, `mla` is set) and
/// a dense or MoE ffn (exactly one of `ffn`, `moe`). Pre-norm:
/// x + attn(norm1(x)), then x + ffn(norm2(x)); post-norm: norm1(x + attn(x)), then
/// norm2(x + ffn(x)). An encoder-decoder's decoder blocks have a cross-attention sub-layer between
/// the two, with its own norm, placed the same way.
#[derive(Module, Debug)]
pub struct Block {
    norm1: Norm,
    attn: Option<Attention>,
    mla: Option<LatentAttention>,
    norm_cross: Norm,
    cross: Option<CrossAttention>,
    norm2: Norm,
    ffn: Option<FeedForward>,
    moe: Option<Moe>,
    dropout: Dropout,
    post_norm: bool,
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
    /// One block of the configuration (with cross-attention for an encoder-decoder's decoder).
    pub fn new(cfg: &ModelConfig, device: &Device) -> Self {
        let d_source = cfg.encoder_config().map(|e| e.d_model);
        Block {
            norm1: Norm::new(cfg, device),
            attn: cfg.mla.is_none().then(|| Attention::new(cfg, device)),
            mla: cfg
                .mla
                .as_ref()
                .map(|m| LatentAttention::new(cfg, m, device)),
            norm_cross: match d_source {
                Some(_) => Norm::new(cfg, device),
                None => Norm::identity(),
            },
            cross: d_source.map(|d| CrossAttention::new(cfg, d, device)),
            norm2: Norm::new(cfg, device),
            ffn: (cfg.ffn == Ffn::Dense).then(|| FeedForward::new(cfg, device)),
            moe: (cfg.ffn == Ffn::Moe).then(|| Moe::new(cfg, device)),
            dropout: DropoutConfig::new(cfg.dropout).init(),
            post_norm: cfg.norm_placement == NormPlacement::Post,
        }
    }

    /// x: [batch, time, d_model]; `memory`: the encoder's states for the cross-attention (`None`:
    /// the sub-layer is skipped); `bias` shifts MoE expert selection (bias balancing).
    pub fn forward(
        &self,
        x: Tensor<3>,
        mask: &Tensor<4, Bool>,
        memory: Option<&Memory>,
        bias: Option<&[f32]>,
    ) -> BlockOutput {
        let h = self.branch_input(&self.norm1, x.clone());
        let a = match (&self.attn, &self.mla) {
            (Some(a), _) => a.forward(h, mask),
            (None, Some(l)) => l.forward(h, mask),
            (None, None) => h.zeros_like(),
        };
        let mut x = self.sum(&self.norm1, x + self.dropout.forward(a));
        if let (Some(cross), Some(memory)) = (&self.cross, memory) {
            let h = self.branch_input(&self.norm_cross, x.clone());
            let c = cross.forward(h, memory);
            x = self.sum(&self.norm_cross, x + self.dropout.forward(c));
        }
        let h = self.branch_input(&self.norm2, x.clone());
        let (y, aux, stats) = match (&self.ffn, &self.moe) {
            (Some(f), _) => (f.forward(h), None, None),
            (None, Some(m)) => {
                let o = m.forward(h, bias);
                (o.y, o.aux, Some(o.stats))
            }
            (None, None) => (h.zeros_like(), None, None),
        };
        BlockOutput {
            x: self.sum(&self.norm2, x + self.dropout.forward(y)),
            aux,
            stats,
        }
    }

    /// A branch's input: normalised before the branch (pre-norm) or not (post-norm).
    fn branch_input(&self, norm: &Norm, x: Tensor<3>) -> Tensor<3> {
        if self.post_norm {
            x
        } else {
            norm.forward(x)
        }
    }

    /// The residual sum after a branch: normalised (post-norm) or not (pre-norm).
    fn sum(&self, norm: &Norm, x: Tensor<3>) -> Tensor<3> {
        if self.post_norm {
            norm.forward(x)
        } else {
            x
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dyt_starts_as_tanh_of_half_the_input() {
        let dev = Device::default();
        let mut cfg = ModelConfig::new(1, 4, 1, 10, 4);
        cfg.norm = NormKind::Dyt;
        let x = Tensor::<3>::from_data(
            TensorData::new(
                vec![-4.0f32, -1.0, 0.0, 2.0, 0.5, 1.5, -0.25, 8.0],
                [1, 2, 4],
            ),
            &dev,
        );
        let y = Norm::new(&cfg, &dev).forward(x.clone());
        let want: Vec<f32> = x
            .into_data()
            .iter::<f32>()
            .map(|v| (0.5 * v).tanh())
            .collect();
        y.into_data().assert_approx_eq::<f32>(
            &TensorData::new(want, [1, 2, 4]),
            burn::tensor::Tolerance::absolute(1e-7),
        );
    }
}

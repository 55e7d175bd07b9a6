//! Building blocks of the decoder: normalisation, attention and feed-forward.

use crate::config::{Ffn, Mlp as MlpKind, ModelConfig, Norm as NormKind, NormPlacement, Position};
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
            (Some(l), _, _) => l.forward(to_f32(x)),
            (None, Some(r), _) => r.forward(to_f32(x)),
            (None, None, Some(t)) => t.forward(to_f32(x)),
            (None, None, None) => return x,
        };
        y.cast(dtype)
    }
}

/// Multi-head self-attention with a boolean mask (true = may not attend); with fewer key/value
/// heads than query heads, grouped-query (multi-query at one) attention: query head i reads
/// key/value head i / (n_head / n_kv_head).
#[derive(Module, Debug)]
pub struct Attention {
    qkv: Linear,
    out: Linear,
    rope: Option<RotaryEncoding>,
    dropout: Dropout,
    n_head: usize,
    n_kv_head: usize,
    alibi: bool,
}

/// How many times the training length rotary tables (and so evaluations) reach.
pub const LONGEST_EVAL_FACTOR: usize = 4;

/// ALiBi's head slopes (Press et al. 2022, their reference code): for a power of two n,
/// 2^(-8h/n) for h = 1..n; otherwise those of the power of two below n, then every other slope of
/// the power of two above.
pub fn alibi_slopes(n: usize) -> Vec<f64> {
    let power_of_two = |p: usize| -> Vec<f64> {
        let start = 2f64.powf(-8.0 / p as f64);
        (1..=p).map(|h| start.powi(h as i32)).collect()
    };
    if n.is_power_of_two() {
        return power_of_two(n);
    }
    let below = 1 << n.ilog2();
    let mut slopes = power_of_two(below);
    slopes.extend(
        alibi_slopes(2 * below)
            .into_iter()
            .step_by(2)
            .take(n - below),
    );
    slopes
}

/// ALiBi's score biases [1, h, t, t]: -m_h |i - j| (the masked half never counts).
fn alibi_bias(h: usize, t: usize, device: &Device) -> Tensor<4> {
    let mut values = Vec::with_capacity(h * t * t);
    for m in alibi_slopes(h) {
        for i in 0..t {
            values.extend((0..t).map(|j| (-m * i.abs_diff(j) as f64) as f32));
        }
    }
    Tensor::from_data(TensorData::new(values, [1, h, t, t]), device)
}

impl Attention {
    /// Attention for the configuration; the output projection is scaled by 1/sqrt(2 n_layer).
    pub fn new(cfg: &ModelConfig, device: &Device) -> Self {
        let d = cfg.d_model;
        let resid_std = cfg.init_std / (2.0 * cfg.n_layer as f64).sqrt();
        let d_kv = cfg.kv_heads() * cfg.d_head();
        Attention {
            qkv: linear(d, d + 2 * d_kv, cfg.bias, cfg.init_std, device),
            out: linear(d, d, cfg.bias, resid_std, device),
            rope: (cfg.position == Position::Rope).then(|| {
                RotaryEncodingConfig::new(LONGEST_EVAL_FACTOR * cfg.seq_len, cfg.d_head())
                    .init(device)
            }),
            dropout: DropoutConfig::new(cfg.dropout).init(),
            n_head: cfg.n_head,
            n_kv_head: cfg.kv_heads(),
            alibi: cfg.position == Position::Alibi,
        }
    }

    /// x: [batch, time, d_model]; mask: [batch or 1, 1, time, time].
    pub fn forward(&self, x: Tensor<3>, mask: &Tensor<4, Bool>) -> Tensor<3> {
        let [b, t, d] = x.dims();
        let (h, kv, hd) = (self.n_head, self.n_kv_head, d / self.n_head);
        let dtype = x.dtype();
        let mut qkv = project(&self.qkv, x)
            .split_with_sizes(vec![d, kv * hd, kv * hd], 2)
            .into_iter();
        let mut heads = |n: usize| {
            let z = qkv.next().expect("three projections");
            z.reshape([b, t, n, hd]).swap_dims(1, 2)
        };
        let (mut q, mut k, v) = (heads(h), heads(kv), heads(kv));
        if let Some(rope) = &self.rope {
            q = rope.forward(to_f32(q)).cast(dtype);
            k = rope.forward(to_f32(k)).cast(dtype);
        }
        let (k, v) = (share_kv(k, h), share_kv(v, h));
        let mut scores = to_f32(q.matmul(k.swap_dims(2, 3))).mul_scalar(1.0 / (hd as f64).sqrt());
        if self.alibi {
            let bias = alibi_bias(h, t, &scores.device());
            scores = scores + bias;
        }
        let scores = scores.mask_fill(mask.clone().expand([b, h, t, t]), f32::NEG_INFINITY);
        let att = self.dropout.forward(softmax(scores, 3)).cast(dtype);
        let y = att.matmul(v).swap_dims(1, 2).reshape([b, t, d]);
        project(&self.out, y)
    }
}

/// Key or value heads [b, kv, t, hd] repeated for `h` query heads ([b, h, t, hd]): query head i
/// reads head i / (h / kv). Unchanged when kv = h.
fn share_kv(z: Tensor<4>, h: usize) -> Tensor<4> {
    let [b, kv, t, hd] = z.dims();
    if kv == h {
        return z;
    }
    z.unsqueeze_dim::<5>(2)
        .expand([b, kv, h / kv, t, hd])
        .reshape([b, h, t, hd])
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

/// Transformer block with a dense or MoE ffn (exactly one of `ffn`, `moe` is set). Pre-norm:
/// x + attn(norm1(x)), then x + ffn(norm2(x)); post-norm: norm1(x + attn(x)), then
/// norm2(x + ffn(x)).
#[derive(Module, Debug)]
pub struct Block {
    norm1: Norm,
    attn: Attention,
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
    /// One block of the configuration.
    pub fn new(cfg: &ModelConfig, device: &Device) -> Self {
        Block {
            norm1: Norm::new(cfg, device),
            attn: Attention::new(cfg, device),
            norm2: Norm::new(cfg, device),
            ffn: (cfg.ffn == Ffn::Dense).then(|| FeedForward::new(cfg, device)),
            moe: (cfg.ffn == Ffn::Moe).then(|| Moe::new(cfg, device)),
            dropout: DropoutConfig::new(cfg.dropout).init(),
            post_norm: cfg.norm_placement == NormPlacement::Post,
        }
    }

    /// x: [batch, time, d_model]; `bias` shifts MoE expert selection (bias balancing).
    pub fn forward(
        &self,
        x: Tensor<3>,
        mask: &Tensor<4, Bool>,
        bias: Option<&[f32]>,
    ) -> BlockOutput {
        let h = self.branch_input(&self.norm1, x.clone());
        let x = self.sum(
            &self.norm1,
            x + self.dropout.forward(self.attn.forward(h, mask)),
        );
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
    use crate::decoder::Decoder;

    /// Key or value columns [d, kv * hd] repeated so that head i of `h` reads head i / (h / kv).
    fn repeat_heads(w: Tensor<2>, kv: usize, h: usize) -> Tensor<2> {
        let [d, cols] = w.dims();
        let hd = cols / kv;
        w.reshape([d, kv, 1, hd])
            .expand([d, kv, h / kv, hd])
            .reshape([d, h * hd])
    }

    #[test]
    fn alibi_slopes_follow_the_reference_code() {
        // 8 heads: 1/2, 1/4, ..., 1/256.
        let eight: Vec<f64> = (1..=8).map(|h| 0.5f64.powi(h)).collect();
        assert_eq!(alibi_slopes(8), eight);
        // 4 heads: 2^-2, 2^-4, 2^-6, 2^-8.
        assert_eq!(alibi_slopes(4), vec![0.25, 0.0625, 0.015625, 0.00390625]);
        // 6 heads: the four of 4, then slopes 1 and 3 (0-based 0, 2) of 8: 2^-1, 2^-3.
        let six = alibi_slopes(6);
        assert_eq!(six[..4], alibi_slopes(4)[..]);
        assert_eq!(six[4..], [0.5, 0.125]);
        assert_eq!(alibi_slopes(1), vec![2f64.powi(-8)]);
    }

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

    #[test]
    fn grouped_query_attention_is_multi_head_attention_with_shared_keys_and_values() {
        let dev = Device::default();
        dev.seed(3);
        let mut cfg = ModelConfig::new(1, 32, 8, 50, 12);
        cfg.position = Position::Rope;
        let (d, t) = (cfg.d_model, cfg.seq_len);
        let x = Tensor::<3>::random(
            [2, t, d],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &dev,
        );
        let mask = Decoder::causal_mask(t, &dev);
        for kv in [1, 2, 4] {
            cfg.n_kv_head = Some(kv);
            let gqa = Attention::new(&cfg, &dev);
            cfg.n_kv_head = None;
            let mut mha = Attention::new(&cfg, &dev);
            let d_kv = kv * cfg.d_head();
            let w = gqa
                .qkv
                .weight
                .val()
                .split_with_sizes(vec![d, d_kv, d_kv], 1);
            let joined = Tensor::cat(
                vec![
                    w[0].clone(),
                    repeat_heads(w[1].clone(), kv, cfg.n_head),
                    repeat_heads(w[2].clone(), kv, cfg.n_head),
                ],
                1,
            );
            mha.qkv.weight = Param::from_tensor(joined);
            mha.out.weight = Param::from_tensor(gqa.out.weight.val());
            let (a, b) = (
                gqa.forward(x.clone(), &mask).into_data(),
                mha.forward(x.clone(), &mask).into_data(),
            );
            a.assert_approx_eq::<f32>(&b, burn::tensor::Tolerance::absolute(1e-6));
            // Different keys per head would give different outputs: the check can fail.
            let mut other = Attention::new(&cfg, &dev);
            other.out.weight = Param::from_tensor(gqa.out.weight.val());
            let c = other.forward(x.clone(), &mask).into_data();
            let diff = a
                .iter::<f32>()
                .zip(c.iter::<f32>())
                .fold(0f32, |m, (p, q)| m.max((p - q).abs()));
            assert!(diff > 1e-4, "kv {kv}: {diff}");
        }
    }
}

//! Self-attention: multi-head, grouped-query and multi-query attention, and multi-head latent
//! attention; rotary, ALiBi or no positions inside it.

use crate::config::{MlaConfig, ModelConfig, Position};
use crate::fused::softmax;
use crate::layers::linear;
use crate::precision::{project, to_f32};
use burn::module::Module;
use burn::nn::{
    Dropout, DropoutConfig, Linear, RmsNorm, RmsNormConfig, RotaryEncoding, RotaryEncodingConfig,
};
use burn::prelude::*;

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
        let y = attend(q, k, v, mask, self.alibi, &self.dropout);
        project(&self.out, y.swap_dims(1, 2).reshape([b, t, d]))
    }
}

/// The score a masked key gets: finite, so that a query with every key masked (an encoder's
/// padding, a cross-attention to an empty input) softmaxes to finite weights instead of NaN; where
/// any key is open, exp(MASKED - max) is exactly 0, as with -inf.
const MASKED: f32 = -1e30;

/// Scaled dot-product attention of queries [b, h, tq, dk] and keys [b, h, tk, dk] over values
/// [b, h, tk, dv] under `mask` ([b or 1, 1, tq or 1, tk], true = may not attend), with ALiBi's
/// biases when `alibi` (self-attention only); scores and softmax in f32. Returns [b, h, tq, dv]
/// in the values' dtype.
fn attend(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    mask: &Tensor<4, Bool>,
    alibi: bool,
    dropout: &Dropout,
) -> Tensor<4> {
    let [b, h, tq, dk] = q.dims();
    let tk = k.dims()[2];
    let dtype = v.dtype();
    let mut scores = to_f32(q.matmul(k.swap_dims(2, 3))).mul_scalar(1.0 / (dk as f64).sqrt());
    if alibi {
        let bias = alibi_bias(h, tq, &scores.device());
        scores = scores + bias;
    }
    let scores = scores.mask_fill(mask.clone().expand([b, h, tq, tk]), MASKED);
    let att = dropout.forward(softmax(scores)).cast(dtype);
    att.matmul(v)
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

/// Cross-attention of a decoder block to the encoder's output (T5): queries from the decoder's
/// stream, keys and values from the encoder's (which may be of another width), no positions.
#[derive(Module, Debug)]
pub struct CrossAttention {
    q: Linear,
    kv: Linear,
    out: Linear,
    dropout: Dropout,
    n_head: usize,
}

impl CrossAttention {
    /// Cross-attention from the decoder of `cfg` to an encoder of width `d_source`; the output
    /// projection is scaled by 1/sqrt(2 n_layer) like the decoder's other residual branches.
    pub fn new(cfg: &ModelConfig, d_source: usize, device: &Device) -> Self {
        let d = cfg.d_model;
        let resid_std = cfg.init_std / (2.0 * cfg.n_layer as f64).sqrt();
        CrossAttention {
            q: linear(d, d, cfg.bias, cfg.init_std, device),
            kv: linear(d_source, 2 * d, cfg.bias, cfg.init_std, device),
            out: linear(d, d, cfg.bias, resid_std, device),
            dropout: DropoutConfig::new(cfg.dropout).init(),
            n_head: cfg.n_head,
        }
    }

    /// x: [batch, time, d_model] attending to `source`'s states; a row whose source is empty
    /// gets exactly 0 (the block is then the decoder's without cross-attention).
    pub fn forward(&self, x: Tensor<3>, source: &crate::encoder::Memory) -> Tensor<3> {
        let [b, t, d] = x.dims();
        let ts = source.states.dims()[1];
        let (h, hd) = (self.n_head, d / self.n_head);
        let q = project(&self.q, x).reshape([b, t, h, hd]).swap_dims(1, 2);
        let kv = project(&self.kv, source.states.clone()).reshape([b, ts, 2, h, hd]);
        let k = kv
            .clone()
            .narrow(2, 0, 1)
            .reshape([b, ts, h, hd])
            .swap_dims(1, 2);
        let v = kv.narrow(2, 1, 1).reshape([b, ts, h, hd]).swap_dims(1, 2);
        let y = attend(q, k, v, &source.padding, false, &self.dropout);
        let y = project(&self.out, y.swap_dims(1, 2).reshape([b, t, d]));
        let dtype = y.dtype();
        y * source.present.clone().cast(dtype)
    }
}

/// Multi-head latent attention (DeepSeek-V2): keys and values come up from a shared latent of
/// `kv_rank` dimensions (RMS-normalised), queries from their own latent of `q_rank`; with rotary
/// positions, each head's query and key also carry `rope_dim` decoupled rotary dimensions, the
/// key's shared by every head. At inference a token caches only its latent and its rotary key.
#[derive(Module, Debug)]
pub struct LatentAttention {
    q_down: Linear,
    q_norm: RmsNorm,
    q_up: Linear,
    kv_down: Linear,
    kv_norm: RmsNorm,
    kv_up: Linear,
    out: Linear,
    rope: Option<RotaryEncoding>,
    dropout: Dropout,
    n_head: usize,
    kv_rank: usize,
    rope_dim: usize,
    alibi: bool,
}

impl LatentAttention {
    /// Latent attention for a configuration with `mla` set; the output projection is scaled by
    /// 1/sqrt(2 n_layer).
    pub fn new(cfg: &ModelConfig, m: &MlaConfig, device: &Device) -> Self {
        let (d, h, hd) = (cfg.d_model, cfg.n_head, cfg.d_head());
        let r = m.rope_dim;
        let std = cfg.init_std;
        let resid_std = std / (2.0 * cfg.n_layer as f64).sqrt();
        LatentAttention {
            q_down: linear(d, m.q_rank, cfg.bias, std, device),
            q_norm: RmsNormConfig::new(m.q_rank).init(device),
            q_up: linear(m.q_rank, h * (hd + r), cfg.bias, std, device),
            kv_down: linear(d, m.kv_rank + r, cfg.bias, std, device),
            kv_norm: RmsNormConfig::new(m.kv_rank).init(device),
            kv_up: linear(m.kv_rank, 2 * h * hd, cfg.bias, std, device),
            out: linear(h * hd, d, cfg.bias, resid_std, device),
            rope: (r > 0).then(|| {
                RotaryEncodingConfig::new(LONGEST_EVAL_FACTOR * cfg.seq_len, r).init(device)
            }),
            dropout: DropoutConfig::new(cfg.dropout).init(),
            n_head: h,
            kv_rank: m.kv_rank,
            rope_dim: r,
            alibi: cfg.position == Position::Alibi,
        }
    }

    /// x: [batch, time, d_model]; mask: [batch or 1, 1, time, time].
    pub fn forward(&self, x: Tensor<3>, mask: &Tensor<4, Bool>) -> Tensor<3> {
        let [b, t, d] = x.dims();
        let (h, r) = (self.n_head, self.rope_dim);
        let hd = d / h;
        let dtype = x.dtype();
        let heads = |z: Tensor<3>, width: usize| z.reshape([b, t, h, width]).swap_dims(1, 2);
        let latent_q = self
            .q_norm
            .forward(to_f32(project(&self.q_down, x.clone())))
            .cast(dtype);
        let q = heads(project(&self.q_up, latent_q), hd + r);
        let kv_a = project(&self.kv_down, x);
        let latent_kv = kv_a.clone().narrow(2, 0, self.kv_rank);
        let latent_kv = self.kv_norm.forward(to_f32(latent_kv)).cast(dtype);
        let kv = heads(project(&self.kv_up, latent_kv), 2 * hd);
        let (k, v) = (kv.clone().narrow(3, 0, hd), kv.narrow(3, hd, hd));
        let (q, k) = match &self.rope {
            Some(rope) => {
                let q_rope = rope.forward(to_f32(q.clone().narrow(3, hd, r))).cast(dtype);
                let k_rope = kv_a.narrow(2, self.kv_rank, r).reshape([b, 1, t, r]);
                let k_rope = rope
                    .forward(to_f32(k_rope))
                    .cast(dtype)
                    .expand([b, h, t, r]);
                (
                    Tensor::cat(vec![q.narrow(3, 0, hd), q_rope], 3),
                    Tensor::cat(vec![k, k_rope], 3),
                )
            }
            None => (q, k),
        };
        let y = attend(q, k, v, mask, self.alibi, &self.dropout);
        project(&self.out, y.swap_dims(1, 2).reshape([b, t, h * hd]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decoder::Decoder;
    use burn::module::Param;

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

    /// Key or value columns [d, kv * hd] repeated so that head i of `h` reads head i / (h / kv).
    fn repeat_heads(w: Tensor<2>, kv: usize, h: usize) -> Tensor<2> {
        let [d, cols] = w.dims();
        let hd = cols / kv;
        w.reshape([d, kv, 1, hd])
            .expand([d, kv, h / kv, hd])
            .reshape([d, h * hd])
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

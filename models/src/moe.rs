//! Fine-grained mixture-of-experts feed-forward (DeepSeekMoE / DeepSeek-V3 style): top-k routing
//! with softmax or sigmoid scores, shared experts, auxiliary-loss or bias balancing, router z-loss,
//! and an optional capacity with token dropping.
//!
//! Experts are computed together, not one token at a time: the routing is read back once per layer,
//! tokens are gathered into a padded [experts, slots, d_model] block (slots = the largest expert
//! load, or the capacity), every expert runs as one batched matmul against stacked weights
//! [experts, d_model, d_expert], and the gated outputs are scattered back with an indexed add.

use crate::config::{Balance, Mlp, ModelConfig, Router};
use crate::fused::{gelu, softmax};
use crate::layers::{linear, FeedForward};
use crate::precision::{like, to_f32};
use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::activation::{sigmoid, silu};
use burn::tensor::{Distribution, IndexingUpdateOp};

/// Routing statistics of one MoE layer over one forward pass.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LayerStats {
    /// Token assignments each routed expert received (before capacity dropping).
    pub load: Vec<usize>,
    /// Assignments dropped by the capacity.
    pub dropped: usize,
}

impl LayerStats {
    /// Adds another pass's counts.
    pub fn add(&mut self, other: &LayerStats) {
        if self.load.len() < other.load.len() {
            self.load.resize(other.load.len(), 0);
        }
        for (a, b) in self.load.iter_mut().zip(&other.load) {
            *a += b;
        }
        self.dropped += other.dropped;
    }

    /// Total assignments.
    pub fn assignments(&self) -> usize {
        self.load.iter().sum()
    }
}

/// Output of an MoE layer.
pub struct MoeOutput {
    /// [batch, time, d_model].
    pub y: Tensor<3>,
    /// Balance and z-losses to add to the training loss (already weighted).
    pub aux: Option<Tensor<1>>,
    /// Routing statistics.
    pub stats: LayerStats,
}

/// A mixture-of-experts feed-forward layer.
#[derive(Module, Debug)]
pub struct Moe {
    router: Linear,
    w_in: Param<Tensor<3>>,
    w_gate: Option<Param<Tensor<3>>>,
    w_out: Param<Tensor<3>>,
    b_in: Option<Param<Tensor<2>>>,
    b_gate: Option<Param<Tensor<2>>>,
    b_out: Option<Param<Tensor<2>>>,
    shared: Option<FeedForward>,
    experts: usize,
    top_k: usize,
    sigmoid_router: bool,
    aux_weight: f64,
    z_weight: f64,
    /// 0 = dropless.
    capacity_factor: f64,
}

fn normal<const D: usize>(shape: [usize; D], std: f64, device: &Device) -> Param<Tensor<D>> {
    Param::from_tensor(Tensor::random(
        shape,
        Distribution::Normal(0.0, std),
        device,
    ))
}

impl Moe {
    /// The MoE layer of a configuration with `ffn: moe`.
    pub fn new(cfg: &ModelConfig, device: &Device) -> Self {
        let m = cfg.moe().expect("validated: ffn: moe has settings");
        let (d, f, e) = (cfg.d_model, cfg.d_expert(), m.experts());
        let resid_std = cfg.init_std / (2.0 * cfg.n_layer as f64).sqrt();
        let swiglu = cfg.mlp == Mlp::Swiglu;
        let zeros = |n: usize| Param::from_tensor(Tensor::zeros([e, n], device));
        Moe {
            router: linear(d, e, false, cfg.init_std, device),
            w_in: normal([e, d, f], cfg.init_std, device),
            w_gate: swiglu.then(|| normal([e, d, f], cfg.init_std, device)),
            w_out: normal([e, f, d], resid_std, device),
            b_in: cfg.bias.then(|| zeros(f)),
            b_gate: (cfg.bias && swiglu).then(|| zeros(f)),
            b_out: cfg.bias.then(|| zeros(d)),
            shared: (m.n_shared > 0)
                .then(|| FeedForward::with_width(cfg, m.n_shared * cfg.d_ff(), device)),
            experts: e,
            top_k: m.active(),
            sigmoid_router: m.router == Router::Sigmoid,
            aux_weight: if m.balance == Balance::AuxLoss {
                m.aux_weight
            } else {
                0.0
            },
            z_weight: m.z_loss,
            capacity_factor: m.capacity_factor.unwrap_or(0.0),
        }
    }

    /// Routes and computes x [batch, time, d_model]. `bias` (one per routed expert) shifts the
    /// selection only (auxiliary-loss-free balancing); gates always come from the scores.
    pub fn forward(&self, x: Tensor<3>, bias: Option<&[f32]>) -> MoeOutput {
        let [b, t, d] = x.dims();
        let (n, e, k) = (b * t, self.experts, self.top_k);
        let device = x.device();
        let dtype = x.dtype();
        let flat = x.clone().reshape([n, d]);
        // Routing in f32 whatever the compute dtype.
        let logits = self.router.forward(to_f32(flat.clone()));
        let scores = if self.sigmoid_router {
            sigmoid(logits.clone())
        } else {
            softmax(logits.clone())
        };
        let mut select_on = scores.clone().detach();
        if let Some(bias) = bias {
            select_on =
                select_on + Tensor::<2>::from_data(TensorData::new(bias.to_vec(), [1, e]), &device);
        }
        let (_, chosen) = select_on.topk_with_indices(k, 1);
        let mut gates = scores.clone().gather(1, chosen.clone());
        if self.sigmoid_router {
            gates = gates.clone() / gates.sum_dim(1);
        }
        let chosen: Vec<i64> = chosen
            .into_data()
            .try_into_vec_as::<i64>()
            .expect("expert indices");

        // Slots: each expert's assignments in token order, up to its capacity.
        let mut by_expert: Vec<Vec<usize>> = vec![Vec::new(); e];
        let mut stats = LayerStats {
            load: vec![0; e],
            dropped: 0,
        };
        let capacity = (self.capacity_factor > 0.0)
            .then(|| ((self.capacity_factor * (n * k) as f64 / e as f64).ceil() as usize).max(1));
        for (a, &ex) in chosen.iter().enumerate() {
            let ex = ex as usize;
            stats.load[ex] += 1;
            if capacity.is_some_and(|c| by_expert[ex].len() >= c) {
                stats.dropped += 1;
            } else {
                by_expert[ex].push(a);
            }
        }
        let slots = by_expert.iter().map(Vec::len).max().unwrap_or(0).max(1);
        // Padded slots point at an extra zero row (tokens) and an extra zero gate.
        let mut token_idx = Vec::with_capacity(e * slots);
        let mut gate_idx = Vec::with_capacity(e * slots);
        for list in &by_expert {
            for s in 0..slots {
                match list.get(s) {
                    Some(&a) => {
                        token_idx.push((a / k) as i64);
                        gate_idx.push(a as i64);
                    }
                    None => {
                        token_idx.push(n as i64);
                        gate_idx.push((n * k) as i64);
                    }
                }
            }
        }
        let token_idx =
            Tensor::<1, Int>::from_data(TensorData::new(token_idx, [e * slots]), &device);
        let gate_idx = Tensor::<1, Int>::from_data(TensorData::new(gate_idx, [e * slots]), &device);
        let padded = Tensor::cat(vec![flat, Tensor::zeros([1, d], (&device, dtype))], 0);
        let xs = padded.select(0, token_idx.clone()).reshape([e, slots, d]);
        let up = |w: &Param<Tensor<3>>, bias: &Option<Param<Tensor<2>>>| {
            let h = xs.clone().matmul(like(w.val(), &xs));
            match bias {
                Some(b) => h + like(b.val(), &xs).unsqueeze_dim(1),
                None => h,
            }
        };
        let hidden = match &self.w_gate {
            Some(g) => silu(up(g, &self.b_gate)) * up(&self.w_in, &self.b_in),
            None => gelu(up(&self.w_in, &self.b_in)),
        };
        let mut out = hidden.matmul(like(self.w_out.val(), &xs));
        if let Some(bo) = &self.b_out {
            out = out + like(bo.val(), &xs).unsqueeze_dim(1);
        }
        let gate_flat = Tensor::cat(vec![gates.reshape([n * k]), Tensor::zeros([1], &device)], 0);
        let g = gate_flat
            .select(0, gate_idx)
            .reshape([e * slots, 1])
            .cast(dtype);
        let contrib = out.reshape([e * slots, d]) * g;
        let combined = Tensor::<2>::zeros([n + 1, d], (&device, dtype))
            .select_assign(0, token_idx, contrib, IndexingUpdateOp::Add)
            .slice([0..n, 0..d]);
        let mut y = combined.reshape([b, t, d]);
        if let Some(shared) = &self.shared {
            y = y + shared.forward(x);
        }

        let mut aux: Option<Tensor<1>> = None;
        if self.aux_weight > 0.0 {
            // f_i = E / (K T) x assignments_i (a constant), P_i = mean score: alpha sum f_i P_i.
            let f: Vec<f32> = stats
                .load
                .iter()
                .map(|&c| (e as f64 * c as f64 / (k * n) as f64) as f32)
                .collect();
            let f = Tensor::<2>::from_data(TensorData::new(f, [1, e]), &device);
            let p = scores.mean_dim(0);
            aux = Some((f * p).sum().mul_scalar(self.aux_weight));
        }
        if self.z_weight > 0.0 {
            let m = logits.clone().max_dim(1).detach();
            let lse = (logits - m.clone()).exp().sum_dim(1).log() + m;
            let z = lse.powf_scalar(2.0).mean().mul_scalar(self.z_weight);
            aux = Some(match aux {
                Some(a) => a + z,
                None => z,
            });
        }
        MoeOutput { y, aux, stats }
    }

    /// Routed experts.
    pub fn experts(&self) -> usize {
        self.experts
    }

    /// Routed expert `i` as a stand-alone dense feed-forward network with its weights.
    pub fn expert_as_dense(&self, i: usize) -> FeedForward {
        let take3 = |w: &Param<Tensor<3>>| {
            let [_, a, b] = w.dims();
            w.val().slice([i..i + 1, 0..a, 0..b]).reshape([a, b])
        };
        let take2 = |w: &Option<Param<Tensor<2>>>| {
            w.as_ref().map(|w| {
                let [_, a] = w.dims();
                w.val().slice([i..i + 1, 0..a]).reshape([a])
            })
        };
        FeedForward::from_weights(
            (take3(&self.w_in), take2(&self.b_in)),
            self.w_gate
                .as_ref()
                .map(|g| (take3(g), take2(&self.b_gate))),
            (take3(&self.w_out), take2(&self.b_out)),
        )
    }
}

/// Auxiliary-loss-free balancing (DeepSeek-V3): after a step, every expert's selection bias moves
/// by `rate` towards the mean load (up when under-loaded, down when over-loaded).
pub fn update_bias(bias: &mut [f32], load: &[usize], rate: f64) {
    if load.is_empty() {
        return;
    }
    let mean = load.iter().sum::<usize>() as f64 / load.len() as f64;
    for (b, &l) in bias.iter_mut().zip(load) {
        let l = l as f64;
        if l < mean {
            *b += rate as f32;
        } else if l > mean {
            *b -= rate as f32;
        }
    }
}

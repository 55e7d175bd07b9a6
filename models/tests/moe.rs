//! Mixture of experts: accounting against burn's parameter count, top-k routing, the dense limit,
//! capacity dropping, and bias balancing on a deliberately skewed router.

use burn::module::Module;
use burn::prelude::*;
use burn::tensor::Distribution;
use models::moe::{update_bias, Moe};
use models::{account, Balance, Decoder, Ffn, Mlp, ModelConfig, MoeConfig, Router};

fn device() -> Device {
    let d = Device::default();
    d.seed(11);
    d
}

fn moe_cfg(n_experts: usize, top_k: usize, granularity: usize, n_shared: usize) -> ModelConfig {
    let mut cfg = ModelConfig::new(2, 32, 2, 50, 16);
    cfg.ffn = Ffn::Moe;
    cfg.moe = Some(MoeConfig {
        n_experts,
        top_k,
        granularity,
        n_shared,
        router: Router::Softmax,
        z_loss: 0.0,
        balance: Balance::AuxLoss,
        aux_weight: 0.01,
        bias_rate: 0.001,
        capacity_factor: None,
    });
    cfg
}

fn settings(cfg: &mut ModelConfig) -> &mut MoeConfig {
    cfg.moe.as_mut().unwrap()
}

#[test]
fn accounting_matches_burn_parameter_count_for_moe() {
    let dev = device();
    let mut shapes = vec![
        moe_cfg(4, 1, 1, 0),
        moe_cfg(4, 2, 4, 1),
        moe_cfg(8, 2, 2, 2),
    ];
    let mut c = moe_cfg(4, 2, 2, 1);
    c.mlp = Mlp::Swiglu;
    c.d_ff = Some(96);
    c.bias = true;
    shapes.push(c);
    for cfg in shapes {
        cfg.validate().unwrap();
        let model = Decoder::new(&cfg, &dev);
        assert_eq!(
            account(&cfg).params_total,
            model.num_params() as u64,
            "{cfg:?}"
        );
    }
}

fn tokens(b: usize, t: usize, vocab: usize, dev: &Device) -> Tensor<2, Int> {
    let v: Vec<i64> = (0..b * t)
        .map(|i| ((i * 7919 + 13) % vocab) as i64)
        .collect();
    Tensor::from_data(TensorData::new(v, [b, t]), dev)
}

#[test]
fn top_k_routes_every_token_to_exactly_k_experts() {
    let dev = device();
    for (e, k, m) in [(4, 1, 1), (4, 2, 2), (8, 3, 1)] {
        let cfg = moe_cfg(e, k, m, 1);
        let model = Decoder::new(&cfg, &dev);
        let (b, t) = (3, cfg.seq_len);
        let out = model.forward_aux(
            tokens(b, t, cfg.vocab, &dev),
            &Decoder::causal_mask(t, &dev),
            &[],
        );
        assert_eq!(out.stats.len(), cfg.n_layer);
        for s in &out.stats {
            assert_eq!(s.load.len(), e * m);
            assert_eq!(
                s.assignments(),
                b * t * k * m,
                "every token picks k x m experts"
            );
            assert_eq!(s.dropped, 0, "dropless");
        }
        assert!(out.aux.is_some(), "aux_loss balancing adds a loss");
    }
}

#[test]
fn dropless_moe_with_one_expert_top_1_is_the_dense_ffn() {
    let dev = device();
    for mlp in [Mlp::Gelu, Mlp::Swiglu] {
        let mut cfg = moe_cfg(1, 1, 1, 0);
        cfg.mlp = mlp;
        cfg.bias = true;
        let moe = Moe::new(&cfg, &dev);
        let dense = moe.expert_as_dense(0);
        let x = Tensor::<3>::random([2, 5, cfg.d_model], Distribution::Normal(0.0, 1.0), &dev);
        let a = moe
            .forward(x.clone(), None)
            .y
            .into_data()
            .try_into_vec_as::<f32>()
            .unwrap();
        let b = dense
            .forward(x)
            .into_data()
            .try_into_vec_as::<f32>()
            .unwrap();
        let diff = a
            .iter()
            .zip(&b)
            .map(|(p, q)| (p - q).abs())
            .fold(0.0f32, f32::max);
        assert!(diff < 1e-5, "{mlp:?}: max diff {diff}");
    }
}

/// Inputs with a strong common direction: the router's response to it favours a few experts.
fn skewed_inputs(d: usize, n: usize, dev: &Device) -> Tensor<3> {
    let noise = Tensor::<3>::random([1, n, d], Distribution::Normal(0.0, 1.0), dev);
    let direction = Tensor::<3>::random([1, 1, d], Distribution::Normal(0.0, 1.0), dev);
    noise + direction.mul_scalar(2.5)
}

fn max_over_mean(load: &[usize]) -> f64 {
    let mean = load.iter().sum::<usize>() as f64 / load.len() as f64;
    *load.iter().max().unwrap() as f64 / mean
}

#[test]
fn bias_balancing_evens_a_skewed_router_and_no_balancing_does_not() {
    let dev = device();
    let mut cfg = moe_cfg(8, 2, 1, 0);
    settings(&mut cfg).balance = Balance::Bias;
    let moe = Moe::new(&cfg, &dev);
    let x = skewed_inputs(cfg.d_model, 512, &dev);
    let load = |bias: &[f32]| moe.forward(x.clone(), Some(bias)).stats.load;
    let mut bias = vec![0.0f32; 8];
    let start = max_over_mean(&load(&bias));
    assert!(start > 1.8, "the router is not skewed enough: {start}");
    for _ in 0..300 {
        let l = load(&bias);
        update_bias(&mut bias, &l, 0.001);
    }
    let balanced = max_over_mean(&load(&bias));
    // Without balancing the same router keeps its skew (the bias stays 0).
    let unbalanced = max_over_mean(&moe.forward(x.clone(), None).stats.load);
    eprintln!("max/mean load: {start:.3} at the start, {balanced:.3} after 300 bias steps");
    assert!(
        balanced < 1.35,
        "bias balancing left max/mean load at {balanced} (from {start})"
    );
    assert!((unbalanced - start).abs() < 1e-9 && unbalanced > 1.8);
}

#[test]
fn capacity_drops_the_overflow_and_counts_it() {
    let dev = device();
    let mut cfg = moe_cfg(8, 2, 1, 0);
    settings(&mut cfg).capacity_factor = Some(1.0);
    let moe = Moe::new(&cfg, &dev);
    let x = skewed_inputs(cfg.d_model, 256, &dev);
    let s = moe.forward(x.clone(), None).stats;
    let capacity = (256 * 2) / 8;
    let expected: usize = s.load.iter().map(|&l| l.saturating_sub(capacity)).sum();
    assert!(expected > 0);
    assert_eq!(s.dropped, expected);
    assert_eq!(
        s.assignments(),
        512,
        "the load counts assignments before dropping"
    );
}

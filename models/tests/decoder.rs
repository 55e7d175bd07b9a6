//! Accounting against burn's own parameter count, causality, and loss at initialisation.

use burn::module::Module;
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use models::{
    account, Decoder, MlaConfig, Mlp, ModelConfig, MtpConfig, Norm, NormPlacement, Position,
};

/// The CPU backend: these tests compare logits bit for bit, which holds on one deterministic
/// backend; under a workspace build `Device::default()` is wgpu, whose autotuned kernels may
/// differ between two calls (GPU parity is tests/gpu.rs's job, within a tolerance).
fn device() -> Device {
    let d = Device::flex();
    d.seed(7);
    d
}

fn shapes() -> Vec<ModelConfig> {
    let mut out = vec![
        ModelConfig::new(4, 128, 4, 256, 128),
        ModelConfig::new(1, 32, 1, 50, 16),
    ];
    let mut c = ModelConfig::new(2, 64, 2, 100, 32);
    c.tie_embeddings = true;
    c.position = Position::Rope;
    c.mlp = Mlp::Swiglu;
    c.norm = Norm::Rmsnorm;
    c.bias = true;
    out.push(c);
    let mut c = ModelConfig::new(3, 48, 3, 70, 24);
    c.bias = true;
    c.d_ff = Some(100);
    out.push(c);
    // Grouped-query (2 key/value heads for 4 query heads, with biases) and multi-query attention.
    let mut c = ModelConfig::new(2, 64, 4, 60, 16);
    c.n_kv_head = Some(2);
    c.bias = true;
    c.position = Position::Rope;
    out.push(c);
    let mut c = ModelConfig::new(2, 48, 6, 60, 16);
    c.n_kv_head = Some(1);
    out.push(c);
    // DyT in pre-norm blocks, LayerNorm and DyT in post-norm ones.
    let mut c = ModelConfig::new(2, 32, 2, 40, 16);
    c.norm = Norm::Dyt;
    out.push(c);
    let mut c = ModelConfig::new(2, 32, 2, 40, 16);
    c.norm_placement = NormPlacement::Post;
    c.bias = true;
    out.push(c);
    let mut c = ModelConfig::new(2, 32, 2, 40, 16);
    c.norm = Norm::Dyt;
    c.norm_placement = NormPlacement::Post;
    out.push(c);
    // Latent attention, with decoupled rotary dimensions and biases, and without rotary positions.
    let mut c = ModelConfig::new(2, 32, 4, 40, 16);
    c.position = Position::Rope;
    c.bias = true;
    c.mla = Some(MlaConfig {
        kv_rank: 8,
        q_rank: 12,
        rope_dim: 4,
    });
    out.push(c);
    let mut c = ModelConfig::new(2, 32, 4, 40, 16);
    c.position = Position::None;
    c.mla = Some(MlaConfig {
        kv_rank: 6,
        q_rank: 10,
        rope_dim: 0,
    });
    out.push(c);
    // Multi-token prediction, two modules.
    let mut c = ModelConfig::new(2, 32, 2, 40, 16);
    c.mtp = Some(MtpConfig {
        depth: 2,
        weight: 0.3,
    });
    out.push(c);
    // The position schemes without parameters.
    for position in [Position::Sinusoidal, Position::Alibi, Position::None] {
        let mut c = ModelConfig::new(2, 32, 4, 40, 16);
        c.position = position;
        out.push(c);
    }
    out
}

#[test]
fn accounting_matches_burn_parameter_count() {
    let dev = device();
    for cfg in shapes() {
        let model = Decoder::new(&cfg, &dev);
        assert_eq!(
            account(&cfg).params_total,
            model.num_params() as u64,
            "{cfg:?}"
        );
    }
}

fn random_tokens(b: usize, t: usize, vocab: usize, salt: u64, dev: &Device) -> Vec<i64> {
    let _ = dev;
    (0..b * t)
        .map(|i| ((i as u64 * 2654435761 + salt * 97) % vocab as u64) as i64)
        .collect()
}

#[test]
fn changing_later_tokens_leaves_earlier_logits_unchanged() {
    let dev = device();
    for cfg in shapes() {
        let model = Decoder::new(&cfg, &dev);
        let t = cfg.seq_len;
        let a = random_tokens(1, t, cfg.vocab, 1, &dev);
        let mut b = a.clone();
        let cut = t / 2;
        for (i, v) in b.iter_mut().enumerate().skip(cut + 1) {
            *v = (*v + 1 + i as i64) % cfg.vocab as i64;
        }
        let run = |toks: Vec<i64>| {
            model
                .forward(Tensor::<2, Int>::from_data(
                    TensorData::new(toks, [1, t]),
                    &dev,
                ))
                .into_data()
                .try_into_vec_as::<f32>()
                .expect("f32 logits")
        };
        let (la, lb) = (run(a), run(b));
        let v = cfg.vocab;
        let max_diff_before = (0..(cut + 1) * v)
            .map(|i| (la[i] - lb[i]).abs())
            .fold(0.0f32, f32::max);
        let max_diff_after = ((cut + 1) * v..t * v)
            .map(|i| (la[i] - lb[i]).abs())
            .fold(0.0f32, f32::max);
        assert!(
            max_diff_before < 1e-5,
            "positions <= {cut} changed by {max_diff_before} ({cfg:?})"
        );
        assert!(
            max_diff_after > 1e-6,
            "later positions did not change at all ({cfg:?})"
        );
    }
}

#[test]
fn loss_at_initialisation_is_near_ln_vocab() {
    let dev = device();
    for cfg in shapes() {
        let model = Decoder::new(&cfg, &dev);
        let (b, t, v) = (4, cfg.seq_len, cfg.vocab);
        let x = Tensor::<2, Int>::from_data(
            TensorData::new(random_tokens(b, t, v, 3, &dev), [b, t]),
            &dev,
        );
        let y = Tensor::<2, Int>::from_data(
            TensorData::new(random_tokens(b, t, v, 5, &dev), [b * t, 1]),
            &dev,
        );
        let logp = log_softmax(model.forward(x).reshape([b * t, v]), 1);
        let loss: f32 = logp.gather(1, y).mean().neg().into_scalar();
        let expected = (v as f32).ln();
        assert!(
            (loss - expected).abs() < 0.15,
            "loss {loss} vs ln(vocab) {expected} ({cfg:?})"
        );
    }
}

/// Logits of one sequence under the prefix mask for prefix length `p`, flattened [t * vocab].
fn prefix_logits(model: &Decoder, toks: &[i64], p: usize, dev: &Device) -> Vec<f32> {
    let t = toks.len();
    let x = Tensor::<2, Int>::from_data(TensorData::new(toks.to_vec(), [1, t]), dev);
    model
        .forward_masked(x, &Decoder::prefix_mask(&[p], t, dev))
        .into_data()
        .try_into_vec_as::<f32>()
        .expect("f32 logits")
}

/// Largest |a - b| over positions `range` (each `vocab` logits wide).
fn max_diff(a: &[f32], b: &[f32], range: std::ops::Range<usize>, vocab: usize) -> f32 {
    (range.start * vocab..range.end * vocab)
        .map(|i| (a[i] - b[i]).abs())
        .fold(0.0, f32::max)
}

#[test]
fn prefix_attention_is_bidirectional_in_the_prefix_and_causal_after_it() {
    let dev = device();
    let mut cfg = ModelConfig::new(2, 64, 4, 60, 24);
    cfg.arch = models::Arch::Prefix;
    cfg.prefix = Some(models::PrefixLen::Fixed(10));
    let model = Decoder::new(&cfg, &dev);
    let (t, v, p) = (cfg.seq_len, cfg.vocab, 10);
    let base = random_tokens(1, t, v, 3, &dev);
    let logits = prefix_logits(&model, &base, p, &dev);
    // Changing a later prefix token (position 7) changes an earlier prefix position's output.
    let mut later_prefix = base.clone();
    later_prefix[7] = (later_prefix[7] + 5) % v as i64;
    let changed = prefix_logits(&model, &later_prefix, p, &dev);
    assert!(max_diff(&logits, &changed, 0..1, v) > 1e-4);
    // Changing a target token (position 15) never changes a prefix position's output, nor any
    // target position before it.
    let mut target = base.clone();
    target[15] = (target[15] + 5) % v as i64;
    let changed = prefix_logits(&model, &target, p, &dev);
    assert!(max_diff(&logits, &changed, 0..15, v) < 1e-5);
    assert!(max_diff(&logits, &changed, 15..16, v) > 1e-4);
}

#[test]
fn prefix_length_zero_is_the_causal_decoder_exactly() {
    let dev = device();
    let cfg = ModelConfig::new(2, 64, 4, 60, 24);
    let model = Decoder::new(&cfg, &dev);
    let toks = random_tokens(1, cfg.seq_len, cfg.vocab, 5, &dev);
    let causal = model
        .forward(Tensor::<2, Int>::from_data(
            TensorData::new(toks.clone(), [1, cfg.seq_len]),
            &dev,
        ))
        .into_data()
        .try_into_vec_as::<f32>()
        .unwrap();
    assert_eq!(prefix_logits(&model, &toks, 0, &dev), causal);
    // A prefix of one token is also causal (a token attending to itself).
    assert_eq!(prefix_logits(&model, &toks, 1, &dev), causal);
}

#[test]
fn schemes_that_extend_read_four_times_the_training_length() {
    let dev = device();
    for position in [
        Position::Rope,
        Position::Sinusoidal,
        Position::Alibi,
        Position::None,
    ] {
        let mut cfg = ModelConfig::new(1, 32, 4, 40, 8);
        cfg.position = position;
        assert!(position.extends_past_training_length());
        let model = Decoder::new(&cfg, &dev);
        let t = 4 * cfg.seq_len;
        let toks = random_tokens(1, t, cfg.vocab, 3, &dev);
        let long = model.forward(Tensor::<2, Int>::from_data(
            TensorData::new(toks.clone(), [1, t]),
            &dev,
        ));
        assert_eq!(long.dims(), [1, t, cfg.vocab]);
        // The first seq_len positions give the logits of the training-length forward pass.
        let short = model.forward(Tensor::<2, Int>::from_data(
            TensorData::new(toks[..cfg.seq_len].to_vec(), [1, cfg.seq_len]),
            &dev,
        ));
        let head = long.slice([0..1, 0..cfg.seq_len, 0..cfg.vocab]);
        head.into_data()
            .assert_approx_eq::<f32>(&short.into_data(), burn::tensor::Tolerance::absolute(1e-5));
    }
    assert!(!Position::Learned.extends_past_training_length());
}

#[test]
fn sinusoids_by_hand_and_positions_change_the_logits() {
    let dev = device();
    let table = models::decoder::sinusoids(3, 4, &dev)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    // Position 2, pair 1: angle 2 / 10000^(2/4) = 0.02.
    let want = [
        0.0,
        1.0,
        0.0,
        1.0,
        1f32.sin(),
        1f32.cos(),
        0.01f32.sin(),
        0.01f32.cos(),
        2f32.sin(),
        2f32.cos(),
        0.02f32.sin(),
        0.02f32.cos(),
    ];
    for (a, b) in table.iter().zip(want) {
        assert!((a - b).abs() < 1e-6, "{table:?}");
    }
    // ALiBi, sinusoids and no positions have the same parameters: with the same weights (loaded
    // from one model; tests run in parallel, so a seed alone does not fix them) the logits differ
    // only through the positions.
    let dev = device();
    let cfg = |position| {
        let mut c = ModelConfig::new(1, 32, 4, 40, 8);
        c.position = position;
        c
    };
    let base = Decoder::new(&cfg(Position::None), &dev);
    let toks = random_tokens(1, 8, 40, 9, &dev);
    let logits = |position| {
        Decoder::new(&cfg(position), &dev)
            .load_record(base.clone().into_record())
            .forward(Tensor::<2, Int>::from_data(
                TensorData::new(toks.clone(), [1, 8]),
                &dev,
            ))
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
    };
    let none = logits(Position::None);
    for other in [Position::Alibi, Position::Sinusoidal] {
        let diff = logits(other)
            .iter()
            .zip(&none)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(diff > 1e-3, "{other:?} vs none: {diff}");
    }
    // The first position attends only to itself: its logits do not depend on ALiBi.
    let alibi = logits(Position::Alibi);
    assert!(alibi[..40]
        .iter()
        .zip(&none[..40])
        .all(|(a, b)| (a - b).abs() < 1e-6));
}

#[test]
fn multi_token_prediction_depth_zero_is_the_plain_model_and_depths_see_ahead() {
    let dev = device();
    let mut cfg = ModelConfig::new(2, 32, 2, 40, 12);
    let plain = Decoder::new(&cfg, &dev);
    cfg.mtp = Some(MtpConfig {
        depth: 0,
        weight: 0.3,
    });
    cfg.validate().unwrap();
    let zero = Decoder::new(&cfg, &dev).load_record(plain.clone().into_record());
    assert_eq!(account(&cfg).params_total, plain.num_params() as u64);
    let toks = random_tokens(2, 12, 40, 4, &dev);
    let x = || Tensor::<2, Int>::from_data(TensorData::new(toks.clone(), [2, 12]), &dev);
    let mask = Decoder::causal_mask(12, &dev);
    let (a, b) = (
        plain.forward_aux(x(), &mask, &[]),
        zero.forward_aux(x(), &mask, &[]),
    );
    assert!(b.hidden.is_none());
    a.logits.into_data().assert_eq(&b.logits.into_data(), true);
    // Depth 3: depth k's logits cover the 12 - k positions with a token k + 1 ahead; the main
    // logits are those of the same weights without the modules.
    cfg.mtp = Some(MtpConfig {
        depth: 3,
        weight: 0.3,
    });
    let deep = Decoder::new(&cfg, &dev);
    let out = deep.forward_aux(x(), &mask, &[]);
    let heads = deep.mtp_logits(x(), out.hidden.clone().unwrap());
    let dims: Vec<[usize; 3]> = heads.iter().map(|l| l.dims()).collect();
    assert_eq!(dims, [[2, 11, 40], [2, 10, 40], [2, 9, 40]]);
    // Depth 1 at position i reads the token at i + 1: changing the last input token changes
    // depth 1's last position only (and no main logit before it).
    let mut changed = toks.clone();
    changed[11] = (changed[11] + 1) % 40;
    let y = Tensor::<2, Int>::from_data(TensorData::new(changed, [2, 12]), &dev);
    let out2 = deep.forward_aux(y.clone(), &mask, &[]);
    let heads2 = deep.mtp_logits(y, out2.hidden.unwrap());
    let first = |l: &Tensor<3>| {
        l.clone()
            .slice([0..1, 0..11, 0..40])
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
    };
    let (d1, d2) = (first(&heads[0]), first(&heads2[0]));
    let per_pos = |p: usize| {
        d1[p * 40..(p + 1) * 40]
            .iter()
            .zip(&d2[p * 40..(p + 1) * 40])
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()))
    };
    assert!(
        (0..10).all(|p| per_pos(p) < 1e-6),
        "earlier positions moved"
    );
    assert!(
        per_pos(10) > 1e-4,
        "the last position did not see the token ahead"
    );
}

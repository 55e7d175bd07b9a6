//! Accounting against burn's own parameter count, causality, and loss at initialisation.

use burn::module::Module;
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use models::{account, Decoder, Mlp, ModelConfig, Norm, Position};

fn device() -> Device {
    let d = Device::default();
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

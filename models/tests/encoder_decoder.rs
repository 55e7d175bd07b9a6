//! The encoder-decoder: accounting against burn's parameter count, the degenerate case (an empty
//! input is the decoder without cross-attention), bidirectional encoding and padding.

use burn::module::Module;
use burn::prelude::*;
use models::{
    account, Arch, Decoder, EncoderConfig, ModelConfig, NormPlacement, Position, Precision,
    PrefixLen, Source,
};

/// The CPU backend: these tests compare logits bit for bit, which holds on one deterministic
/// backend; under a workspace build `Device::default()` is wgpu, whose autotuned kernels may
/// differ between two calls (GPU parity is tests/gpu.rs's job, within a tolerance).
fn device() -> Device {
    let d = Device::flex();
    d.seed(11);
    d
}

fn encoder_decoder(position: Position) -> ModelConfig {
    let mut c = ModelConfig::new(2, 32, 2, 40, 12);
    c.arch = Arch::EncoderDecoder;
    c.prefix = Some(PrefixLen::Fixed(4));
    c.position = position;
    c
}

fn shapes() -> Vec<ModelConfig> {
    let mut out = vec![encoder_decoder(Position::Learned)];
    let mut c = encoder_decoder(Position::Rope);
    c.encoder = Some(EncoderConfig {
        n_layer: Some(3),
        d_model: Some(48),
        n_head: Some(4),
        d_ff: Some(72),
        share_embedding: false,
    });
    c.bias = true;
    c.tie_embeddings = true;
    out.push(c);
    let mut c = encoder_decoder(Position::Sinusoidal);
    c.norm_placement = NormPlacement::Post;
    c.encoder = Some(EncoderConfig {
        n_layer: Some(1),
        ..Default::default()
    });
    out.push(c);
    out
}

#[test]
fn accounting_matches_burn_parameter_count() {
    let dev = device();
    for cfg in shapes() {
        cfg.validate().unwrap();
        let model = Decoder::new(&cfg, &dev);
        assert!(model.has_encoder());
        assert_eq!(
            account(&cfg).params_total,
            model.num_params() as u64,
            "{cfg:?}"
        );
    }
}

fn tokens(rows: &[Vec<i64>], dev: &Device) -> Tensor<2, Int> {
    let (n, t) = (rows.len(), rows[0].len());
    Tensor::from_data(TensorData::new(rows.concat(), [n, t]), dev)
}

fn logits(model: &Decoder, source: Option<&Source>, target: &[Vec<i64>]) -> Vec<f32> {
    let dev = device();
    let x = tokens(target, &dev);
    let mask = Decoder::causal_mask(target[0].len(), &dev);
    model
        .forward_from(source, x, &mask, &[], Precision::F32)
        .logits
        .into_data()
        .iter::<f32>()
        .collect()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).fold(0f32, |m, (p, q)| m.max((p - q).abs()))
}

#[test]
fn an_empty_input_is_the_decoder_without_cross_attention() {
    let dev = device();
    let target = vec![vec![3, 9, 1, 22, 5, 7], vec![30, 2, 2, 8, 0, 11]];
    for position in [Position::Learned, Position::Rope] {
        let model = Decoder::new(&encoder_decoder(position), &dev);
        let plain = logits(&model, None, &target);
        let empty = Source::new(&[&[], &[]], &dev);
        assert_eq!(logits(&model, Some(&empty), &target), plain, "{position:?}");
        // One row with an input: that row's logits change, the empty row's do not.
        let source = Source::new(&[&[4, 17, 9], &[]], &dev);
        let read = logits(&model, Some(&source), &target);
        let row = plain.len() / 2;
        assert!(max_diff(&read[..row], &plain[..row]) > 1e-3);
        assert_eq!(read[row..], plain[row..]);
    }
}

#[test]
fn the_encoder_is_bidirectional_and_ignores_padding() {
    let dev = device();
    let model = Decoder::new(&encoder_decoder(Position::Rope), &dev);
    let target = vec![vec![1, 2, 3, 4, 5]];
    let base = logits(&model, Some(&Source::new(&[&[6, 7, 8]], &dev)), &target);
    // The last input token reaches the first target position: attention over the input is not
    // causal.
    let changed = logits(&model, Some(&Source::new(&[&[6, 7, 9]], &dev)), &target);
    let v = base.len() / 5;
    assert!(max_diff(&base[..v], &changed[..v]) > 1e-4);
    // In a batch with a longer input the shorter row is padded; its logits do not change.
    let batch = Source::new(&[&[6, 7, 8], &[1, 2, 3, 4, 5, 6, 7]], &dev);
    let both = logits(
        &model,
        Some(&batch),
        &[target[0].clone(), target[0].clone()],
    );
    assert!(max_diff(&both[..base.len()], &base) < 1e-5);
}

#[test]
fn encoder_settings_are_checked() {
    let mut c = encoder_decoder(Position::Rope);
    c.encoder = Some(EncoderConfig {
        d_model: Some(48),
        ..Default::default()
    });
    assert_eq!(c.validate().unwrap_err().key, "encoder.share_embedding");
    c.encoder = Some(EncoderConfig {
        d_model: Some(48),
        n_head: Some(5),
        share_embedding: false,
        ..Default::default()
    });
    assert_eq!(c.validate().unwrap_err().key, "encoder.n_head");
    c.encoder = None;
    c.prefix = None;
    assert_eq!(c.validate().unwrap_err().key, "prefix");
    let mut causal = ModelConfig::new(1, 16, 2, 20, 8);
    causal.encoder = Some(EncoderConfig::default());
    assert_eq!(causal.validate().unwrap_err().key, "encoder");
    let parsed: Arch = serde_json::from_str("\"encoder_decoder\"").unwrap();
    assert_eq!(parsed, Arch::EncoderDecoder);
}

//! The wgpu backend against the CPU: forward/backward parity after several optimizer steps, a short
//! `lab train --backend wgpu` end to end, and the device errors. Built with `--features wgpu`; CI runs
//! it on Mesa's lavapipe (software Vulkan on the CPU), and `scripts/gpu-check.sh` on a real GPU.
//! `LAB_GPU_BACKEND=cuda` runs the same parity checks against the CUDA backend.

#![cfg(feature = "wgpu")]

mod common;

use burn::optim::GradientsParams;
use burn::prelude::*;
use common::{lab, status, text, tiny_run, write};
use lab::backend;
use lab::train::batch::Batch;
use lab::train::optim::{AdamW, AdamWSettings};
use lab::train::params;
use models::{Decoder, ModelConfig, Precision};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The GPU backend under test (wgpu unless LAB_GPU_BACKEND names another compiled in).
fn gpu_backend() -> String {
    std::env::var("LAB_GPU_BACKEND").unwrap_or_else(|_| "wgpu".into())
}

fn gpu() -> Device {
    let name = gpu_backend();
    backend::device(&name, 0).unwrap_or_else(|e| {
        panic!("{name} tests need a device (CI installs mesa-vulkan-drivers): {e}")
    })
}

/// Per-step losses and the final logits of `steps` AdamW steps of `cfg` on `device`, starting from
/// the parameters `init` and the same token rows.
fn train_steps(
    cfg: &ModelConfig,
    init: &[params::NamedTensor],
    device: &Device,
    steps: usize,
    precision: Precision,
) -> (Vec<f32>, Vec<f32>) {
    let dev = device.clone().autodiff();
    let mut model = params::import(Decoder::new(cfg, &dev), init).expect("same shapes");
    let mut opt = AdamW::new(AdamWSettings::default());
    let (batch, seq) = (4, cfg.seq_len);
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut losses = Vec::new();
    for _ in 0..steps {
        let b = Batch::random(&mut rng, cfg, batch, seq, &dev);
        let loss = b.forward(&model, b.loss_tokens, &[], precision).objective;
        let g = loss.backward();
        losses.push(loss.into_scalar());
        let grads = GradientsParams::from_grads(g, &model);
        model = opt.step(1e-2, model, grads, 1.0);
    }
    let b = Batch::random(&mut rng, cfg, batch, seq, device);
    let logits = b.logits(&model.valid());
    let logits = params::tensor_values(logits.cast(burn::tensor::FloatDType::F32));
    (losses, logits)
}

fn small() -> ModelConfig {
    let mut cfg = ModelConfig::new(2, 32, 2, 64, 16);
    cfg.init_std = 0.05;
    cfg
}

/// `lab train` of a tiny run (`tokens`, extra train lines) on the GPU backend into `dir/run`.
fn train_tiny_on_gpu(
    dir: &std::path::Path,
    tokens: u64,
    extra_train: &str,
) -> std::process::Output {
    let cfg = write(dir, "run.yaml", &tiny_run(tokens, extra_train));
    lab(
        dir,
        &[
            "train",
            cfg.to_str().unwrap(),
            "--out",
            "run",
            "--backend",
            &gpu_backend(),
        ],
    )
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Every parameter's gradient, concatenated in the module's visiting order.
struct GradValues<'a> {
    grads: &'a GradientsParams,
    out: Vec<f32>,
}

impl burn::module::ModuleVisitor for GradValues<'_> {
    fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            self.out.extend(params::tensor_values(g));
        }
    }
}

/// The gradients of the loss on one batch at the weights `init`.
fn gradients(cfg: &ModelConfig, init: &[params::NamedTensor], device: &Device) -> Vec<f32> {
    let dev = device.clone().autodiff();
    let model = params::import(Decoder::new(cfg, &dev), init).expect("same shapes");
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let b = Batch::random(&mut rng, cfg, 4, cfg.seq_len, &dev);
    let g = b
        .forward(&model, b.loss_tokens, &[], Precision::F32)
        .objective
        .backward();
    let grads = GradientsParams::from_grads(g, &model);
    let mut v = GradValues {
        grads: &grads,
        out: Vec::new(),
    };
    model.visit(&mut v);
    v.out
}

/// Trains `cfg` from one initialisation for `steps` steps on the CPU and the GPU: at the initial
/// weights the logits agree to 1e-5 and every gradient to 5e-4 of the largest, the losses over the
/// steps to `loss_tolerance` (relative), and the training moved the logits. Returns how far the
/// logits after training differ.
fn assert_trains_alike(cfg: &ModelConfig, seed: u64, steps: usize, loss_tolerance: f32) -> f32 {
    let cpu = backend::device("flex", 0).unwrap();
    cpu.seed(seed);
    let init = params::export(&Decoder::new(cfg, &cpu));
    let (cpu_loss, cpu_logits) = train_steps(cfg, &init, &cpu, steps, Precision::F32);
    let (gpu_loss, gpu_logits) = train_steps(cfg, &init, &gpu(), steps, Precision::F32);
    // The objective at initialisation is near ln(vocab), (1 + lambda) ln(vocab) with multi-token
    // prediction (sinusoids of amplitude 1 move it by 0.1).
    let lambda = cfg.mtp.as_ref().map_or(0.0, |m| m.weight as f32);
    assert!(
        (cpu_loss[0] - (1.0 + lambda) * (cfg.vocab as f32).ln()).abs() < 0.2,
        "{cfg:?}: {cpu_loss:?}"
    );
    for (c, g) in cpu_loss.iter().zip(&gpu_loss) {
        assert!(
            (c - g).abs() < loss_tolerance * c.abs(),
            "{cfg:?}: cpu {cpu_loss:?} gpu {gpu_loss:?}"
        );
    }
    let (_, cpu_init) = train_steps(cfg, &init, &cpu, 0, Precision::F32);
    let (_, gpu_init) = train_steps(cfg, &init, &gpu(), 0, Precision::F32);
    let diff = max_abs_diff(&cpu_init, &gpu_init);
    assert!(
        diff < 1e-5,
        "{cfg:?}: logits differ by {diff} at the same weights"
    );
    let (cg, gg) = (gradients(cfg, &init, &cpu), gradients(cfg, &init, &gpu()));
    let largest = cg.iter().fold(0f32, |m, g| m.max(g.abs()));
    let diff = max_abs_diff(&cg, &gg);
    assert!(
        diff < 5e-4 * largest,
        "{cfg:?}: gradients differ by {diff} (largest {largest})"
    );
    // The steps did something: the logits moved away from the initial ones.
    assert!(max_abs_diff(&cpu_logits, &cpu_init) > 0.05);
    max_abs_diff(&cpu_logits, &gpu_logits)
}

#[test]
fn forward_backward_matches_the_cpu_after_several_steps() {
    let diff = assert_trains_alike(&small(), 11, 6, 1e-4);
    assert!(diff < 2e-3, "logits differ by {diff} after 6 steps");
}

#[test]
fn architecture_knobs_match_the_cpu() {
    use models::{NormPlacement, Position};
    type Knob = (&'static str, fn(&mut ModelConfig));
    let knobs: [Knob; 7] = [
        ("grouped-query attention, rope", |c| {
            c.n_head = 4;
            c.n_kv_head = Some(2);
            c.position = Position::Rope;
        }),
        ("multi-query attention, alibi", |c| {
            c.n_head = 4;
            c.n_kv_head = Some(1);
            c.position = Position::Alibi;
        }),
        ("dyt, post-norm, sinusoidal", |c| {
            c.norm = models::Norm::Dyt;
            c.norm_placement = NormPlacement::Post;
            c.position = Position::Sinusoidal;
        }),
        ("no positions", |c| c.position = Position::None),
        ("latent attention, rope", |c| {
            c.n_head = 4;
            c.position = Position::Rope;
            c.mla = Some(models::MlaConfig {
                kv_rank: 8,
                q_rank: 12,
                rope_dim: 4,
            });
        }),
        ("multi-token prediction", |c| {
            c.mtp = Some(models::MtpConfig {
                depth: 2,
                weight: 0.3,
            })
        }),
        // Inputs of 0 to 9 tokens: padded encoder rows, empty ones, ragged decoder rows.
        (
            "encoder-decoder, rope, an unshared encoder of another width",
            |c| {
                c.arch = models::Arch::EncoderDecoder;
                c.prefix = Some(models::PrefixLen::Range { min: 0, max: 9 });
                c.position = Position::Rope;
                c.encoder = Some(models::EncoderConfig {
                    n_layer: Some(1),
                    d_model: Some(48),
                    n_head: Some(4),
                    d_ff: None,
                    share_embedding: false,
                });
            },
        ),
    ];
    for (what, set) in knobs {
        let mut cfg = small();
        set(&mut cfg);
        cfg.validate().unwrap_or_else(|e| panic!("{what}: {e}"));
        // The gradients are compared at the same weights, the training only loosely: without
        // learned positions some gradient components are near zero, and Adam's first steps turn
        // them into steps of about lr whose sign is float noise (with rope and 4 full heads the
        // logits drift by 7e-3 in 4 steps; latent attention's losses by 1.2e-4 in 3).
        assert_trains_alike(&cfg, 13, 4, 1e-3);
    }
}

#[test]
fn moe_and_prefix_models_match_the_cpu() {
    let mut cfg = small();
    cfg.ffn = models::Ffn::Moe;
    cfg.moe = Some(models::MoeConfig {
        n_experts: 4,
        top_k: 2,
        granularity: 2,
        n_shared: 1,
        router: models::Router::Softmax,
        z_loss: 0.001,
        balance: models::Balance::AuxLoss,
        aux_weight: 0.01,
        bias_rate: 0.001,
        capacity_factor: None,
    });
    cfg.validate().unwrap();
    let cpu = backend::device("flex", 0).unwrap();
    cpu.seed(5);
    let init = params::export(&Decoder::new(&cfg, &cpu));
    let (cpu_loss, cpu_logits) = train_steps(&cfg, &init, &cpu, 4, Precision::F32);
    let (gpu_loss, gpu_logits) = train_steps(&cfg, &init, &gpu(), 4, Precision::F32);
    for (c, g) in cpu_loss.iter().zip(&gpu_loss) {
        assert!(
            (c - g).abs() < 2e-4 * c.abs(),
            "cpu {cpu_loss:?} gpu {gpu_loss:?}"
        );
    }
    // Top-k routing is discontinuous and Adam turns any gradient into a step of about lr: a near-tie
    // routed differently by float noise moves an expert's weights on one backend only. So the MoE
    // logits are compared at the shared initial weights, and the training by its losses (above).
    let (_, cpu_init) = train_steps(&cfg, &init, &cpu, 0, Precision::F32);
    let (_, gpu_init) = train_steps(&cfg, &init, &gpu(), 0, Precision::F32);
    let diff = max_abs_diff(&cpu_init, &gpu_init);
    assert!(
        diff < 1e-4,
        "MoE logits differ by {diff} at the same weights"
    );
    let moved = max_abs_diff(&cpu_logits, &cpu_init).min(max_abs_diff(&gpu_logits, &gpu_init));
    assert!(moved > 0.05, "training moved the logits by only {moved}");
    // A prefix mask gives the same logits on both.
    let model_cpu = params::import(Decoder::new(&cfg, &cpu), &init).unwrap();
    let model_gpu = params::import(Decoder::new(&cfg, &gpu()), &init).unwrap();
    let tokens: Vec<i64> = (0..32).map(|i| (i * 7 % 64) as i64).collect();
    let run = |m: &Decoder, d: &Device| {
        let x = Tensor::<2, Int>::from_data(TensorData::new(tokens.clone(), [2, 16]), d);
        let mask = Decoder::prefix_mask(&[5, 9], 16, d);
        params::tensor_values(m.forward_masked(x, &mask))
    };
    let diff = max_abs_diff(&run(&model_cpu, &cpu), &run(&model_gpu, &gpu()));
    assert!(diff < 1e-4, "prefix logits differ by {diff}");
}

#[test]
fn lab_train_on_the_gpu_backend_learns_and_records_the_device() {
    let dir = tempfile::tempdir().unwrap();
    let name = gpu_backend();
    // 64 steps: on the CPU this run ends at 3.52 nats, 0.14 under the bar (lavapipe is slow).
    let out = train_tiny_on_gpu(dir.path(), 16_384, "  eval_every_tokens: 8192\n");
    assert!(out.status.success(), "{}", text(&out));
    let s = status(&dir.path().join("run"));
    assert_eq!(s["status"], "done");
    assert_eq!(s["backend"], name.as_str());
    let device = s["device"].as_str().unwrap();
    assert!(!device.is_empty() && !device.contains("Flex"), "{device}");
    let val = s["final_val_loss"].as_f64().unwrap();
    assert!(val < 64f64.ln() - 0.5, "val loss {val}");
}

#[test]
fn a_missing_device_is_named_with_the_devices_seen() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(dir.path(), "run.yaml", &tiny_run(4096, ""));
    let name = gpu_backend();
    let out = lab(
        dir.path(),
        &[
            "train",
            cfg.to_str().unwrap(),
            "--backend",
            &name,
            "--device",
            "9",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let msg = text(&out);
    assert!(
        msg.contains("--device") && msg.contains("no device 9") && msg.contains("0: "),
        "{msg}"
    );
    let listed = lab(dir.path(), &["backends"]);
    let listed = text(&listed);
    assert!(
        listed.contains(&name) && listed.contains("  0: "),
        "{listed}"
    );
}

/// What lavapipe (and any device) can compute in: reduced precision is either trained (loss falls
/// as in f32) or refused before training with an error naming `train.precision`.
#[test]
fn reduced_precision_trains_or_is_refused_clearly() {
    let device = gpu();
    for (p, key) in [(Precision::Bf16, "bf16"), (Precision::F16, "f16")] {
        let dir = tempfile::tempdir().unwrap();
        // 32 steps and one evaluation: 3.58 nats in f32 on the CPU, 0.27 under the bar.
        let out = train_tiny_on_gpu(
            dir.path(),
            8_192,
            &format!("  precision: {key}\n  eval_every_tokens: 8192\n"),
        );
        if device.supports_dtype(p.dtype()) {
            assert!(out.status.success(), "{key}: {}", text(&out));
            let s = status(&dir.path().join("run"));
            assert!(s["final_val_loss"].as_f64().unwrap() < 64f64.ln() - 0.3);
        } else {
            assert_eq!(out.status.code(), Some(2), "{key}: {}", text(&out));
            let msg = text(&out);
            assert!(
                msg.contains("train.precision")
                    && msg.contains(key)
                    && msg.contains("not supported"),
                "{msg}"
            );
            assert!(!dir.path().join("run/status.json").exists());
        }
    }
}

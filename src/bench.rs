//! `lab bench`: training throughput of the standard shapes, and that throughput as a fraction of
//! the machine's matmul peak measured in the same run.

use crate::backend;
use crate::error::{LabError, LabResult};
use crate::train::batch::Batch;
use crate::train::optim::{AdamW, AdamWSettings};
use crate::train::params;
use burn::optim::GradientsParams;
use burn::prelude::*;
use clap::Args;
use models::{account, Decoder, ModelConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Instant;

/// Arguments of `lab bench`.
#[derive(Args)]
#[command(after_help = "Examples:
  lab bench                      models S and M on the default backend
  lab bench --model M --steps 10 --backend ndarray
  lab bench --model S --moe 8:1 --granularity 1,2,4,8
                                 MoE twins of S (8 experts, top-1: dense-equal active parameters)
  python3 bench/torch_bench.py   the same models in PyTorch, for the ratio")]
pub struct BenchArgs {
    /// S (d 128, L 4, h 4, seq 128, batch 16, vocab 256), M (d 384, L 6, h 6, seq 256, batch 16,
    /// vocab 4096) or all.
    #[arg(long, default_value = "all")]
    pub model: String,
    /// Compute backend.
    #[arg(long, default_value_t = crate::backend::default_backend().to_string())]
    pub backend: String,
    /// Timed steps.
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    /// Untimed warm-up steps.
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Side of the square matmul that measures the peak.
    #[arg(long, default_value_t = 2048)]
    pub peak_size: usize,
    /// Also train each shape as a mixture of experts, `EXPERTS:TOP_K` (experts as wide as the
    /// dense d_ff; top-1 keeps the active parameters of the dense model, plus the router).
    #[arg(long)]
    pub moe: Option<String>,
    /// Granularities of the MoE twins.
    #[arg(long, value_delimiter = ',', default_value = "1")]
    pub granularity: Vec<usize>,
}

/// The MoE twin of a dense shape.
fn moe_twin(dense: &ModelConfig, experts: usize, top_k: usize, granularity: usize) -> ModelConfig {
    let mut cfg = dense.clone();
    cfg.ffn = models::Ffn::Moe;
    cfg.moe = Some(models::MoeConfig {
        n_experts: experts,
        top_k,
        granularity,
        n_shared: 0,
        router: models::Router::Softmax,
        z_loss: 0.0,
        balance: models::Balance::AuxLoss,
        aux_weight: 0.01,
        bias_rate: 0.001,
        capacity_factor: None,
    });
    cfg
}

/// A standard benchmark shape: (name, config, batch).
pub fn shape(name: &str) -> Option<(ModelConfig, usize)> {
    match name {
        "S" | "s" => Some((ModelConfig::new(4, 128, 4, 256, 128), 16)),
        "M" | "m" => Some((ModelConfig::new(6, 384, 6, 4096, 256), 16)),
        _ => None,
    }
}

/// FLOP/s of an n x n x n matmul on `device` (best of 5 after one warm-up).
pub fn matmul_peak(device: &Device, n: usize) -> f64 {
    let a = Tensor::<2>::random([n, n], burn::tensor::Distribution::Default, device);
    let b = Tensor::<2>::random([n, n], burn::tensor::Distribution::Default, device);
    let _ = a.clone().matmul(b.clone()).into_data();
    (0..5)
        .map(|_| {
            let t = Instant::now();
            let _ = a.clone().matmul(b.clone()).into_data();
            2.0 * (n as f64).powi(3) / t.elapsed().as_secs_f64()
        })
        .fold(0.0, f64::max)
}

/// Training tokens per second of one shape, with the first and last loss: (tokens/s, first, last).
pub fn train_throughput(
    cfg: &ModelConfig,
    batch: usize,
    steps: usize,
    warmup: usize,
    device: &Device,
) -> (f64, f32, f32) {
    let dev = device.clone().autodiff();
    dev.seed(0);
    let mut model = Decoder::new(cfg, &dev);
    let mut opt = AdamW::new(AdamWSettings {
        beta1: 0.9,
        beta2: 0.95,
        eps: 1e-8,
        weight_decay: 0.1,
        decay_all: false,
    });
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let seq = cfg.seq_len;
    let mut start = Instant::now();
    let (mut first, mut last) = (f32::NAN, f32::NAN);
    for step in 0..warmup + steps {
        if step == warmup {
            start = Instant::now();
        }
        let rows: Vec<i64> = (0..batch * (seq + 1))
            .map(|_| rng.random_range(0..cfg.vocab as i64))
            .collect();
        let b = Batch::new(&rows, &vec![0; batch], seq, &dev);
        let loss = b.forward(&model, b.loss_tokens, &[]).objective;
        let g = loss.backward();
        let v: f32 = loss.into_scalar();
        if step == 0 {
            first = v;
        }
        last = v;
        let grads = GradientsParams::from_grads(g, &model);
        let norm = params::grad_norm(&model, &grads);
        model = opt.step(
            1e-3,
            model,
            grads,
            if norm > 1.0 { 1.0 / norm } else { 1.0 },
        );
    }
    let _ = params::export(&model);
    (
        (steps * batch * seq) as f64 / start.elapsed().as_secs_f64(),
        first,
        last,
    )
}

/// Runs `lab bench`.
pub fn run(a: BenchArgs) -> LabResult<i32> {
    let names: Vec<&str> = match a.model.as_str() {
        "all" => vec!["S", "M"],
        m => vec![m],
    };
    for n in &names {
        if shape(n).is_none() {
            return Err(LabError::input(
                "--model",
                None,
                format!("unknown model '{n}': S, M or all"),
            ));
        }
    }
    let device = backend::device(&a.backend, 0)?;
    let peak = matmul_peak(&device, a.peak_size);
    println!(
        "backend {} ({}), threads {}; matmul peak ({}^3 f32, same backend): {:.1} GFLOP/s",
        a.backend,
        backend::describe(&device),
        rayon::current_num_threads(),
        a.peak_size,
        peak / 1e9
    );
    println!(
        "{:<16} {:>10} {:>10} {:>12} {:>12} {:>10} {:>12} {:>9}",
        "model", "params", "active", "tokens/s", "GFLOP/s", "of peak", "loss", "vs dense"
    );
    let moe = match a.moe.as_deref() {
        None => None,
        Some(spec) => {
            let parsed = spec
                .split_once(':')
                .and_then(|(e, k)| Some((e.parse::<usize>().ok()?, k.parse::<usize>().ok()?)));
            match parsed {
                Some((e, k)) if e >= 1 && (1..=e).contains(&k) => Some((e, k)),
                _ => {
                    return Err(LabError::input(
                        "--moe",
                        None,
                        format!("'{spec}': expected EXPERTS:TOP_K with 1 <= TOP_K <= EXPERTS"),
                    ))
                }
            }
        }
    };
    for n in names {
        let (cfg, batch) = shape(n).expect("checked");
        let mut variants = vec![(n.to_string(), cfg.clone())];
        if let Some((e, k)) = moe {
            for &m in &a.granularity {
                let twin = moe_twin(&cfg, e, k, m);
                twin.validate()
                    .map_err(|err| LabError::input("--granularity", None, err.to_string()))?;
                variants.push((format!("{n}-moe{e}x{k}-g{m}"), twin));
            }
        }
        let mut dense_tps = f64::NAN;
        for (label, cfg) in variants {
            let acc = account(&cfg);
            let (tps, first, last) = train_throughput(&cfg, batch, a.steps, a.warmup, &device);
            if cfg.moe().is_none() {
                dense_tps = tps;
            }
            let flops = tps * acc.flops_per_token as f64;
            println!(
                "{:<16} {:>10} {:>10} {:>12.0} {:>12.2} {:>9.1}% {:>5.2}->{:.2} {:>8.2}x",
                label,
                acc.params_total,
                acc.params_active,
                tps,
                flops / 1e9,
                100.0 * flops / peak,
                first,
                last,
                tps / dense_tps
            );
        }
    }
    Ok(0)
}

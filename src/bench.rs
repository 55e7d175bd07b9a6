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
use models::{account, Decoder, ModelConfig, Precision};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::time::Instant;

/// Arguments of `lab bench`.
#[derive(Args)]
#[command(after_help = "Examples:
  lab bench                      models S and M on the default backend
  lab bench --model M --steps 10 --backend ndarray
  lab bench --model S --moe 8:1 --granularity 1,2,4,8
                                 MoE twins of S (8 experts, top-1: dense-equal active parameters)
  lab bench --backend wgpu --device 0 --model L --precision bf16
                                 model L (about 100M parameters) on a GPU in bf16, with MFU
  python3 bench/torch_bench.py   the same models in PyTorch, for the ratio

MFU is model FLOP/s (lab's exact accounting) over the device's nominal dense peak for the compute
dtype, known for NVIDIA H100/H200/A100/L40S (else give --peak-tflops); 'of matmul' compares with a
square matmul measured in the same run on the same backend and dtype.")]
pub struct BenchArgs {
    /// S (d 128, L 4, h 4, seq 128, batch 16, vocab 256), M (d 384, L 6, h 6, seq 256, batch 16,
    /// vocab 4096), L (d 768, L 12, h 12, seq 512, batch 16, vocab 16384; 97M parameters) or all
    /// (S and M on a CPU, S, M and L on a GPU).
    #[arg(long, default_value = "all")]
    pub model: String,
    /// Compute backend: auto (a hardware GPU when there is one, else the CPU), flex, ndarray, wgpu
    /// or cuda, as compiled in (see `lab backends`).
    #[arg(long, default_value = "auto")]
    pub backend: String,
    /// Device index (GPU backends; see `lab backends`).
    #[arg(long, default_value_t = 0)]
    pub device: usize,
    /// Compute precision: f32, bf16 or f16 (f32 master weights).
    #[arg(long, default_value = "f32", value_parser = parse_precision)]
    pub precision: Precision,
    /// Nominal dense peak of the device in TFLOP/s for the compute dtype (for MFU), where lab
    /// does not know the device.
    #[arg(long)]
    pub peak_tflops: Option<f64>,
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

/// Parses a `--precision` value.
fn parse_precision(s: &str) -> Result<Precision, String> {
    serde_yaml::from_str(s).map_err(|_| format!("'{s}': expected f32, bf16 or f16"))
}

/// A standard benchmark shape: (name, config, batch).
pub fn shape(name: &str) -> Option<(ModelConfig, usize)> {
    match name {
        "S" | "s" => Some((ModelConfig::new(4, 128, 4, 256, 128), 16)),
        "M" | "m" => Some((ModelConfig::new(6, 384, 6, 4096, 256), 16)),
        "L" | "l" => Some((ModelConfig::new(12, 768, 12, 16384, 512), 16)),
        _ => None,
    }
}

/// Nominal dense peak FLOP/s of a known GPU (from its name) in `precision`: the vendor's figures
/// without sparsity (f32 on the CUDA cores; bf16/f16 on the tensor cores).
pub fn nominal_peak(device_name: &str, precision: Precision) -> Option<f64> {
    let name = device_name.to_uppercase();
    // (name part, f32, bf16/f16) in TFLOP/s.
    const TABLE: [(&str, f64, f64); 5] = [
        ("H200", 66.9, 989.4),
        ("H100", 66.9, 989.4),
        ("A100", 19.5, 312.0),
        ("L40S", 91.6, 362.1),
        ("A10G", 31.2, 125.0),
    ];
    TABLE
        .iter()
        .find(|(n, ..)| name.contains(n))
        .map(|&(_, f32, half)| {
            1e12 * match precision {
                Precision::F32 => f32,
                Precision::Bf16 | Precision::F16 => half,
            }
        })
}

/// FLOP/s of an n x n x n matmul on `device` in `precision` (best of 5 after one warm-up).
pub fn matmul_peak(device: &Device, n: usize, precision: Precision) -> f64 {
    let random = || {
        Tensor::<2>::random([n, n], burn::tensor::Distribution::Default, device)
            .cast(precision.dtype())
    };
    let (a, b) = (random(), random());
    let _ = a.clone().matmul(b.clone()).into_data();
    (0..5)
        .map(|_| {
            let t = Instant::now();
            let _ = a.clone().matmul(b.clone()).into_data();
            2.0 * (n as f64).powi(3) / t.elapsed().as_secs_f64()
        })
        .fold(0.0, f64::max)
}

/// Seconds one evaluation of the task suite `tasks` takes on an untrained model of `cfg` on
/// `device`: (greedy decoding and teacher-forced metrics, PassUntil's sampling). An untrained model
/// decodes to the longest answer and samples PassUntil to its cap, so both are upper bounds; the
/// first is close for any model, the second can be far above what a model that learns the task
/// draws.
pub fn task_eval_seconds(
    cfg: &ModelConfig,
    tasks: &crate::tasks::TasksConfig,
    device: &Device,
) -> (f64, f64) {
    device.seed(0);
    let model = Decoder::new(cfg, device);
    let examples = crate::tasks::eval::held_out(tasks);
    let greedy_only = crate::tasks::TasksConfig {
        pass_until: None,
        ..tasks.clone()
    };
    let start = Instant::now();
    let _ = crate::tasks::eval::evaluate_suite(&model, cfg, &greedy_only, &examples, 0, device);
    let greedy = start.elapsed().as_secs_f64();
    // PassUntil on its own, every task below its bar (an untrained model is below any bar).
    let start = Instant::now();
    if let Some(p) = &tasks.pass_until {
        for (t, ex) in tasks.suite.iter().zip(&examples) {
            let _ = crate::tasks::eval::pass_until(&model, cfg, t, ex, p, 0, device);
        }
    }
    (greedy, start.elapsed().as_secs_f64())
}

/// Training tokens per second of one shape, with the first and last loss: (tokens/s, first, last).
pub fn train_throughput(
    cfg: &ModelConfig,
    batch: usize,
    steps: usize,
    warmup: usize,
    device: &Device,
    precision: Precision,
) -> (f64, f32, f32) {
    let dev = device.clone().autodiff();
    dev.seed(0);
    let mut model = Decoder::new(cfg, &dev);
    let mut opt = AdamW::new(AdamWSettings::default());
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let seq = cfg.seq_len;
    let mut start = Instant::now();
    let (mut first, mut last) = (f32::NAN, f32::NAN);
    for step in 0..warmup + steps {
        if step == warmup {
            start = Instant::now();
        }
        let b = Batch::random(&mut rng, cfg, batch, seq, &dev);
        let loss = b.forward(&model, b.loss_tokens, &[], precision).objective;
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
pub fn run(mut a: BenchArgs) -> LabResult<i32> {
    a.backend = backend::resolve(&a.backend);
    let names: Vec<&str> = match a.model.as_str() {
        "all" if backend::is_gpu(&a.backend) => vec!["S", "M", "L"],
        "all" => vec!["S", "M"],
        m => vec![m],
    };
    for n in &names {
        if shape(n).is_none() {
            return Err(LabError::input(
                "--model",
                None,
                format!("unknown model '{n}': S, M, L or all"),
            ));
        }
    }
    let device = backend::device(&a.backend, a.device)?;
    let p = a.precision;
    if p != Precision::F32 && !device.supports_dtype(p.dtype()) {
        return Err(LabError::input(
            "--precision",
            None,
            format!(
                "{} is not supported for computation by backend '{}'",
                p.as_str(),
                a.backend
            ),
        ));
    }
    let name = backend::describe(&device);
    let peak = matmul_peak(&device, a.peak_size, p);
    let nominal = a
        .peak_tflops
        .map(|t| t * 1e12)
        .or_else(|| nominal_peak(&name, p));
    println!(
        "backend {} ({name}), {}, threads {}; matmul ({}^3, same backend and dtype): {:.1} GFLOP/s; nominal peak: {}",
        a.backend,
        p.as_str(),
        rayon::current_num_threads(),
        a.peak_size,
        peak / 1e9,
        nominal.map_or("unknown (--peak-tflops)".into(), |v| format!("{:.1} TFLOP/s", v / 1e12))
    );
    println!(
        "{:<16} {:>10} {:>10} {:>12} {:>12} {:>9} {:>7} {:>12} {:>9}",
        "model", "params", "active", "tokens/s", "GFLOP/s", "of matmul", "MFU", "loss", "vs dense"
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
            let (tps, first, last) = train_throughput(&cfg, batch, a.steps, a.warmup, &device, p);
            if cfg.moe().is_none() {
                dense_tps = tps;
            }
            let flops = tps * acc.flops_per_token as f64;
            let mfu = nominal.map_or("-".into(), |n| format!("{:.1}%", 100.0 * flops / n));
            println!(
                "{:<16} {:>10} {:>10} {:>12.0} {:>12.2} {:>8.1}% {:>7} {:>5.2}->{:.2} {:>8.2}x",
                label,
                acc.params_total,
                acc.params_active,
                tps,
                flops / 1e9,
                100.0 * flops / peak,
                mfu,
                first,
                last,
                tps / dense_tps
            );
        }
    }
    Ok(0)
}

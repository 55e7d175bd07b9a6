//! `lab models`: the accounting of a run's model.

use crate::config::load_run;
use crate::error::LabResult;
use clap::Args;
use models::account;
use std::path::PathBuf;

/// Arguments of `lab models`.
#[derive(Args)]
#[command(after_help = "Example:
  lab models sweeps/run-s.yaml --set model.d_model=256")]
pub struct ModelsArgs {
    /// Run YAML.
    pub config: PathBuf,
    /// Override a key (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

/// Runs `lab models`.
pub fn run(a: ModelsArgs) -> LabResult<i32> {
    let cfg = load_run(&a.config, &a.set)?;
    let m = &cfg.model;
    let acc = account(m);
    let d = cfg.steps() * cfg.tokens_per_step();
    println!("run {} ({})", cfg.id(), cfg.name);
    println!(
        "shape: n_layer {} d_model {} n_head {} n_kv_head {} d_ff {} vocab {} seq_len {} ({:?} positions, {:?}, {:?}, tied {})",
        m.n_layer, m.d_model, m.n_head, m.kv_heads(), m.d_ff(), m.vocab, m.seq_len, m.position, m.norm, m.mlp, m.tie_embeddings
    );
    let rows: [(&str, u64); 7] = [
        ("params_total", acc.params_total),
        ("params_embedding", acc.params_embedding),
        ("params_nonembedding", acc.params_nonembedding),
        ("params_active", acc.params_active),
        ("flops_per_token", acc.flops_per_token),
        ("flops_6n", acc.flops_6n),
        (
            "kv_cache_bytes",
            models::accounting::kv_cache_bytes_per_token(m),
        ),
    ];
    for (k, v) in rows {
        println!("{k:>22} {v:>16}");
    }
    println!("{:>22} {d:>16}", "tokens");
    println!(
        "{:>22} {:>16.4e}",
        "compute",
        acc.flops_per_token as f64 * d as f64
    );
    println!(
        "{:>22} {:>16.1}",
        "tokens_per_param",
        d as f64 / acc.params_nonembedding as f64
    );
    Ok(0)
}

//! `lab collect`: aggregates a sweep's per-run files into runs.parquet, curves.parquet and
//! evals.parquet (atomically), and lists runs with their status.

use crate::config::RunConfig;
use crate::error::{LabError, LabResult};
use crate::results::{write_parquet, RunDir, RunStatus, Status};
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One entry of plan.json: the runs of the current sweep expansion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanEntry {
    /// Run id.
    pub id: String,
    /// isoFLOP budget, if any.
    pub budget: Option<f64>,
    /// What the sweep axes set.
    pub label: String,
}

/// A run found in a results folder.
pub struct FoundRun {
    /// Id.
    pub id: String,
    /// Folder.
    pub dir: RunDir,
    /// Resolved config, if readable.
    pub cfg: Option<RunConfig>,
    /// Status, if written.
    pub status: Option<RunStatus>,
    /// Plan entry, if the run belongs to the current plan.
    pub plan: Option<PlanEntry>,
}

/// Reads plan.json of a results folder, if any.
pub fn read_plan(dir: &Path) -> LabResult<Option<Vec<PlanEntry>>> {
    let p = dir.join("plan.json");
    match std::fs::read(&p) {
        Ok(b) => Ok(Some(
            serde_json::from_slice(&b).map_err(|e| LabError::input(&p, None, e.to_string()))?,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The run ids of a results folder with their plan entries: those of plan.json when present, else
/// every folder under runs/ (sorted, without plan entries).
pub fn run_ids(dir: &Path) -> LabResult<Vec<(String, Option<PlanEntry>)>> {
    let runs_dir = dir.join("runs");
    if !runs_dir.is_dir() {
        return Err(LabError::input(
            dir,
            None,
            "not a lab results folder (no runs/ inside)",
        ));
    }
    Ok(match read_plan(dir)? {
        Some(p) => p.into_iter().map(|e| (e.id.clone(), Some(e))).collect(),
        None => {
            let mut ids: Vec<String> = std::fs::read_dir(&runs_dir)?
                .filter_map(|e| e.ok())
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            ids.sort();
            ids.into_iter().map(|i| (i, None)).collect()
        }
    })
}

/// The runs of a results folder: those of plan.json when present, else every folder under runs/.
pub fn find_runs(dir: &Path) -> LabResult<Vec<FoundRun>> {
    let runs_dir = dir.join("runs");
    run_ids(dir)?
        .into_iter()
        .map(|(id, plan)| {
            let d = RunDir(runs_dir.join(&id));
            let cfg = std::fs::read_to_string(d.config())
                .ok()
                .and_then(|t| serde_yaml::from_str(&t).ok());
            let status = d.read_status()?;
            Ok(FoundRun {
                id,
                dir: d,
                cfg,
                status,
                plan,
            })
        })
        .collect()
}

/// Counts of runs by status.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct Counts {
    /// Done.
    pub done: usize,
    /// Failed or diverged.
    pub failed: usize,
    /// Running or interrupted.
    pub running: usize,
    /// Not started.
    pub pending: usize,
}

impl Counts {
    /// The counts of `runs` by their status.
    pub fn of(runs: &[FoundRun]) -> Counts {
        let mut counts = Counts::default();
        for r in runs {
            match r.status.as_ref().map(|s| s.status) {
                Some(Status::Done) => counts.done += 1,
                Some(Status::Failed | Status::Diverged) => counts.failed += 1,
                Some(Status::Running) => counts.running += 1,
                None => counts.pending += 1,
            }
        }
        counts
    }
}

/// Stacks one per-run Parquet file (`file` of each run folder that has it) into a frame of
/// `schema`; files written by an older lab lack newer nullable columns and are conformed to it.
fn stack(
    dirs: &[&RunDir],
    file: fn(&RunDir) -> PathBuf,
    schema: &DataFrame,
) -> LabResult<DataFrame> {
    let mut acc = schema.clone();
    for d in dirs {
        let p = file(d);
        if !p.exists() {
            continue;
        }
        let f = std::fs::File::open(&p)?;
        let frame = ParquetReader::new(f)
            .finish()
            .and_then(|c| conform(c, schema))
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", p.display()))?;
        acc.vstack_mut(&frame)
            .map_err(|e| anyhow::anyhow!("stacking {}: {e}", p.display()))?;
    }
    Ok(acc)
}

/// `frame` with the columns of `schema`, in its order; columns it lacks are added as nulls.
fn conform(mut frame: DataFrame, schema: &DataFrame) -> PolarsResult<DataFrame> {
    for col in schema.columns() {
        if frame.column(col.name()).is_err() {
            let nulls = Series::full_null(col.name().clone(), frame.height(), col.dtype());
            frame.with_column(nulls.into())?;
        }
    }
    frame.select(schema.get_column_names().into_iter().cloned())
}

/// Builds runs.parquet and curves.parquet from the runs of `dir`.
pub fn collect(dir: &Path) -> LabResult<Counts> {
    let runs = find_runs(dir)?;
    let sweep = dir
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let counts = Counts::of(&runs);
    let with_status: Vec<(&FoundRun, &RunStatus, &RunConfig)> = runs
        .iter()
        .filter_map(|r| Some((r, r.status.as_ref()?, r.cfg.as_ref()?)))
        .collect();
    let mut df = runs_frame(&sweep, &with_status)?;
    write_parquet(&dir.join("runs.parquet"), &mut df)?;
    let dirs: Vec<&RunDir> = with_status.iter().map(|(r, _, _)| &r.dir).collect();
    let schema = crate::results::curve_frame("", &[])?;
    let mut curves = stack(&dirs, RunDir::curve, &schema)?;
    write_parquet(&dir.join("curves.parquet"), &mut curves)?;
    let schema = crate::results::eval_frame("", &[])?;
    let mut evals = stack(&dirs, RunDir::evals, &schema)?;
    write_parquet(&dir.join("evals.parquet"), &mut evals)?;
    Ok(counts)
}

/// What a run is in a branched sweep: `trunk` (constant LR, saves branch points; not a point of
/// any law), `branch` (a cooldown forked from a trunk) or `run`.
pub fn role(c: &RunConfig) -> &'static str {
    match (&c.train.branch, c.train.save_at.is_empty()) {
        (Some(_), _) => "branch",
        (None, false) => "trunk",
        (None, true) => "run",
    }
}

/// FLOPs a run spent itself: a branch's `compute` counts its trunk up to the fork (so that it is
/// the C of its (N, D) point), but only its cooldown was trained for it.
fn compute_spent(st: &RunStatus, c: &RunConfig) -> f64 {
    let forked = fork_tokens(c).unwrap_or(0).min(st.tokens);
    st.compute - st.accounting.flops_per_token as f64 * forked as f64
}

/// Tokens at a branch's fork from its trunk (None for other runs).
fn fork_tokens(c: &RunConfig) -> Option<u64> {
    c.train
        .branch
        .as_ref()
        .map(|b| b.step * c.tokens_per_step())
}

fn runs_frame(sweep: &str, rows: &[(&FoundRun, &RunStatus, &RunConfig)]) -> LabResult<DataFrame> {
    let s = |f: &dyn Fn(&RunStatus, &RunConfig) -> String| {
        rows.iter()
            .map(|(_, st, c)| f(st, c))
            .collect::<Vec<String>>()
    };
    let u = |f: &dyn Fn(&RunStatus, &RunConfig) -> u64| {
        rows.iter().map(|(_, st, c)| f(st, c)).collect::<Vec<u64>>()
    };
    let x = |f: &dyn Fn(&RunStatus, &RunConfig) -> f64| {
        rows.iter().map(|(_, st, c)| f(st, c)).collect::<Vec<f64>>()
    };
    let o = |f: &dyn Fn(&RunStatus, &RunConfig) -> Option<f64>| {
        rows.iter()
            .map(|(_, st, c)| f(st, c))
            .collect::<Vec<Option<f64>>>()
    };
    // MoE columns: null for dense models.
    let mu = |f: &dyn Fn(&models::MoeConfig) -> u64| {
        rows.iter()
            .map(|(_, _, c)| c.model.moe().map(f))
            .collect::<Vec<Option<u64>>>()
    };
    let balance: Vec<Option<String>> = rows
        .iter()
        .map(|(_, _, c)| c.model.moe().map(|m| yaml_name(m.balance)))
        .collect();
    // The architecture knobs, as the YAML spells them (group runs by them with `lab fit --group-by`).
    let knob = |f: &dyn Fn(&models::ModelConfig) -> String| {
        rows.iter()
            .map(|(_, _, c)| f(&c.model))
            .collect::<Vec<String>>()
    };
    let budget: Vec<Option<f64>> = rows
        .iter()
        .map(|(r, _, _)| r.plan.as_ref().and_then(|p| p.budget))
        .collect();
    let trunk: Vec<Option<String>> = rows
        .iter()
        .map(|(_, _, c)| c.train.branch.as_ref().map(|b| b.trunk.clone()))
        .collect();
    let forks: Vec<Option<u64>> = rows.iter().map(|(_, _, c)| fork_tokens(c)).collect();
    // Encoder columns: null for decoder-only models.
    let encoder = |f: &dyn Fn(&models::ModelConfig) -> u64| {
        rows.iter()
            .map(|(_, _, c)| c.model.encoder_config().map(|e| f(&e)))
            .collect::<Vec<Option<u64>>>()
    };
    let df = df!(
        "id" => s(&|st, _| st.id.clone()),
        "sweep" => vec![sweep.to_string(); rows.len()],
        "status" => s(&|st, _| st.status.as_str().to_string()),
        "arch" => s(&|_, c| c.model.arch.name().to_string()),
        "ffn" => s(&|_, c| format!("{:?}", c.model.ffn).to_lowercase()),
        "n_layer" => u(&|_, c| c.model.n_layer as u64),
        "d_model" => u(&|_, c| c.model.d_model as u64),
        "n_head" => u(&|_, c| c.model.n_head as u64),
        "n_kv_head" => u(&|_, c| c.model.kv_heads() as u64),
        "d_ff" => u(&|_, c| c.model.d_ff() as u64),
        "encoder_n_layer" => encoder(&|e| e.n_layer as u64),
        "encoder_d_model" => encoder(&|e| e.d_model as u64),
        "vocab" => u(&|_, c| c.model.vocab as u64),
        "seq_len" => u(&|_, c| c.model.seq_len as u64),
        "n_experts" => mu(&|m| m.n_experts as u64),
        "top_k" => mu(&|m| m.top_k as u64),
        "granularity" => mu(&|m| m.granularity as u64),
        "n_shared" => mu(&|m| m.n_shared as u64),
        "balance" => balance,
        "attention" => knob(&attention_kind),
        "position" => knob(&|m| yaml_name(m.position)),
        "norm" => knob(&|m| yaml_name(m.norm)),
        "norm_placement" => knob(&|m| yaml_name(m.norm_placement)),
        "mlp" => knob(&|m| yaml_name(m.mlp)),
        "mtp" => knob(&mtp_kind),
        "objective" => s(&|_, c| c.objective().name().to_string()),
        "params_total" => u(&|st, _| st.accounting.params_total),
        "params_embedding" => u(&|st, _| st.accounting.params_embedding),
        "params_nonembedding" => u(&|st, _| st.accounting.params_nonembedding),
        "params_active" => u(&|st, _| st.accounting.params_active),
        "params_encoder" => rows
            .iter()
            .map(|(_, _, c)| models::accounting::encoder_params_total(&c.model))
            .collect::<Vec<Option<u64>>>(),
        "flops_per_token" => u(&|st, _| st.accounting.flops_per_token),
        "flops_6n" => u(&|st, _| st.accounting.flops_6n),
        "kv_cache_bytes" => u(&|_, c| models::accounting::kv_cache_bytes_per_token(&c.model)),
        "tokens" => u(&|st, _| st.tokens),
        "loss_tokens" => u(&|st, _| st.loss_tokens),
        "compute" => x(&|st, _| st.compute),
        "compute_6nd" => x(&|st, _| st.compute_6nd),
        "isoflop_budget" => budget,
        "role" => s(&|_, c| role(c).to_string()),
        "trunk" => trunk,
        "branch_tokens" => forks,
        "compute_spent" => x(&|st, c| compute_spent(st, c)),
        "final_train_loss" => o(&|st, _| st.final_train_loss),
        "final_val_loss" => o(&|st, _| st.final_val_loss),
        "best_val_loss" => o(&|st, _| st.best_val_loss),
        "entropy_floor" => o(&|st, _| st.entropy_floor),
        "unique_tokens" => rows.iter().map(|(_, st, _)| st.unique_tokens).collect::<Vec<Option<u64>>>(),
        "epochs" => o(&|st, _| st.unique_tokens.map(|u| st.tokens as f64 / u.max(1) as f64)),
        "lr" => x(&|_, c| c.train.lr),
        "batch_size" => u(&|_, c| c.train.batch_size as u64),
        "schedule" => s(&|_, c| format!("{:?}", c.train.schedule).to_lowercase()),
        "seed" => u(&|_, c| c.train.seed),
        "backend" => s(&|st, _| st.backend.clone()),
        "device" => s(&|st, _| st.device.clone()),
        "precision" => s(&|_, c| c.train.precision().as_str().to_string()),
        "wall_seconds" => x(&|st, _| st.wall_seconds),
        "tokens_per_second" => x(&|st, _| st.tokens_per_second),
        "lab_version" => s(&|st, _| st.lab_version.clone()),
        "config_hash" => s(&|_, c| c.id()),
    )
    .map_err(|e| anyhow::anyhow!("runs table: {e}"))?;
    Ok(df)
}

/// A unit-variant enum's name as the run YAML spells it (its serde name).
fn yaml_name(v: impl serde::Serialize) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The attention variant: `mha` (as many key/value heads as heads), `gqa<k>` (k key/value heads),
/// `mqa` (one) or `mla` (latent attention); groups runs by attention with `lab fit --group-by`.
fn attention_kind(m: &models::ModelConfig) -> String {
    match (&m.mla, m.kv_heads()) {
        (Some(_), _) => "mla".into(),
        (None, k) if k == m.n_head => "mha".into(),
        (None, 1) => "mqa".into(),
        (None, k) => format!("gqa{k}"),
    }
}

/// Multi-token prediction: `none`, or `mtp<depth>` (depth 0 is the plain model: `none`).
fn mtp_kind(m: &models::ModelConfig) -> String {
    match &m.mtp {
        Some(t) if t.depth > 0 => format!("mtp{}", t.depth),
        _ => "none".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knob_columns_name_the_variant() {
        let mut m = models::ModelConfig::new(2, 64, 4, 64, 32);
        assert_eq!(attention_kind(&m), "mha");
        m.n_kv_head = Some(4);
        assert_eq!(attention_kind(&m), "mha");
        m.n_kv_head = Some(2);
        assert_eq!(attention_kind(&m), "gqa2");
        m.n_kv_head = Some(1);
        assert_eq!(attention_kind(&m), "mqa");
        m.n_kv_head = None;
        m.mla = Some(models::MlaConfig {
            kv_rank: 8,
            q_rank: 8,
            rope_dim: 0,
        });
        assert_eq!(attention_kind(&m), "mla");
        assert_eq!(mtp_kind(&m), "none");
        m.mtp = Some(models::MtpConfig {
            depth: 2,
            weight: 0.3,
        });
        assert_eq!(mtp_kind(&m), "mtp2");
        m.mtp = Some(models::MtpConfig {
            depth: 0,
            weight: 0.3,
        });
        assert_eq!(mtp_kind(&m), "none");
    }
}

//! Sweep YAML: a base run, grid and zip axes, isoFLOP budgets x shapes, rules for values that depend
//! on the model, and seeds; expanded into fully resolved runs with stable ids.

use crate::config::{locate_key, parse_yaml, RunConfig};
use crate::error::{LabError, LabResult};
use evalexpr::{
    eval_number_with_context, ContextWithMutableVariables, DefaultNumericTypes, HashMapContext,
    Value as EValue,
};
use models::account;
use serde::{Deserialize, Serialize};
use serde_yaml::{Mapping, Value};
use std::path::{Path, PathBuf};

/// isoFLOP section: every budget is paired with every shape; the token count is derived so that the
/// run spends the budget to within one optimizer step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IsoflopSpec {
    /// Compute budgets in FLOPs (exact accounting).
    pub budgets: Vec<f64>,
    /// Model shapes: each a set of `model` keys (n_layer, d_model, n_head, ...).
    pub shapes: Vec<Mapping>,
    /// Pairs with fewer optimizer steps than this are infeasible (listed and skipped).
    #[serde(default = "d_min_steps")]
    pub min_steps: u64,
    /// Pairs whose tokens per (non-embedding) parameter exceed this are skipped: far off the optimum
    /// and, for the smallest models, the most expensive runs of a sweep.
    #[serde(default)]
    pub max_tokens_per_param: Option<f64>,
    /// Pairs below this many tokens per parameter are skipped.
    #[serde(default)]
    pub min_tokens_per_param: Option<f64>,
}

fn d_min_steps() -> u64 {
    20
}

/// A sweep file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSpec {
    /// Sweep name: results go to results/<name>.
    pub name: String,
    /// A full run config (model, data, train) shared by every run.
    pub base: Mapping,
    /// Cartesian axes: dotted run key -> list of values.
    #[serde(default)]
    pub grid: Mapping,
    /// Axes that vary together: dotted run key -> list of values, all lists of one length.
    #[serde(default)]
    pub zip: Mapping,
    /// isoFLOP budgets x shapes.
    #[serde(default)]
    pub isoflop: Option<IsoflopSpec>,
    /// Dotted run key -> expression in N, N_total, D, C, budget, n_layer, d_model, n_head, seq_len,
    /// batch_size (e.g. `train.lr: "0.003 * math::pow(N / 1e5, -1.0/3)"`).
    #[serde(default)]
    pub rules: Mapping,
    /// Seeds (train.seed); every combination runs once per seed.
    #[serde(default = "d_seeds")]
    pub seeds: Vec<u64>,
    /// Site-specific lines for `--launcher slurm` (setup commands, extra #SBATCH options).
    #[serde(default)]
    pub slurm: Option<crate::sweep::slurm::SlurmSite>,
}

fn d_seeds() -> Vec<u64> {
    vec![0]
}

/// One expanded run.
#[derive(Debug, Clone)]
pub struct PlannedRun {
    /// Fully resolved config.
    pub cfg: RunConfig,
    /// Stable id.
    pub id: String,
    /// The isoFLOP budget it belongs to, if any.
    pub budget: Option<f64>,
    /// What the axes set, for tables ("model.d_model=128 train.lr=0.003").
    pub label: String,
}

/// A (budget, shape) pair that cannot be run, and why.
#[derive(Debug, Clone)]
pub struct Infeasible {
    /// Budget.
    pub budget: f64,
    /// Shape label.
    pub shape: String,
    /// Reason.
    pub reason: String,
}

/// The expansion of a sweep.
pub struct Plan {
    /// The sweep.
    pub spec: SweepSpec,
    /// The sweep file.
    pub file: PathBuf,
    /// Runs in order.
    pub runs: Vec<PlannedRun>,
    /// Skipped isoFLOP pairs.
    pub infeasible: Vec<Infeasible>,
}

fn key_str(k: &Value) -> String {
    match k {
        Value::String(s) => s.clone(),
        other => serde_yaml::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

/// A value on one line: scalars as YAML prints them, mappings and lists in flow style
/// (`{min: 0, max: 32}`).
fn val_str(v: &Value) -> String {
    match v {
        Value::Mapping(m) => {
            let items: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}: {}", key_str(k), val_str(v)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        Value::Sequence(xs) => {
            let items: Vec<String> = xs.iter().map(val_str).collect();
            format!("[{}]", items.join(", "))
        }
        other => serde_yaml::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

/// (key, values) axes of a mapping, each values list checked non-empty.
fn axes(
    m: &Mapping,
    section: &str,
    file: &Path,
    text: &str,
) -> LabResult<Vec<(String, Vec<Value>)>> {
    m.iter()
        .map(|(k, v)| {
            let key = key_str(k);
            let line = locate_key(text, section).map(|l| l + 1);
            let list = v.as_sequence().ok_or_else(|| {
                LabError::input(
                    file,
                    line,
                    format!("{section}.{key}: expected a list of values"),
                )
            })?;
            if list.is_empty() {
                return Err(LabError::input(
                    file,
                    line,
                    format!("{section}.{key}: empty list (no runs)"),
                ));
            }
            Ok((key, list.clone()))
        })
        .collect()
}

/// (dotted key, value) pairs applied to the base of a run.
type Overrides = Vec<(String, Value)>;

/// Cartesian product of axes as lists of (key, value) overrides.
fn product(axes: &[(String, Vec<Value>)]) -> Vec<Vec<(String, Value)>> {
    axes.iter().fold(vec![Vec::new()], |acc, (k, vals)| {
        acc.iter()
            .flat_map(|prefix| {
                vals.iter().map(move |v| {
                    let mut p = prefix.clone();
                    p.push((k.clone(), v.clone()));
                    p
                })
            })
            .collect()
    })
}

/// Sets a dotted key in a YAML document.
fn set(doc: &mut Value, key: &str, value: Value) {
    let mut node = doc;
    for part in key.split('.') {
        if !node.is_mapping() {
            *node = Value::Mapping(Mapping::new());
        }
        node = node
            .as_mapping_mut()
            .expect("mapping")
            .entry(Value::String(part.into()))
            .or_insert(Value::Null);
    }
    *node = value;
}

/// A number as a YAML value: an integer when it is one.
fn number(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 9e15 {
        Value::Number((v as i64).into())
    } else {
        Value::Number(v.into())
    }
}

/// Evaluates the rules for one run, writing their results into `doc`.
fn apply_rules(
    doc: &mut Value,
    rules: &Mapping,
    cfg: &RunConfig,
    budget: Option<f64>,
) -> Result<(), String> {
    let acc = account(&cfg.model);
    let d = match budget {
        Some(c) => c / acc.flops_per_token as f64,
        None => cfg.train.tokens as f64,
    };
    let mut ctx = HashMapContext::<DefaultNumericTypes>::new();
    let vars = [
        ("N", acc.params_nonembedding as f64),
        ("N_total", acc.params_total as f64),
        ("N_active", acc.params_active as f64),
        ("D", d),
        ("C", d * acc.flops_per_token as f64),
        ("budget", budget.unwrap_or(f64::NAN)),
        ("n_layer", cfg.model.n_layer as f64),
        ("d_model", cfg.model.d_model as f64),
        ("n_head", cfg.model.n_head as f64),
        ("seq_len", cfg.model.seq_len as f64),
        ("batch_size", cfg.train.batch_size as f64),
    ];
    for (k, v) in vars {
        ctx.set_value(k.into(), EValue::from_float(v))
            .map_err(|e| e.to_string())?;
    }
    for (k, expr) in rules {
        let key = key_str(k);
        let text = expr
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| val_str(expr));
        let v = eval_number_with_context(&text, &ctx)
            .map_err(|e| format!("rules.{key}: '{text}': {e}"))?;
        if !v.is_finite() {
            return Err(format!("rules.{key}: '{text}' gives {v}"));
        }
        set(doc, &key, number(v));
    }
    Ok(())
}

/// Reads and expands a sweep file. Every error names the file, the key and the line when known.
pub fn load(path: &Path) -> LabResult<Plan> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| LabError::input(path, None, format!("cannot read: {e}")))?;
    let spec: SweepSpec = parse_yaml(path, &text)?;
    if spec.name.is_empty() || spec.name.contains(['/', '\\']) || spec.name.starts_with('.') {
        return Err(LabError::input(
            path,
            locate_key(&text, "name"),
            format!("name: '{}' is not a folder name", spec.name),
        ));
    }
    if spec.seeds.is_empty() {
        return Err(LabError::input(
            path,
            locate_key(&text, "seeds"),
            "seeds: empty list (no runs)",
        ));
    }
    let grid = axes(&spec.grid, "grid", path, &text)?;
    let zip = axes(&spec.zip, "zip", path, &text)?;
    if let Some((_, first)) = zip.first() {
        if let Some((k, v)) = zip.iter().find(|(_, v)| v.len() != first.len()) {
            return Err(LabError::input(
                path,
                locate_key(&text, "zip"),
                format!(
                    "zip.{k}: {} values, but the first zip axis has {}",
                    v.len(),
                    first.len()
                ),
            ));
        }
    }
    let zip_rows: Vec<Vec<(String, Value)>> = match zip.first() {
        None => vec![Vec::new()],
        Some((_, first)) => (0..first.len())
            .map(|i| zip.iter().map(|(k, v)| (k.clone(), v[i].clone())).collect())
            .collect(),
    };
    let shapes: Vec<(Option<f64>, Overrides)> = match &spec.isoflop {
        None => vec![(None, Vec::new())],
        Some(iso) => {
            let line = locate_key(&text, "isoflop");
            if iso.budgets.is_empty() || iso.shapes.is_empty() {
                return Err(LabError::input(
                    path,
                    line,
                    "isoflop: budgets and shapes must both be non-empty",
                ));
            }
            if let Some(b) = iso.budgets.iter().find(|b| !(b.is_finite() && **b > 0.0)) {
                return Err(LabError::input(
                    path,
                    line,
                    format!("isoflop.budgets: {b} is not a positive number"),
                ));
            }
            iso.budgets
                .iter()
                .flat_map(|&b| {
                    iso.shapes.iter().map(move |s| {
                        (
                            Some(b),
                            s.iter()
                                .map(|(k, v)| (format!("model.{}", key_str(k)), v.clone()))
                                .collect(),
                        )
                    })
                })
                .collect()
        }
    };
    let base = Value::Mapping(spec.base.clone());
    let mut runs = Vec::new();
    let mut infeasible = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for seed in &spec.seeds {
        for g in product(&grid) {
            for z in &zip_rows {
                for (budget, shape) in &shapes {
                    let overrides: Vec<(String, Value)> =
                        g.iter().chain(z).chain(shape).cloned().collect();
                    let label = overrides
                        .iter()
                        .map(|(k, v)| format!("{k}={}", val_str(v)))
                        .collect::<Vec<_>>()
                        .join(" ");
                    let mut doc = base.clone();
                    set(&mut doc, "name", Value::String(spec.name.clone()));
                    for (k, v) in &overrides {
                        set(&mut doc, k, v.clone());
                    }
                    set(&mut doc, "train.seed", Value::Number((*seed).into()));
                    if budget.is_some() {
                        set(&mut doc, "train.tokens", Value::Number(1u64.into()));
                    }
                    let resolve = |doc: &Value| -> LabResult<RunConfig> {
                        let cfg: RunConfig = serde_yaml::from_value(doc.clone()).map_err(|e| {
                            LabError::input(
                                path,
                                None,
                                format!("run [{label}] (base merged with the axes): {e}"),
                            )
                        })?;
                        cfg.validate().map_err(|(key, m)| {
                            let line = locate_key(&text, &format!("base.{key}"))
                                .or_else(|| locate_key(&text, "isoflop"));
                            LabError::input(path, line, format!("run [{label}]: {key}: {m}"))
                        })?;
                        Ok(cfg)
                    };
                    let cfg = resolve(&doc)?;
                    apply_rules(&mut doc, &spec.rules, &cfg, *budget).map_err(|m| {
                        LabError::input(
                            path,
                            locate_key(&text, "rules"),
                            format!("run [{label}]: {m}"),
                        )
                    })?;
                    let mut cfg = resolve(&doc)?;
                    if let Some(c) = budget {
                        let iso = spec.isoflop.as_ref().expect("budget implies isoflop");
                        let acc = account(&cfg.model);
                        let fpt = acc.flops_per_token as f64;
                        let steps = (c / (fpt * cfg.tokens_per_step() as f64)).round() as u64;
                        let tpp =
                            (steps * cfg.tokens_per_step()) as f64 / acc.params_nonembedding as f64;
                        let reason = if steps < iso.min_steps {
                            Some(format!(
                                "{steps} optimizer steps (< min_steps {}): one step costs {:.3e} FLOPs",
                                iso.min_steps,
                                fpt * cfg.tokens_per_step() as f64
                            ))
                        } else if iso.max_tokens_per_param.is_some_and(|m| tpp > m) {
                            Some(format!(
                                "{tpp:.0} tokens per parameter (> max_tokens_per_param)"
                            ))
                        } else if iso.min_tokens_per_param.is_some_and(|m| tpp < m) {
                            Some(format!(
                                "{tpp:.2} tokens per parameter (< min_tokens_per_param)"
                            ))
                        } else {
                            None
                        };
                        if let Some(reason) = reason {
                            infeasible.push(Infeasible {
                                budget: *c,
                                shape: label.clone(),
                                reason,
                            });
                            continue;
                        }
                        cfg.train.tokens = steps * cfg.tokens_per_step();
                    }
                    let id = cfg.id();
                    if seen.insert(id.clone()) {
                        runs.push(PlannedRun {
                            id,
                            cfg,
                            budget: *budget,
                            label,
                        });
                    }
                }
            }
        }
    }
    if let Some(iso) = &spec.isoflop {
        let line = locate_key(&text, "budgets");
        for &b in &iso.budgets {
            if !runs.iter().any(|r| r.budget == Some(b)) {
                let why: Vec<String> = infeasible
                    .iter()
                    .filter(|i| i.budget == b)
                    .map(|i| format!("[{}] {}", i.shape, i.reason))
                    .collect();
                return Err(LabError::input(
                    path,
                    line,
                    format!(
                        "isoflop.budgets: budget {b:.3e} has no feasible shape: {}",
                        why.join("; ")
                    ),
                ));
            }
        }
    }
    if runs.is_empty() {
        return Err(LabError::input(path, None, "the sweep expands to no runs"));
    }
    Ok(Plan {
        spec,
        file: path.to_path_buf(),
        runs,
        infeasible,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(yaml: &str) -> LabResult<Plan> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.yaml");
        std::fs::write(&p, yaml).unwrap();
        load(&p)
    }

    const BASE: &str =
        "name: t\nbase:\n  model: {n_layer: 2, d_model: 64, n_head: 4, vocab: 64, seq_len: 32}\n  \
                        train: {tokens: 100000, batch_size: 8}\n";

    #[test]
    fn grid_zip_seeds_multiply_and_rules_follow_the_model() {
        let yaml = format!(
            "{BASE}grid:\n  train.schedule: [cosine, wsd]\nzip:\n  model.d_model: [64, 128]\n  model.n_head: [4, 8]\n\
             rules:\n  train.lr: \"min(0.01, 0.003 * math::pow(N / 1e5, -1.0 / 3))\"\n  train.warmup: \"0.02\"\nseeds: [0, 1]\n"
        );
        let p = plan(&yaml).unwrap();
        assert_eq!(p.runs.len(), 2 * 2 * 2);
        let ids: std::collections::HashSet<_> = p.runs.iter().map(|r| r.id.clone()).collect();
        assert_eq!(ids.len(), 8);
        for r in &p.runs {
            let n = account(&r.cfg.model).params_nonembedding as f64;
            let want = (0.003 * (n / 1e5).powf(-1.0 / 3.0)).min(0.01);
            assert!(
                (r.cfg.train.lr - want).abs() < 1e-12,
                "{} vs {want}",
                r.cfg.train.lr
            );
            assert_eq!(r.cfg.train.warmup, 0.02);
        }
    }

    #[test]
    fn isoflop_tokens_spend_the_budget_within_one_step() {
        let yaml = format!(
            "{BASE}isoflop:\n  budgets: [1.0e11, 3.0e11]\n  shapes:\n    - {{n_layer: 1, d_model: 32, n_head: 2}}\n    \
             - {{n_layer: 2, d_model: 64, n_head: 4}}\n  min_steps: 5\n"
        );
        let p = plan(&yaml).unwrap();
        assert_eq!(p.runs.len(), 4);
        for r in &p.runs {
            let c = r.budget.unwrap();
            let fpt = account(&r.cfg.model).flops_per_token as f64;
            let step_cost = fpt * r.cfg.tokens_per_step() as f64;
            let spent = fpt * (r.cfg.steps() * r.cfg.tokens_per_step()) as f64;
            assert!(
                (spent - c).abs() <= step_cost / 2.0 + 1.0,
                "spent {spent} of {c}"
            );
        }
    }
}

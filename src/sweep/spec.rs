//! Sweep YAML: a base run, grid and zip axes, isoFLOP budgets x shapes, rules for values that depend
//! on the model, and seeds; expanded into fully resolved runs with stable ids.

use crate::config::{locate_key, parse_yaml, RunConfig};
use crate::error::{LabError, LabResult};
use evalexpr::{
    eval_number_with_context, ContextWithMutableVariables, DefaultNumericTypes, HashMapContext,
    Value as EValue,
};
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
    /// WSD cooldown branches: one constant-LR trunk per model, a short cooldown per token count.
    #[serde(default)]
    pub branches: Option<BranchSpec>,
}

/// WSD cooldown branches (Hägele et al. 2024): the runs of a sweep that differ only in their token
/// count become one constant-learning-rate trunk, trained to the last branch point, and one short
/// cooldown run per token count forked from the trunk's checkpoint; each branch is a run of its own
/// (its own D and C) with the schedule an independent WSD run of that length would have.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BranchSpec {
    /// Fraction of each branch's steps spent cooling down (shape: `train.cooldown_shape`).
    pub cooldown: f64,
    /// isoFLOP sweeps: extra budgets spaced geometrically between consecutive listed budgets, so
    /// every model gets more token counts at the price of their cooldowns.
    #[serde(default)]
    pub between: usize,
    /// Other sweeps: token counts as fractions of each run's `train.tokens` (1.0 is the run's own).
    #[serde(default)]
    pub at: Vec<f64>,
}

impl BranchSpec {
    /// Checks the section against the sweep's design; the message names the key.
    fn validate(&self, isoflop: bool) -> Result<(), String> {
        if !(self.cooldown > 0.0 && self.cooldown < 1.0) {
            return Err(format!(
                "branches.cooldown: must be in (0, 1), got {}",
                self.cooldown
            ));
        }
        if self.between > 16 {
            return Err(format!(
                "branches.between: at most 16 extra budgets per interval, got {}",
                self.between
            ));
        }
        match (isoflop, self.at.is_empty()) {
            (true, false) => Err(
                "branches.at: an isoFLOP sweep branches at its budgets; use branches.between for more"
                    .into(),
            ),
            (false, true) => Err(
                "branches.at: list the token counts to branch at, as fractions of train.tokens"
                    .into(),
            ),
            _ => match self.at.iter().find(|f| !(**f > 0.0 && **f <= 1.0)) {
                Some(f) => Err(format!("branches.at: {f} is not in (0, 1]")),
                None if self.between > 0 && !isoflop => {
                    Err("branches.between: only for isoFLOP sweeps".into())
                }
                None => Ok(()),
            },
        }
    }
}

/// `budgets` with `between` extra budgets spaced geometrically inside each interval.
fn densify(budgets: &[f64], between: usize) -> Vec<f64> {
    let mut sorted = budgets.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.dedup();
    let mut out = Vec::new();
    for w in sorted.windows(2) {
        let r = (w[1] / w[0]).powf(1.0 / (between + 1) as f64);
        out.extend((0..=between).map(|j| w[0] * r.powi(j as i32)));
    }
    out.extend(sorted.last());
    out
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

/// The `D` of sweep rules for a run with accounting `acc`: its budget over its FLOPs per token
/// (before rounding to whole steps), or its tokens outside isoFLOP sweeps.
pub fn rule_tokens(cfg: &RunConfig, acc: &models::Accounting, budget: Option<f64>) -> f64 {
    budget.map_or(cfg.train.tokens as f64, |c| c / acc.flops_per_token as f64)
}

/// Evaluates the rules for one run, writing their results into `doc`.
fn apply_rules(
    doc: &mut Value,
    rules: &Mapping,
    cfg: &RunConfig,
    budget: Option<f64>,
) -> Result<(), String> {
    let acc = cfg.accounting();
    let d = rule_tokens(cfg, &acc, budget);
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
    if let Some(b) = &spec.branches {
        b.validate(spec.isoflop.is_some())
            .map_err(|m| LabError::input(path, locate_key(&text, "branches"), m))?;
    }
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
            let between = spec.branches.as_ref().map_or(0, |b| b.between);
            densify(&iso.budgets, between)
                .into_iter()
                .flat_map(|b| {
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
                        let acc = cfg.accounting();
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
    if let Some(b) = &spec.branches {
        runs = branched(runs, b, &mut infeasible);
    }
    Ok(Plan {
        spec,
        file: path.to_path_buf(),
        runs,
        infeasible,
    })
}

/// One trunk and its branches: the planned runs that differ only in their token count.
struct Family {
    /// A member's config (token count aside).
    cfg: RunConfig,
    label: String,
    /// (steps, isoFLOP budget) of every token count to branch at.
    points: Vec<(u64, Option<f64>)>,
}

/// Replaces the runs that differ only in `train.tokens` by a trunk and cooldown branches: the trunk
/// trains at constant LR to the last fork step and saves a checkpoint at each; a branch of S steps
/// forks at S - round(cooldown x S), the step an independent WSD run of S steps starts cooling down.
/// Warmup is shared (`train.warmup_steps`, else `warmup` x the shortest branch). A branch point
/// inside the warmup is infeasible.
fn branched(
    runs: Vec<PlannedRun>,
    b: &BranchSpec,
    infeasible: &mut Vec<Infeasible>,
) -> Vec<PlannedRun> {
    let mut families: Vec<Family> = Vec::new();
    for r in runs {
        let mut key = r.cfg.clone();
        key.train.tokens = 1;
        let steps = r.cfg.steps();
        let points: Vec<(u64, Option<f64>)> = if b.at.is_empty() {
            vec![(steps, r.budget)]
        } else {
            b.at.iter()
                .map(|f| (((f * steps as f64).round() as u64).max(1), None))
                .collect()
        };
        match families.iter_mut().find(|f| f.cfg == key) {
            Some(f) => f.points.extend(points),
            None => families.push(Family {
                cfg: key,
                label: r.label,
                points,
            }),
        }
    }
    let mut out = Vec::new();
    for mut fam in families {
        fam.points.sort_by_key(|p| p.0);
        fam.points.dedup_by_key(|p| p.0);
        let tps = fam.cfg.tokens_per_step();
        let shortest = fam.points[0].0;
        let warmup = fam
            .cfg
            .train
            .warmup_steps
            .unwrap_or((fam.cfg.train.warmup * shortest as f64).round() as u64);
        // A branch forks where an independent WSD run of its length starts cooling down.
        let mut wsd = fam.cfg.train.clone();
        wsd.cooldown = b.cooldown;
        let fork = |steps: u64| crate::train::schedule::cooldown_start(&wsd, steps);
        let (ok, late): (Vec<_>, Vec<_>) = fam.points.iter().partition(|p| fork(p.0) > warmup);
        for (steps, budget) in late {
            infeasible.push(Infeasible {
                budget: budget.unwrap_or(f64::NAN),
                shape: fam.label.clone(),
                reason: format!(
                    "a {steps}-step branch forks at step {} inside the {warmup}-step warmup",
                    fork(steps)
                ),
            });
        }
        let Some(last) = ok.last() else { continue };
        let mut trunk = fam.cfg.clone();
        trunk.train.tokens = fork(last.0) * tps;
        trunk.train.schedule = crate::config::Schedule::Constant;
        trunk.train.warmup_steps = Some(warmup);
        trunk.train.save_at = ok.iter().map(|p| fork(p.0)).collect();
        trunk.train.save_at.dedup();
        let trunk_id = trunk.id();
        out.push(PlannedRun {
            id: trunk_id.clone(),
            cfg: trunk,
            budget: None,
            label: format!("trunk {}", fam.label),
        });
        for &(steps, budget) in &ok {
            let mut cfg = fam.cfg.clone();
            cfg.train.tokens = steps * tps;
            cfg.train.schedule = crate::config::Schedule::Wsd;
            cfg.train.cooldown = b.cooldown;
            cfg.train.warmup_steps = Some(warmup);
            cfg.train.branch = Some(crate::config::BranchFrom {
                trunk: trunk_id.clone(),
                step: fork(steps),
            });
            out.push(PlannedRun {
                id: cfg.id(),
                cfg,
                budget,
                label: fam.label.clone(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use models::account;

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

    #[test]
    fn densified_budgets_keep_the_listed_ones_exactly() {
        let d = densify(&[1e11, 1e10, 1e12], 1);
        assert_eq!(d.len(), 5);
        assert_eq!((d[0], d[2], d[4]), (1e10, 1e11, 1e12));
        assert!((d[1] / 1e10 - 10f64.sqrt()).abs() < 1e-9);
        assert_eq!(densify(&[3e10], 2), vec![3e10]);
    }

    #[test]
    fn isoflop_branches_share_one_trunk_per_shape() {
        let yaml = format!(
            "{BASE}isoflop:\n  budgets: [1.0e11, 4.0e11]\n  shapes:\n    - {{n_layer: 1, d_model: 32, n_head: 2}}\n    \
             - {{n_layer: 2, d_model: 64, n_head: 4}}\n  min_steps: 5\nbranches: {{cooldown: 0.2, between: 1}}\n"
        );
        let p = plan(&yaml).unwrap();
        let trunks: Vec<&PlannedRun> = p
            .runs
            .iter()
            .filter(|r| !r.cfg.train.save_at.is_empty())
            .collect();
        assert_eq!(trunks.len(), 2, "one trunk per shape");
        // Three budgets (1e11, 2e11, 4e11) per shape.
        assert_eq!(p.runs.len(), 2 + 2 * 3);
        for t in &trunks {
            assert_eq!(t.cfg.train.schedule, crate::config::Schedule::Constant);
            assert_eq!(t.budget, None);
            let branches: Vec<&PlannedRun> = p
                .runs
                .iter()
                .filter(|r| r.cfg.train.branch.as_ref().is_some_and(|b| b.trunk == t.id))
                .collect();
            assert_eq!(branches.len(), 3);
            let mut forks = Vec::new();
            for b in &branches {
                let steps = b.cfg.steps();
                let fork = b.cfg.train.branch.as_ref().unwrap().step;
                // The fork step is where an independent WSD run of this length cools down.
                assert_eq!(
                    fork,
                    crate::train::schedule::cooldown_start(
                        &{
                            let mut c = b.cfg.train.clone();
                            c.branch = None;
                            c
                        },
                        steps
                    )
                );
                assert_eq!(b.cfg.train.warmup_steps, t.cfg.train.warmup_steps);
                assert!(t.cfg.train.save_at.contains(&fork));
                // The branch spends its budget to within a step, like an independent run.
                let fpt = account(&b.cfg.model).flops_per_token as f64;
                let step_cost = fpt * b.cfg.tokens_per_step() as f64;
                let c = b.budget.unwrap();
                assert!((fpt * b.cfg.train.tokens as f64 - c).abs() <= step_cost / 2.0 + 1.0);
                forks.push(fork);
            }
            forks.sort();
            assert_eq!(t.cfg.steps(), *forks.last().unwrap());
            // The trunk precedes its branches.
            let ti = p.runs.iter().position(|r| r.id == t.id).unwrap();
            assert!(branches
                .iter()
                .all(|b| p.runs.iter().position(|r| r.id == b.id).unwrap() > ti));
        }
    }

    #[test]
    fn grid_branches_fork_at_fractions_and_bad_sections_name_the_key() {
        let ok = format!("{BASE}branches: {{cooldown: 0.1, at: [0.25, 0.5, 1.0]}}\n");
        let p = plan(&ok).unwrap();
        assert_eq!(p.runs.len(), 4);
        let steps: Vec<u64> = p.runs[1..].iter().map(|r| r.cfg.steps()).collect();
        // 100,000 tokens of 256 per step: 391 steps.
        assert_eq!(steps, vec![98, 196, 391]);
        assert_eq!(p.runs[0].cfg.steps(), 391 - 39);
        for (yaml, want) in [
            (
                format!("{BASE}branches: {{cooldown: 1.5, at: [1.0]}}\n"),
                "branches.cooldown",
            ),
            (
                format!("{BASE}branches: {{cooldown: 0.2}}\n"),
                "branches.at",
            ),
            (
                format!("{BASE}branches: {{cooldown: 0.2, at: [0.0]}}\n"),
                "branches.at",
            ),
        ] {
            let e = plan(&yaml).err().expect("refused").to_string();
            let line = e.split("s.yaml:").nth(1);
            assert!(
                e.contains(want)
                    && line.is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit())),
                "{e}"
            );
        }
    }
}

//! `lab tune`'s plan: every shape of a sweep trained at a grid of learning rates around the sweep's
//! own (rule-set) rate, at one representative token budget or at every budget the sweep trains it
//! at; and the reading of the results into the LR scans that `fit::lr_rule` calibrates.

use crate::results::Status;
use crate::sweep::executor::RunOutcome;
use crate::sweep::spec::{rule_tokens, Plan, PlannedRun};
use fit::lr_rule::LrScan;
use std::collections::BTreeMap;

/// One shape of the sweep at one budget and its LR grid (as `tune.json` lists it).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ShapeScan {
    /// The shape's label in the sweep (its axes).
    pub label: String,
    /// Non-embedding parameters (the `N` of sweep rules).
    pub n: f64,
    /// The isoFLOP budget it is tuned at, if the sweep has budgets.
    pub budget: Option<f64>,
    /// Tokens each run of the scan trains on.
    pub tokens: u64,
    /// The `D` of sweep rules for these runs ([`rule_tokens`]).
    pub d: f64,
    /// The learning rate the sweep gives this shape.
    pub sweep_lr: f64,
    /// (factor, run id) for each grid point.
    pub runs: Vec<(f64, String)>,
}

/// The tuning plan of a sweep: runs for the executor and the scans they form.
pub struct TunePlan {
    /// A plan named `<sweep>-tune` holding every run of every scan.
    pub plan: Plan,
    /// One scan per shape (and budget), in the sweep's order.
    pub scans: Vec<ShapeScan>,
}

/// The representative runs of each shape (first seed only): for an isoFLOP sweep, the run at the
/// median of the budgets the shape is trained at (the lower one of two), so every shape is tuned near
/// the middle of its own range of D, or with `every_budget` the run at each of them; for other
/// sweeps, every run is its own shape. A branched sweep's trunks are not shapes of their own (their
/// branches are).
fn representatives(sweep: &Plan, every_budget: bool) -> Vec<&PlannedRun> {
    let first_seed = sweep.spec.seeds.first().copied().unwrap_or(0);
    let mut by_label: BTreeMap<&str, Vec<&PlannedRun>> = BTreeMap::new();
    let mut order: Vec<&str> = Vec::new();
    let points = sweep
        .runs
        .iter()
        .filter(|r| r.cfg.train.seed == first_seed && r.cfg.train.save_at.is_empty());
    for r in points {
        let list = by_label.entry(r.label.as_str()).or_default();
        if list.is_empty() {
            order.push(r.label.as_str());
        }
        list.push(r);
    }
    order
        .into_iter()
        .flat_map(|label| {
            let mut runs = by_label.remove(label).expect("label seen");
            runs.sort_by(|a, b| a.budget.unwrap_or(0.0).total_cmp(&b.budget.unwrap_or(0.0)));
            if !every_budget {
                runs = vec![runs[(runs.len() - 1) / 2]];
            }
            runs
        })
        .collect()
}

/// Expands `sweep` into LR scans: each shape's representative run (or, with `every_budget`, each
/// of its budgets' runs) with its learning rate multiplied by every factor. A cooldown branch is
/// scanned as the independent WSD run it equals (same warmup, cooldown from the same step), since
/// its trunk's rate changes with it.
pub fn plan(sweep: &Plan, factors: &[f64], every_budget: bool) -> TunePlan {
    let mut runs = Vec::new();
    let mut scans = Vec::new();
    for rep in representatives(sweep, every_budget) {
        let acc = rep.cfg.accounting();
        let mut scan = ShapeScan {
            label: rep.label.clone(),
            n: acc.params_nonembedding as f64,
            budget: rep.budget,
            tokens: rep.cfg.train.tokens,
            d: rule_tokens(&rep.cfg, &acc, rep.budget),
            sweep_lr: rep.cfg.train.lr,
            runs: Vec::new(),
        };
        for &f in factors {
            let mut cfg = rep.cfg.clone();
            cfg.name = format!("{}-tune", sweep.spec.name);
            cfg.train.lr = rep.cfg.train.lr * f;
            cfg.train.branch = None;
            let id = cfg.id();
            scan.runs.push((f, id.clone()));
            runs.push(PlannedRun {
                cfg,
                id,
                budget: rep.budget,
                label: format!("{} lr=x{f}", rep.label),
            });
        }
        scans.push(scan);
    }
    let mut spec = sweep.spec.clone();
    spec.name = format!("{}-tune", sweep.spec.name);
    TunePlan {
        plan: Plan {
            spec,
            file: sweep.file.clone(),
            runs,
            infeasible: Vec::new(),
        },
        scans,
    }
}

/// The LR scans of finished runs: a run that diverged, failed or did not finish has no loss.
pub fn scans(tune: &TunePlan, outcomes: &[RunOutcome]) -> Vec<LrScan> {
    let loss = |id: &str| {
        outcomes
            .iter()
            .find(|o| o.run.id == id)
            .and_then(|o| o.status.as_ref())
            .filter(|s| s.status == Status::Done)
            .and_then(|s| s.final_val_loss)
    };
    tune.scans
        .iter()
        .map(|s| LrScan {
            label: s.label.clone(),
            n: s.n,
            d: Some(s.d),
            points: s
                .runs
                .iter()
                .map(|(f, id)| (s.sweep_lr * f, loss(id)))
                .collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::spec::load;
    use fit::lr_rule::{LrRule, TokenTerm};

    const SWEEP: &str =
        "name: t\nbase:\n  model: {n_layer: 1, d_model: 16, n_head: 2, vocab: 64, seq_len: 16}\n  \
         data: {source: synthetic}\n  train: {tokens: 1, batch_size: 4}\n\
         rules:\n  train.lr: \"RULE\"\n\
         isoflop:\n  budgets: [1.0e9, 3.0e9, 1.0e10]\n  min_steps: 5\n  shapes:\n    \
         - {d_model: 16}\n    - {d_model: 32}\nseeds: [0, 1]\n";

    fn sweep_with_rule(dir: &std::path::Path, rule: &str) -> Plan {
        let p = dir.join("s.yaml");
        std::fs::write(&p, SWEEP.replace("RULE", rule)).unwrap();
        load(&p).unwrap()
    }

    #[test]
    fn every_budget_scans_each_shape_at_each_of_its_budgets_and_d_means_what_rules_mean() {
        let dir = tempfile::tempdir().unwrap();
        let sweep = sweep_with_rule(dir.path(), "0.01 * math::pow(N / 1e4, -0.5)");
        let tune = plan(&sweep, &[0.5, 1.0, 2.0], true);
        let key = |label: &str, budget: Option<f64>| format!("{label} {budget:?}");
        let mut points: Vec<String> = sweep
            .runs
            .iter()
            .filter(|r| r.cfg.train.seed == 0)
            .map(|r| key(&r.label, r.budget))
            .collect();
        let mut scanned: Vec<String> = tune.scans.iter().map(|s| key(&s.label, s.budget)).collect();
        points.sort();
        scanned.sort();
        assert!(points.len() > 2);
        assert_eq!(scanned, points);
        assert_eq!(tune.plan.runs.len(), 3 * points.len());
        // A rule in N and D, written as `lab tune` prints it, gives each run of a sweep the rate
        // the rule gives the scan's (N, D): D in the scans is the D of sweep rules.
        let rule = LrRule {
            coefficient: 1.23e-2,
            n0: 2.1e4,
            exponent: -0.432,
            exponent_se: None,
            sizes: 6,
            tokens: Some(TokenTerm {
                d0: 3.4e6,
                exponent: -0.247,
                exponent_se: None,
            }),
        };
        let ruled = sweep_with_rule(dir.path(), &rule.expression());
        for scan in &tune.scans {
            let run = ruled
                .runs
                .iter()
                .find(|r| r.label == scan.label && r.budget == scan.budget && r.cfg.train.seed == 0)
                .expect("same run");
            let expected = rule.at(scan.n, Some(scan.d));
            assert!((run.cfg.train.lr / expected - 1.0).abs() < 1e-9);
        }
    }

    #[test]
    fn every_shape_is_scanned_once_at_its_median_budget() {
        let dir = tempfile::tempdir().unwrap();
        let sweep = sweep_with_rule(dir.path(), "0.01 * math::pow(N / 1e4, -0.5)");
        let tune = plan(&sweep, &[0.5, 1.0, 2.0], false);
        assert_eq!(tune.scans.len(), 2);
        assert_eq!(tune.plan.runs.len(), 6);
        assert_eq!(tune.plan.spec.name, "t-tune");
        for scan in &tune.scans {
            let budgets: Vec<f64> = sweep
                .runs
                .iter()
                .filter(|r| r.label == scan.label && r.cfg.train.seed == 0)
                .filter_map(|r| r.budget)
                .collect();
            // The median of the shape's own budgets.
            let mut sorted = budgets.clone();
            sorted.sort_by(f64::total_cmp);
            assert_eq!(scan.budget, Some(sorted[(sorted.len() - 1) / 2]));
            // The factors multiply the rule's lr, and nothing else changes.
            let expected = 0.01 * (scan.n / 1e4).powf(-0.5);
            assert!((scan.sweep_lr / expected - 1.0).abs() < 1e-12);
            let tuned: Vec<&PlannedRun> = tune
                .plan
                .runs
                .iter()
                .filter(|r| scan.runs.iter().any(|(_, id)| *id == r.id))
                .collect();
            assert_eq!(tuned.len(), 3);
            for r in tuned {
                assert_eq!(r.cfg.train.seed, 0);
                assert_eq!(r.cfg.train.tokens, scan.tokens);
                let f = r.cfg.train.lr / scan.sweep_lr;
                assert!([0.5, 1.0, 2.0].iter().any(|g| (g - f).abs() < 1e-12));
            }
        }
    }
}

//! `lab tune`'s plan: every shape of a sweep trained at a grid of learning rates around the sweep's
//! own (rule-set) rate, each at one representative token budget; and the reading of the results into
//! the per-size LR scans that `fit::lr_rule` calibrates.

use crate::results::Status;
use crate::sweep::executor::RunOutcome;
use crate::sweep::spec::{Plan, PlannedRun};
use fit::lr_rule::LrScan;
use models::account;
use std::collections::BTreeMap;

/// One shape of the sweep and its LR grid (as `tune.json` lists it).
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
    /// The learning rate the sweep gives this shape.
    pub sweep_lr: f64,
    /// (factor, run id) for each grid point.
    pub runs: Vec<(f64, String)>,
}

/// The tuning plan of a sweep: runs for the executor and the scans they form.
pub struct TunePlan {
    /// A plan named `<sweep>-tune` holding every run of every scan.
    pub plan: Plan,
    /// One scan per shape, in the sweep's order.
    pub scans: Vec<ShapeScan>,
}

/// The representative run of each shape (first seed only): for an isoFLOP sweep, the run at the
/// median of the budgets the shape is trained at (the lower one of two), so every shape is tuned near
/// the middle of its own range of D; for other sweeps, every run is its own shape. A branched
/// sweep's trunks are not shapes of their own (their branches are).
fn representatives(sweep: &Plan) -> Vec<&PlannedRun> {
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
        .map(|label| {
            let mut runs = by_label.remove(label).expect("label seen");
            runs.sort_by(|a, b| a.budget.unwrap_or(0.0).total_cmp(&b.budget.unwrap_or(0.0)));
            runs[(runs.len() - 1) / 2]
        })
        .collect()
}

/// Expands `sweep` into an LR scan per shape: each shape's representative run with its learning
/// rate multiplied by every factor. A cooldown branch is scanned as the independent WSD run it
/// equals (same warmup, cooldown from the same step), since its trunk's rate changes with it.
pub fn plan(sweep: &Plan, factors: &[f64]) -> TunePlan {
    let mut runs = Vec::new();
    let mut scans = Vec::new();
    for rep in representatives(sweep) {
        let mut scan = ShapeScan {
            label: rep.label.clone(),
            n: account(&rep.cfg.model).params_nonembedding as f64,
            budget: rep.budget,
            tokens: rep.cfg.train.tokens,
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

    #[test]
    fn every_shape_is_scanned_once_at_its_median_budget() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.yaml");
        std::fs::write(
            &p,
            "name: t\nbase:\n  model: {n_layer: 1, d_model: 16, n_head: 2, vocab: 64, seq_len: 16}\n  \
             data: {source: synthetic}\n  train: {tokens: 1, batch_size: 4}\n\
             rules:\n  train.lr: \"0.01 * math::pow(N / 1e4, -0.5)\"\n\
             isoflop:\n  budgets: [1.0e9, 3.0e9, 1.0e10]\n  min_steps: 5\n  shapes:\n    \
             - {d_model: 16}\n    - {d_model: 32}\nseeds: [0, 1]\n",
        )
        .unwrap();
        let sweep = load(&p).unwrap();
        let tune = plan(&sweep, &[0.5, 1.0, 2.0]);
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

//! What a design of runs can identify, read from the design itself before any law is fitted: the
//! distinct N, D and C values, the spread of log N and log D and how they move together, and the
//! isoFLOP budgets with enough model sizes.
//!
//! A law of L(N, D) separates the effect of N from that of D only when the design varies them
//! independently: with one token count (a size sweep at a fixed budget) or one tokens-per-parameter
//! ratio (N and D grown together), A/N^alpha and B/D^beta trade against each other along a flat
//! direction and the compute-optimal exponent is whatever the optimiser lands on. Such fits are
//! refused here with the reason, instead of being reported with an interval that looks certain.

use crate::data::{distinct_sizes, group_budgets, Obs};
use crate::report::Approach;
use serde::{Deserialize, Serialize};

/// Values within this relative distance count as one value.
const SAME_VALUE: f64 = 1e-3;

/// Model sizes an isoFLOP budget needs to locate its minimum.
pub const SIZES_PER_BUDGET: usize = 3;

/// Budgets with enough sizes that an N_opt(C) slope needs (two give a line through two points).
pub const USABLE_BUDGETS: usize = 3;

/// Distinct values of N (and of D) a law with a floor and a power of each needs.
pub const DISTINCT_VALUES: usize = 3;

/// Least standard deviation of ln D at fixed ln N (and of ln N at fixed ln D) for the two effects to
/// be told apart: about a 10% spread around a single tokens-per-parameter line.
pub const JOINT_SPREAD: f64 = 0.1;

/// The shape of a design of runs, one point per run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Design {
    /// Runs.
    pub points: usize,
    /// Distinct model sizes.
    pub distinct_n: usize,
    /// Distinct token counts.
    pub distinct_d: usize,
    /// Compute budgets (points within the budget ratio of each other share one).
    pub budgets: usize,
    /// Budgets with at least [`SIZES_PER_BUDGET`] distinct sizes.
    pub usable_budgets: usize,
    /// Standard deviation of ln N.
    pub sd_log_n: f64,
    /// Standard deviation of ln D.
    pub sd_log_d: f64,
    /// Correlation of ln N and ln D (0 when either is constant).
    pub corr_log_nd: f64,
    /// Standard deviation of ln D around its least-squares line in ln N: how far the design leaves a
    /// single tokens-per-parameter power law (sd_log_d * sqrt(1 - corr^2)).
    pub sd_log_d_given_n: f64,
    /// Standard deviation of ln N around its line in ln D.
    pub sd_log_n_given_d: f64,
    /// The token count when every run shares one.
    pub only_d: Option<f64>,
    /// The model size when every run shares one.
    pub only_n: Option<f64>,
}

fn distinct(values: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    v.dedup_by(|a, b| (*a - *b).abs() <= SAME_VALUE * b.abs());
    v
}

fn mean_sd(x: &[f64]) -> (f64, f64) {
    let n = x.len().max(1) as f64;
    let m = x.iter().sum::<f64>() / n;
    (
        m,
        (x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / n).sqrt(),
    )
}

impl Design {
    /// The design of `points` (one per run), with budgets grouped at `budget_ratio`.
    pub fn of(points: &[Obs], budget_ratio: f64) -> Design {
        let ns = distinct(points.iter().map(|p| p.n));
        let ds = distinct(points.iter().map(|p| p.d));
        let groups = group_budgets(points, budget_ratio);
        let usable = groups
            .iter()
            .filter(|g| distinct_sizes(points, g) >= SIZES_PER_BUDGET)
            .count();
        let ln: Vec<f64> = points.iter().map(|p| p.n.ln()).collect();
        let ld: Vec<f64> = points.iter().map(|p| p.d.ln()).collect();
        let ((mn, sn), (md, sd)) = (mean_sd(&ln), mean_sd(&ld));
        let cov = ln
            .iter()
            .zip(&ld)
            .map(|(a, b)| (a - mn) * (b - md))
            .sum::<f64>()
            / points.len().max(1) as f64;
        let corr = if sn > 1e-12 && sd > 1e-12 {
            (cov / (sn * sd)).clamp(-1.0, 1.0)
        } else {
            0.0
        };
        let rest = (1.0 - corr * corr).max(0.0).sqrt();
        Design {
            points: points.len(),
            distinct_n: ns.len(),
            distinct_d: ds.len(),
            budgets: groups.len(),
            usable_budgets: usable,
            sd_log_n: sn,
            sd_log_d: sd,
            corr_log_nd: corr,
            sd_log_d_given_n: sd * rest,
            sd_log_n_given_d: sn * rest,
            only_d: (ds.len() == 1).then(|| ds[0]),
            only_n: (ns.len() == 1).then(|| ns[0]),
        }
    }

    /// Why N's effect and D's cannot be told apart, or `None` when they can.
    pub fn inseparable(&self) -> Option<String> {
        if let Some(d) = self.only_d {
            return Some(format!(
                "every run has D = {d:.3e} tokens, so the N and D terms cannot be told apart"
            ));
        }
        if let Some(n) = self.only_n {
            return Some(format!(
                "every run has N = {n:.3e} parameters, so the N and D terms cannot be told apart"
            ));
        }
        if self.distinct_n < DISTINCT_VALUES || self.distinct_d < DISTINCT_VALUES {
            return Some(format!(
                "{} distinct N and {} distinct D values ({DISTINCT_VALUES} of each needed)",
                self.distinct_n, self.distinct_d
            ));
        }
        let spread = self.sd_log_d_given_n.min(self.sd_log_n_given_d);
        if spread < JOINT_SPREAD {
            return Some(format!(
                "log N and log D move together (correlation {:.3}; D varies by {:.1}% around one \
                 tokens-per-parameter line, {:.0}% needed), so the N and D terms cannot be told apart",
                self.corr_log_nd,
                100.0 * self.sd_log_d_given_n.exp_m1(),
                100.0 * JOINT_SPREAD.exp_m1()
            ));
        }
        None
    }

    /// Why `approach` cannot identify the compute-optimal allocation on this design, or `None`.
    pub fn refuses(&self, approach: Approach) -> Option<String> {
        match approach {
            Approach::Approach2 => (self.usable_budgets < USABLE_BUDGETS).then(|| {
                format!(
                    "{} of {} compute budgets have {SIZES_PER_BUDGET} or more model sizes \
                     ({USABLE_BUDGETS} needed for a slope of N_opt against C)",
                    self.usable_budgets, self.budgets
                )
            }),
            // Approach 1's envelope is only fair where runs also end: with one schedule length (or
            // one ratio) it is traced by checkpoints partway through their schedules.
            Approach::Approach1 | Approach::Approach3 | Approach::Kaplan => self.inseparable(),
        }
    }

    /// One line: the design's counts and spreads.
    pub fn summary(&self) -> String {
        format!(
            "{} runs, {} distinct N, {} distinct D, {} budgets ({} with {SIZES_PER_BUDGET}+ sizes); \
             sd ln N {:.2}, sd ln D {:.2}, corr {:.2}",
            self.points,
            self.distinct_n,
            self.distinct_d,
            self.budgets,
            self.usable_budgets,
            self.sd_log_n,
            self.sd_log_d,
            self.corr_log_nd
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pts(nd: &[(f64, f64)]) -> Vec<Obs> {
        nd.iter().map(|&(n, d)| Obs::from_n_d(n, d, 3.0)).collect()
    }

    #[test]
    fn one_token_count_is_refused_by_every_law_of_n_and_d() {
        let p = pts(&[(1e4, 4e6), (2e4, 4e6), (4e4, 4e6), (8e4, 4e6)]);
        let d = Design::of(&p, 1.25);
        assert_eq!((d.distinct_n, d.distinct_d, d.only_d), (4, 1, Some(4e6)));
        for a in Approach::ALL {
            assert!(d.refuses(a).is_some(), "{a:?}");
        }
        assert!(d
            .refuses(Approach::Approach3)
            .unwrap()
            .contains("D = 4.000e6"));
    }

    #[test]
    fn one_ratio_is_refused_and_its_correlation_is_one() {
        // D = 20 N, with a 0.5% jitter from rounding tokens to whole batches.
        let p: Vec<Obs> = (0..8)
            .map(|i| {
                let n = 1e4 * 2f64.powi(i);
                Obs::from_n_d(n, 20.0 * n * (1.0 + 0.005 * (i % 2) as f64), 3.0)
            })
            .collect();
        let d = Design::of(&p, 1.25);
        assert!(d.corr_log_nd > 0.999 && d.sd_log_d_given_n < 0.01, "{d:?}");
        assert!(d
            .refuses(Approach::Approach3)
            .unwrap()
            .contains("move together"));
        // Each budget holds one size: no isoFLOP profile either.
        assert_eq!(d.usable_budgets, 0);
        assert!(d.refuses(Approach::Approach2).is_some());
    }

    #[test]
    fn an_isoflop_grid_identifies_everything() {
        // 4 budgets x 5 sizes, D = C / (6 N): by hand, within a budget ln D falls as ln N rises.
        let mut nd = Vec::new();
        for c in [1e12, 1e13, 1e14, 1e15] {
            for k in 0..5 {
                let n = (c / 6.0f64).sqrt() / 20f64.sqrt() * 2f64.powf(k as f64 - 2.0);
                nd.push((n, c / (6.0 * n)));
            }
        }
        let d = Design::of(&pts(&nd), 1.25);
        assert_eq!((d.budgets, d.usable_budgets), (4, 4));
        assert!(d.sd_log_d_given_n > 0.5, "{d:?}");
        for a in Approach::ALL {
            assert_eq!(d.refuses(a), None, "{a:?}");
        }
    }

    #[test]
    fn hand_computed_spreads() {
        // ln N = {0, 2}, ln D = {0, 0, 2, 2} crossed: sd 1 each, correlation 0.
        let e2 = 2f64.exp();
        let d = Design::of(&pts(&[(1.0, 1.0), (e2, 1.0), (1.0, e2), (e2, e2)]), 1.25);
        assert!((d.sd_log_n - 1.0).abs() < 1e-12 && (d.sd_log_d - 1.0).abs() < 1e-12);
        assert!(d.corr_log_nd.abs() < 1e-12 && (d.sd_log_d_given_n - 1.0).abs() < 1e-12);
        // Two values of each are too few for a floor and a power of each.
        assert!(d
            .inseparable()
            .unwrap()
            .contains("2 distinct N and 2 distinct D"));
    }
}

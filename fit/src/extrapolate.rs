//! Extrapolation check: fit on the smaller budgets, predict the held-out largest ones, report the error.
//! [`ExtrapolationError`] is the measure every law reports the same way (Choshen et al. 2025, "A
//! Hitchhiker's Guide to Scaling Law Estimation"): the mean absolute relative error of the losses
//! it predicts for runs it was not fitted on, with a bootstrap interval over those runs.

use crate::bootstrap::Estimate;
use crate::data::{budget_compute, distinct_sizes, group_budgets, Obs};
use crate::error::{FitError, FitResult};
use crate::regression::Parabola;
use crate::report::{fit_law, Approach, FitInput, FitOptions};
use serde::{Deserialize, Serialize};

/// Prediction against observation at one held-out budget (a law that predicts no finite value
/// leaves NaN, written as null in JSON and read back as NaN).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeldOutBudget {
    /// Budget compute.
    #[serde(deserialize_with = "crate::bootstrap::null_as_nan")]
    pub c: f64,
    /// Observed optimum N (parabola vertex when bracketed, else the best run's N).
    #[serde(deserialize_with = "crate::bootstrap::null_as_nan")]
    pub observed_n_opt: f64,
    /// Observed optimal loss.
    #[serde(deserialize_with = "crate::bootstrap::null_as_nan")]
    pub observed_loss: f64,
    /// How the observed optimum was read: "parabola" or "best run".
    pub observed_from: String,
    /// Predicted N_opt at this budget.
    #[serde(deserialize_with = "crate::bootstrap::null_as_nan")]
    pub predicted_n_opt: f64,
    /// Predicted optimal loss at this budget.
    #[serde(deserialize_with = "crate::bootstrap::null_as_nan")]
    pub predicted_loss: f64,
    /// predicted / observed - 1 for N_opt.
    #[serde(deserialize_with = "crate::bootstrap::null_as_nan")]
    pub n_opt_rel_error: f64,
    /// predicted / observed - 1 for the optimal loss.
    #[serde(deserialize_with = "crate::bootstrap::null_as_nan")]
    pub loss_rel_error: f64,
}

/// How well a law fitted on some runs predicts the final losses of others.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExtrapolationError {
    /// What was held out (e.g. "C >= 1.0e12", "N >= 1.3e9").
    pub held_out: String,
    /// Runs fitted on.
    pub train_points: usize,
    /// Runs predicted.
    pub held_out_points: usize,
    /// Mean |predicted / observed - 1| over the held-out runs, with a percentile interval from
    /// resampling them.
    pub mean_abs_rel_error: Estimate,
    /// The largest |predicted / observed - 1|.
    pub max_abs_rel_error: f64,
}

/// Resamples of the held-out runs behind the interval of [`ExtrapolationError`].
const ERROR_REPLICATES: usize = 2000;

impl ExtrapolationError {
    /// The error of `(predicted, observed)` losses of held-out runs, with a `level` interval
    /// (deterministic: a fixed resampling stream). `None` without runs or with a non-finite or
    /// non-positive value.
    pub fn of(
        held_out: String,
        train_points: usize,
        pairs: &[(f64, f64)],
        level: f64,
    ) -> Option<Self> {
        use rand::{Rng, SeedableRng};
        if pairs.is_empty()
            || pairs
                .iter()
                .any(|&(p, o)| !(p.is_finite() && o.is_finite() && o > 0.0))
        {
            return None;
        }
        let errs: Vec<f64> = pairs.iter().map(|&(p, o)| (p / o - 1.0).abs()).collect();
        let mean = |v: &mut dyn Iterator<Item = f64>| {
            let (s, n) = v.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
            s / n as f64
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x5eed);
        let samples: Vec<f64> = (0..ERROR_REPLICATES)
            .map(|_| mean(&mut (0..errs.len()).map(|_| errs[rng.random_range(0..errs.len())])))
            .collect();
        Some(ExtrapolationError {
            held_out,
            train_points,
            held_out_points: pairs.len(),
            mean_abs_rel_error: Estimate::from_samples(
                mean(&mut errs.iter().copied()),
                &samples,
                level,
            ),
            max_abs_rel_error: errs.iter().fold(0.0, |m: f64, v| m.max(*v)),
        })
    }
}

/// The runs of `points` split at the [`HELD_OUT_SHARE`] with the largest `compute`: (the smaller
/// runs, the held-out ones, a label saying where the split lies).
pub fn split_by_compute<P: Copy>(
    points: &[P],
    compute: impl Fn(&P) -> f64,
    law: &'static str,
) -> FitResult<(Vec<P>, Vec<P>, String)> {
    let mut cs: Vec<f64> = points.iter().map(&compute).collect();
    cs.sort_by(f64::total_cmp);
    let cut = ((1.0 - HELD_OUT_SHARE) * cs.len() as f64).floor() as usize;
    let threshold = *cs.get(cut).ok_or(FitError::TooFewPoints {
        law,
        needed: 10,
        got: points.len(),
    })?;
    let (train, held): (Vec<P>, Vec<P>) = points.iter().partition(|p| compute(p) < threshold);
    let label = format!(
        "compute >= {threshold:.3e} (the largest {:.0}% of runs)",
        100.0 * HELD_OUT_SHARE
    );
    Ok((train, held, label))
}

/// Fits `fit` on the runs below the [`HELD_OUT_SHARE`] of largest compute and scores `predict` on
/// the rest: `observed` gives a run's loss.
pub fn by_compute<P: Copy, L>(
    points: &[P],
    compute: impl Fn(&P) -> f64,
    fit: impl Fn(&[P]) -> FitResult<L>,
    predict: impl Fn(&L, &P) -> f64,
    observed: impl Fn(&P) -> f64,
    (law, level): (&'static str, f64),
) -> FitResult<ExtrapolationError> {
    let (train, held, label) = split_by_compute(points, compute, law)?;
    let fitted = fit(&train)?;
    let pairs: Vec<(f64, f64)> = held
        .iter()
        .map(|p| (predict(&fitted, p), observed(p)))
        .collect();
    ExtrapolationError::of(label, train.len(), &pairs, level)
        .ok_or_else(|| FitError::NotFittable(format!("{law} extrapolation: no finite prediction")))
}

/// The share of runs, largest compute (6ND) first, that [`by_compute`] holds out.
pub const HELD_OUT_SHARE: f64 = 0.2;

/// The outcome of the check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Extrapolation {
    /// Points at or above this compute were held out.
    pub threshold_c: f64,
    /// Points used to fit.
    pub train_points: usize,
    /// Points held out.
    pub held_out_points: usize,
    /// Per held-out budget.
    pub budgets: Vec<HeldOutBudget>,
    /// Mean |predicted/observed - 1| of the loss of each held-out point (laws of L(N, D) only).
    pub loss_mape: Option<f64>,
    /// Largest |predicted/observed - 1| of those.
    pub loss_max_ape: Option<f64>,
    /// The same held-out losses as [`ExtrapolationError`], with its interval (laws of L(N, D)
    /// only; absent from checks written before it existed).
    #[serde(default)]
    pub loss_error: Option<ExtrapolationError>,
}

/// The observed optimum of one budget's points.
fn observed_optimum(points: &[Obs], group: &[usize]) -> (f64, f64, &'static str) {
    if distinct_sizes(points, group) >= 3 {
        let x: Vec<f64> = group.iter().map(|&i| points[i].n.ln()).collect();
        let y: Vec<f64> = group.iter().map(|&i| points[i].loss).collect();
        if let Some(p) = Parabola::fit(&x, &y) {
            let v = p.vertex();
            let (lo, hi) = x
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &t| {
                    (a.min(t), b.max(t))
                });
            if p.coef[2] > 0.0 && v >= lo && v <= hi {
                return (v.exp(), p.at(v), "parabola");
            }
        }
    }
    let best = group
        .iter()
        .map(|&i| points[i])
        .min_by(|a, b| a.loss.total_cmp(&b.loss))
        .expect("non-empty budget");
    (best.n, best.loss, "best run")
}

/// Holds out the `options.holdout_budgets` largest budgets, fits the approach on the rest and compares.
pub fn check(
    approach: Approach,
    input: &FitInput,
    options: &FitOptions,
) -> FitResult<Extrapolation> {
    let finals = input.finals;
    let groups = group_budgets(finals, options.approach2.budget_ratio);
    let k = options.holdout_budgets;
    if groups.len() < k + 2 {
        return Err(FitError::TooFewPoints {
            law: "extrapolation check (budgets)",
            needed: k + 2,
            got: groups.len(),
        });
    }
    let held_groups = &groups[groups.len() - k..];
    let threshold_c = held_groups
        .iter()
        .flatten()
        .map(|&i| finals[i].c)
        .fold(f64::INFINITY, f64::min);
    let train: Vec<Obs> = finals
        .iter()
        .copied()
        .filter(|p| p.c < threshold_c)
        .collect();
    let held: Vec<Obs> = finals
        .iter()
        .copied()
        .filter(|p| p.c >= threshold_c)
        .collect();
    let train_runs: Vec<u32> = train.iter().map(|p| p.run).collect();
    let train_curves: Option<Vec<Obs>> = input.curves.map(|c| {
        c.iter()
            .copied()
            .filter(|p| train_runs.contains(&p.run))
            .collect()
    });
    let sub = FitInput {
        finals: &train,
        curves: train_curves.as_deref(),
    };
    let law = fit_law(approach, &sub, options)?;
    let budgets = held_groups
        .iter()
        .map(|g| {
            let c = budget_compute(finals, g);
            let (n_obs, l_obs, from) = observed_optimum(finals, g);
            let al = law.allocation(c);
            HeldOutBudget {
                c,
                observed_n_opt: n_obs,
                observed_loss: l_obs,
                observed_from: from.to_string(),
                predicted_n_opt: al.n_opt,
                predicted_loss: al.loss,
                n_opt_rel_error: al.n_opt / n_obs - 1.0,
                loss_rel_error: al.loss / l_obs - 1.0,
            }
        })
        .collect();
    let pairs: Option<Vec<(f64, f64)>> = held
        .iter()
        .map(|p| law.predict_loss(p.n, p.d).map(|l| (l, p.loss)))
        .collect();
    let errs: Option<Vec<f64>> = pairs
        .as_ref()
        .map(|v| v.iter().map(|&(l, o)| (l / o - 1.0).abs()).collect());
    let loss_error = pairs.as_ref().and_then(|v| {
        ExtrapolationError::of(
            format!("C >= {threshold_c:.3e}"),
            train.len(),
            v,
            options.level,
        )
    });
    Ok(Extrapolation {
        loss_error,
        threshold_c,
        train_points: train.len(),
        held_out_points: held.len(),
        budgets,
        loss_mape: errs
            .as_ref()
            .map(|e| e.iter().sum::<f64>() / e.len() as f64),
        loss_max_ape: errs
            .as_ref()
            .map(|e| e.iter().fold(0.0, |m: f64, v| m.max(*v))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extrapolation_error_by_hand() {
        // Errors 10%, 0% and 20%: mean 10%, max 20%; every resample's mean lies in [0, 20%].
        let pairs = [(1.1, 1.0), (2.0, 2.0), (2.4, 3.0)];
        let e = ExtrapolationError::of("N >= 1e9".into(), 7, &pairs, 0.95).unwrap();
        assert!((e.mean_abs_rel_error.value - 0.1).abs() < 1e-12);
        assert!((e.max_abs_rel_error - 0.2).abs() < 1e-12);
        let (lo, hi) = (e.mean_abs_rel_error.lo, e.mean_abs_rel_error.hi);
        assert!(
            (0.0..0.1).contains(&lo) && hi > 0.1 && hi <= 0.2 + 1e-12,
            "{lo} {hi}"
        );
        assert_eq!((e.train_points, e.held_out_points), (7, 3));
        // Deterministic, and refused without runs or with a bad value.
        assert_eq!(
            ExtrapolationError::of("N >= 1e9".into(), 7, &pairs, 0.95).unwrap(),
            e
        );
        assert!(ExtrapolationError::of("x".into(), 7, &[], 0.95).is_none());
        assert!(ExtrapolationError::of("x".into(), 7, &[(f64::NAN, 1.0)], 0.95).is_none());
    }

    #[test]
    fn a_budget_without_a_finite_prediction_survives_json() {
        let b = HeldOutBudget {
            c: 1e12,
            observed_n_opt: 8e4,
            observed_loss: 1.46,
            observed_from: "parabola".into(),
            predicted_n_opt: 1.5e7,
            predicted_loss: f64::NAN,
            n_opt_rel_error: 182.0,
            loss_rel_error: f64::NAN,
        };
        let text = serde_json::to_string(&b).unwrap();
        assert!(text.contains("\"predicted_loss\":null"), "{text}");
        let back: HeldOutBudget = serde_json::from_str(&text).unwrap();
        assert!(back.predicted_loss.is_nan() && back.loss_rel_error.is_nan());
        assert_eq!(back.predicted_n_opt, 1.5e7);
    }
}

//! Runs the requested approaches with bootstrap intervals, residuals and an extrapolation check, and
//! gathers everything into serialisable reports (the body of `fit.json`).

use crate::allocation::ComputeOptimal;
use crate::approach1::{self, Approach1Settings};
use crate::approach2::{self, Approach2Settings};
use crate::approach3::{self, Approach3Law, Approach3Settings};
use crate::bootstrap::{self, Estimate, Resample};
use crate::data::Obs;
use crate::design::Design;
use crate::error::{FitError, FitResult};
use crate::extrapolate::{self, Extrapolation};
use crate::kaplan;
use crate::noise::NoiseModel;
use crate::profile::{profile, Held, Profile};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The fitting approaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Approach {
    /// Training-curve envelope.
    Approach1,
    /// IsoFLOP parabolas.
    Approach2,
    /// Parametric L(N, D) with Huber loss.
    Approach3,
    /// Kaplan et al. 2020 laws.
    Kaplan,
}

impl Approach {
    /// Every approach, in report order.
    pub const ALL: [Approach; 4] = [
        Approach::Approach1,
        Approach::Approach2,
        Approach::Approach3,
        Approach::Kaplan,
    ];

    /// Parses "1", "2", "3", "kaplan" (or "approach1" ...).
    pub fn parse(s: &str) -> Option<Approach> {
        match s.trim().to_ascii_lowercase().trim_start_matches("approach") {
            "1" => Some(Approach::Approach1),
            "2" => Some(Approach::Approach2),
            "3" => Some(Approach::Approach3),
            "kaplan" => Some(Approach::Kaplan),
            _ => None,
        }
    }

    /// Short name.
    pub fn name(self) -> &'static str {
        match self {
            Approach::Approach1 => "approach1",
            Approach::Approach2 => "approach2",
            Approach::Approach3 => "approach3",
            Approach::Kaplan => "kaplan",
        }
    }
}

/// Everything that controls a fit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitOptions {
    /// Bootstrap replicates (0 disables intervals).
    pub bootstrap: usize,
    /// Seed of the bootstrap streams.
    pub seed: u64,
    /// Confidence level of the intervals.
    pub level: f64,
    /// Compute budgets at which to predict the optimal allocation.
    pub predict: Vec<f64>,
    /// Largest budgets held out by the extrapolation check (0 disables it).
    pub holdout_budgets: usize,
    /// Approach 1 settings.
    pub approach1: Approach1Settings,
    /// Approach 2 settings (its budget grouping is used everywhere budgets are needed).
    pub approach2: Approach2Settings,
    /// Approach 3 settings.
    pub approach3: Approach3Settings,
    /// Approach-3 bootstrap refits start from this many of the best full-data optima.
    pub approach3_bootstrap_starts: usize,
    /// The runs' measured noise: when set, every approach's bootstrap keeps the design and
    /// perturbs each run's loss by it (`crate::noise`) instead of resampling points or runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise: Option<NoiseModel>,
    /// The irreducible loss of the data when it is known (lab's synthetic corpus): approach 3 with
    /// E free then also runs its extrapolation check with E held there ([`FloorHeldCheck`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_floor: Option<f64>,
}

impl FitOptions {
    /// Holds the irreducible loss E at `e` (or fits it, with `None`) in every law that has one:
    /// approach 3's E and the loss frontiers of approaches 1 and 2 and of Kaplan's L(C_min) (which
    /// follows approach 2's setting).
    pub fn hold_e(&mut self, e: Option<f64>) {
        self.approach1.fixed_e = e;
        self.approach2.fixed_e = e;
        self.approach3.fixed_e = e;
    }
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            bootstrap: 1000,
            seed: 0,
            level: 0.95,
            predict: Vec::new(),
            holdout_budgets: 1,
            approach1: Approach1Settings::default(),
            approach2: Approach2Settings::default(),
            approach3: Approach3Settings::default(),
            approach3_bootstrap_starts: 3,
            noise: None,
            known_floor: None,
        }
    }
}

/// Predicted optimal allocation at one budget, with intervals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// Compute budget (FLOPs).
    pub c: f64,
    /// Compute-optimal parameters.
    pub n_opt: Estimate,
    /// Compute-optimal tokens.
    pub d_opt: Estimate,
    /// Tokens per parameter.
    pub tokens_per_param: Estimate,
    /// Loss at the optimum.
    pub loss: Estimate,
}

/// Pointwise residuals of a law of L(N, D) on the data it was fitted to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Residuals {
    /// Root mean square of ln(predicted / observed).
    #[serde(deserialize_with = "crate::bootstrap::null_as_nan")]
    pub rmse_log: f64,
    /// Largest |ln(predicted / observed)|.
    #[serde(deserialize_with = "crate::bootstrap::null_as_nan")]
    pub max_abs_log: f64,
    /// Per point: n, d, c, observed loss, predicted loss.
    pub points: Vec<[f64; 5]>,
}

/// How many bootstrap refits were asked for and how many succeeded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BootstrapInfo {
    /// Replicates requested.
    pub requested: usize,
    /// Replicates that produced a fit.
    pub succeeded: usize,
    /// Seed.
    pub seed: u64,
    /// Confidence level.
    pub level: f64,
    /// What was resampled.
    pub unit: Resample,
    /// Replicates that failed or landed on a degenerate solution (an exponent at a bound).
    #[serde(default)]
    pub degenerate: usize,
    /// More than half the replicates were degenerate: every interval of the report is unbounded.
    #[serde(default)]
    pub unbounded: bool,
}

/// The full result of one approach.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApproachReport {
    /// Which approach.
    pub approach: Approach,
    /// Points used.
    pub points: usize,
    /// Fitted parameters with intervals.
    pub parameters: BTreeMap<String, Estimate>,
    /// Exponent a of N_opt ~ C^a.
    pub a: Estimate,
    /// Exponent b of D_opt ~ C^b.
    pub b: Estimate,
    /// Predictions at the requested budgets.
    pub predictions: Vec<Prediction>,
    /// The compute-optimal frontier on a log grid from the smallest observed budget to 1000x the
    /// largest (or the largest requested prediction), with intervals: what plots draw as bands.
    #[serde(default)]
    pub frontier: Vec<Prediction>,
    /// Profile-likelihood intervals of a, alpha and beta (approach 3); the reported intervals cover
    /// them and the bootstrap's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<Profile>,
    /// Residuals (laws of L(N, D) only).
    pub residuals: Option<Residuals>,
    /// Fit on the smaller budgets, predict the held-out largest.
    pub extrapolation: Option<Extrapolation>,
    /// Approach 3 with E free on data whose floor is known: the same check with E held there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extrapolation_at_floor: Option<FloorHeldCheck>,
    /// Bootstrap bookkeeping.
    pub bootstrap: BootstrapInfo,
    /// Warnings the user should read.
    pub warnings: Vec<String>,
    /// Approach-specific detail (isoFLOP profiles, envelope, optimiser state).
    pub details: serde_json::Value,
}

/// Input to the fits: one final point per run, and training curves when there are any.
pub struct FitInput<'a> {
    /// One point per run (its end of training).
    pub finals: &'a [Obs],
    /// Every evaluation point of every run (for approach 1).
    pub curves: Option<&'a [Obs]>,
}

fn residuals(law: &dyn ComputeOptimal, points: &[Obs]) -> Option<Residuals> {
    let rows: Vec<[f64; 5]> = points
        .iter()
        .map(|p| {
            law.predict_loss(p.n, p.d)
                .map(|l| [p.n, p.d, p.c, p.loss, l])
        })
        .collect::<Option<_>>()?;
    let logs: Vec<f64> = rows.iter().map(|r| (r[4] / r[3]).ln()).collect();
    Some(Residuals {
        rmse_log: (logs.iter().map(|v| v * v).sum::<f64>() / logs.len() as f64).sqrt(),
        max_abs_log: logs.iter().fold(0.0, |m, v| m.max(v.abs())),
        points: rows,
    })
}

/// Assembles a report from the full-data fit and its bootstrap refits.
fn assemble<L: ComputeOptimal>(
    approach: Approach,
    law: &L,
    boots: &[L],
    points: &[Obs],
    options: &FitOptions,
    unit: Resample,
) -> ApproachReport {
    let level = options.level;
    let est = |value: f64, f: &dyn Fn(&L) -> f64| {
        let s: Vec<f64> = boots.iter().map(f).collect();
        Estimate::from_samples(value, &s, level)
    };
    let mut parameters = BTreeMap::new();
    for (i, (name, value)) in law.parameters().into_iter().enumerate() {
        parameters.insert(name.to_string(), est(value, &|b: &L| b.parameters()[i].1));
    }
    let (a, b) = law.exponents();
    let predict = |c: f64| {
        let al = law.allocation(c);
        Prediction {
            c,
            n_opt: est(al.n_opt, &|l: &L| l.allocation(c).n_opt),
            d_opt: est(al.d_opt, &|l: &L| l.allocation(c).d_opt),
            tokens_per_param: est(al.tokens_per_param(), &|l: &L| {
                l.allocation(c).tokens_per_param()
            }),
            loss: est(al.loss, &|l: &L| l.allocation(c).loss),
        }
    };
    let predictions = options.predict.iter().map(|&c| predict(c)).collect();
    let frontier = frontier_budgets(points, &options.predict)
        .into_iter()
        .map(predict)
        .collect();
    let requested = options.bootstrap;
    let degenerate =
        requested.saturating_sub(boots.len()) + boots.iter().filter(|l| l.degenerate()).count();
    let mut report = ApproachReport {
        approach,
        points: points.len(),
        parameters,
        a: est(a, &|l: &L| l.exponents().0),
        b: est(b, &|l: &L| l.exponents().1),
        predictions,
        frontier,
        profiles: Vec::new(),
        residuals: residuals(law, points),
        extrapolation: None,
        extrapolation_at_floor: None,
        bootstrap: BootstrapInfo {
            requested,
            succeeded: boots.len(),
            seed: options.seed,
            level,
            unit,
            degenerate,
            unbounded: requested > 0 && 2 * degenerate > requested,
        },
        warnings: Vec::new(),
        details: serde_json::Value::Null,
    };
    if report.bootstrap.unbounded {
        report.open_intervals();
        report.warnings.push(format!(
            "{}: {degenerate} of {requested} bootstrap refits failed or landed on a degenerate \
             solution (an exponent at a bound), so every interval is reported as unbounded",
            approach.name()
        ));
    } else if degenerate > 0 {
        report.warnings.push(format!(
            "{}: {degenerate} of {requested} bootstrap refits failed or were degenerate \
             (an exponent at a bound); they are kept in the intervals where finite",
            approach.name()
        ));
    }
    report
}

impl ApproachReport {
    /// Reports every interval as unbounded (the bootstrap could not bound them).
    fn open_intervals(&mut self) {
        let open = |e: &mut Estimate| *e = Estimate::unbounded(e.value);
        self.parameters.values_mut().for_each(open);
        open(&mut self.a);
        open(&mut self.b);
        for p in self.predictions.iter_mut().chain(self.frontier.iter_mut()) {
            for e in [
                &mut p.n_opt,
                &mut p.d_opt,
                &mut p.tokens_per_param,
                &mut p.loss,
            ] {
                open(e);
            }
        }
    }

    /// Widens the interval of the profiled quantity (for a, also b = 1 - rho a) to cover the profile
    /// interval, with a warning where the profile is open.
    fn cover_profile(&mut self, profile: Profile) {
        let (lo, hi) = (profile.estimate.lo, profile.estimate.hi);
        let widen = |e: &mut Estimate, lo: f64, hi: f64| {
            e.lo = if e.lo.is_nan() { lo } else { e.lo.min(lo) };
            e.hi = if e.hi.is_nan() { hi } else { e.hi.max(hi) };
        };
        let name = profile.held.name();
        match profile.held {
            Held::A { rho } => {
                widen(&mut self.a, lo, hi);
                widen(&mut self.b, 1.0 - rho * hi, 1.0 - rho * lo);
            }
            Held::Alpha | Held::Beta => {
                if let Some(e) = self.parameters.get_mut(name) {
                    widen(e, lo, hi);
                }
            }
        }
        let open: Vec<&str> = [("below", profile.open_below), ("above", profile.open_above)]
            .iter()
            .filter(|(_, o)| *o)
            .map(|(s, _)| *s)
            .collect();
        if !open.is_empty() {
            self.warnings.push(format!(
                "approach 3: the objective is flat in {name}: its profile is not bounded {} within \
                 its range, so the data do not determine it",
                open.join(" or ")
            ));
        }
        self.profiles.push(profile);
    }
}

/// Bootstraps `law` by refitting it on resamples of `resampled` (drawn by `unit`, or perturbed by
/// the options' noise model when they carry one) and assembles the report over the final points.
fn with_intervals<L: ComputeOptimal + Send>(
    approach: Approach,
    law: &L,
    resampled: &[Obs],
    unit: Resample,
    finals: &[Obs],
    options: &FitOptions,
    refit: impl Fn(&[Obs]) -> Option<L> + Sync,
) -> ApproachReport {
    let draw = bootstrap::Draw {
        how: if options.noise.is_some() {
            Resample::Noise
        } else {
            unit
        },
        budget_ratio: options.approach2.budget_ratio,
        noise: options.noise.as_ref(),
    };
    let boots = bootstrap::run(resampled, &draw, options.bootstrap, options.seed, refit);
    assemble(approach, law, &boots, finals, options, draw.how)
}

/// Fits one approach with intervals and the extrapolation check.
pub fn fit_approach(
    approach: Approach,
    input: &FitInput,
    options: &FitOptions,
) -> FitResult<ApproachReport> {
    if !(options.level > 0.0 && options.level < 1.0) {
        return Err(FitError::InvalidSetting(format!(
            "level must be in (0, 1), got {}",
            options.level
        )));
    }
    let finals = input.finals;
    // The design check reads sane points only: too few or bad ones get the fit's own message.
    let needed = match approach {
        Approach::Approach3 => 5,
        Approach::Kaplan => 4,
        Approach::Approach1 | Approach::Approach2 => 1,
    };
    if crate::data::validate(finals, approach.name(), needed).is_ok() {
        if let Some(why) = Design::of(finals, options.approach2.budget_ratio).refuses(approach) {
            return Err(FitError::NotIdentified(why));
        }
    }
    let mut report = match approach {
        Approach::Approach1 => {
            let curves = input.curves.ok_or_else(|| {
                FitError::InvalidSetting(
                    "approach 1 needs training curves (a lab results folder with curves.parquet)"
                        .into(),
                )
            })?;
            let s = options.approach1;
            let law = approach1::fit(curves, &s)?;
            let mut r = with_intervals(
                approach,
                &law,
                curves,
                Resample::Runs,
                finals,
                options,
                |p| approach1::fit(p, &s).ok(),
            );
            r.details = serde_json::json!({
                "runs_on_envelope": law.runs_on_envelope,
                "from_run_fraction": s.from_run_fraction,
                "r2_n": law.n_law.r2,
                "envelope": law.envelope,
            });
            r
        }
        Approach::Approach2 => {
            let s = options.approach2;
            let law = approach2::fit(finals, &s)?;
            let mut r = with_intervals(
                approach,
                &law,
                finals,
                Resample::WithinBudgets,
                finals,
                options,
                |p| approach2::fit(p, &s).ok(),
            );
            r.warnings.extend(law.warnings.iter().cloned());
            r.details = serde_json::json!({ "profiles": law.profiles, "r2_n": law.n_law.r2 });
            r
        }
        Approach::Approach3 => {
            let fit = approach3::fit(finals, &options.approach3)?;
            let mut starts: Vec<Vec<f64>> = vec![fit.optima[0].x.clone()];
            starts.extend(
                fit.optima
                    .iter()
                    .take(options.approach3_bootstrap_starts)
                    .map(|m| m.start.clone()),
            );
            let delta = options.approach3.huber_delta;
            let fixed_e = options.approach3.fixed_e;
            let law = Approach3Law::new(fit.law, finals);
            let mut r = with_intervals(
                approach,
                &law,
                finals,
                Resample::Points,
                finals,
                options,
                |p| {
                    approach3::fit_from_starts(p, delta, fixed_e, &starts)
                        .ok()
                        .map(|f| Approach3Law::new(f.law, p))
                },
            );
            if !fit.converged {
                r.warnings
                    .push("approach 3: the best start stopped at the iteration cap".into());
            }
            // Profiles only where intervals are reported: with a bootstrap that is not unbounded.
            if options.bootstrap > 0 && !r.bootstrap.unbounded {
                let l = &fit.law;
                let theta = [l.a.ln(), l.b.ln(), l.e.ln(), l.alpha, l.beta];
                for held in [Held::A { rho: law.cost.rho }, Held::Alpha, Held::Beta] {
                    if let Some(p) = profile(finals, &theta, fixed_e.is_some(), held, options.level)
                    {
                        r.cover_profile(p);
                    }
                }
            }
            r.details = serde_json::json!({
                "objective": fit.objective,
                "starts": fit.starts,
                "finite_optima": fit.optima.len(),
                "huber_delta": delta,
                "fixed_e": fixed_e,
                "converged": fit.converged,
                "cost_model": law.cost,
            });
            if law.cost.max_abs_log_error > 0.05 {
                r.warnings.push(format!(
                    "approach 3: compute per token is not a power law of N here (c(N) = {:.3} N^{:.3} \
                     misses a point's C by up to {:.0}%), so N_opt(C) is approximate",
                    law.cost.kappa,
                    law.cost.rho,
                    100.0 * law.cost.max_abs_log_error.exp_m1()
                ));
            }
            r
        }
        Approach::Kaplan => {
            // Kaplan's E is its L(C) frontier's floor: held or fitted like the other frontiers.
            let fixed_e = options.approach2.fixed_e;
            let law = kaplan::fit(finals, fixed_e)?;
            let starts = vec![
                law.joint.theta(),
                vec![20.0, 0.1, 20.0, 0.1],
                vec![30.0, 0.3, 30.0, 0.3],
            ];
            let mut r = with_intervals(
                approach,
                &law,
                finals,
                Resample::Points,
                finals,
                options,
                |p| kaplan::fit_from(p, &starts, fixed_e).ok(),
            );
            r.details = serde_json::json!({
                "C_c_pf_days": law.c_c_pf_days(),
                "frontier_points": law.frontier_points,
                "r2_l_of_n": law.l_of_n.r2,
                "r2_l_of_d": law.l_of_d.r2,
                "r2_l_of_c": law.l_of_c.r2,
                "joint_optimum_exponent_a": law.joint.alpha_d / (law.joint.alpha_n + law.joint.alpha_d),
            });
            r
        }
    };
    if options.holdout_budgets > 0 {
        match extrapolate::check(approach, input, options) {
            Ok(x) => report.extrapolation = Some(x),
            Err(e) => report
                .warnings
                .push(format!("extrapolation check skipped: {e}")),
        }
        report.extrapolation_at_floor = floor_held_check(approach, input, options);
    }
    Ok(report)
}

/// Approach 3's extrapolation check with E held at the known floor, when E is otherwise free:
/// a few budgets may not pin E, and a miss that disappears with E held comes from E, not from the
/// shape of the data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FloorHeldCheck {
    /// The floor E was held at.
    pub floor: f64,
    /// The check.
    pub check: Extrapolation,
}

fn floor_held_check(
    approach: Approach,
    input: &FitInput,
    options: &FitOptions,
) -> Option<FloorHeldCheck> {
    let floor = options.known_floor?;
    if approach != Approach::Approach3 || options.approach3.fixed_e.is_some() {
        return None;
    }
    let mut held = options.clone();
    held.approach3.fixed_e = Some(floor);
    let check = extrapolate::check(approach, input, &held).ok()?;
    Some(FloorHeldCheck { floor, check })
}

/// Fits the held-out-free subset for the extrapolation check (no bootstrap).
pub fn fit_law(
    approach: Approach,
    input: &FitInput,
    options: &FitOptions,
) -> FitResult<Box<dyn ComputeOptimal>> {
    Ok(match approach {
        Approach::Approach1 => {
            let curves = input.curves.ok_or(FitError::InvalidSetting(
                "approach 1 needs training curves".into(),
            ))?;
            Box::new(approach1::fit(curves, &options.approach1)?)
        }
        Approach::Approach2 => Box::new(approach2::fit(input.finals, &options.approach2)?),
        Approach::Approach3 => Box::new(Approach3Law::new(
            approach3::fit(input.finals, &options.approach3)?.law,
            input.finals,
        )),
        Approach::Kaplan => Box::new(kaplan::fit(input.finals, options.approach2.fixed_e)?),
    })
}

/// Points of the plotted frontier.
pub const FRONTIER_POINTS: usize = 31;

/// Log-spaced budgets from the smallest observed budget to 1000x the largest (or to the largest
/// requested prediction, if beyond).
pub fn frontier_budgets(finals: &[Obs], predict: &[f64]) -> Vec<f64> {
    let lo = finals.iter().map(|p| p.c).fold(f64::INFINITY, f64::min);
    let hi = finals.iter().map(|p| p.c).fold(0.0, f64::max) * 1e3;
    let hi = predict.iter().copied().fold(hi, f64::max);
    if !(lo.is_finite() && lo > 0.0 && hi > lo) {
        return Vec::new();
    }
    let (l0, l1) = (lo.ln(), hi.ln());
    (0..FRONTIER_POINTS)
        .map(|i| (l0 + (l1 - l0) * i as f64 / (FRONTIER_POINTS - 1) as f64).exp())
        .collect()
}

/// Default prediction budgets: the largest observed budget and 10x, 100x, 1000x beyond it.
pub fn default_predictions(finals: &[Obs]) -> Vec<f64> {
    let cmax = finals.iter().map(|p| p.c).fold(0.0, f64::max);
    [1.0, 10.0, 100.0, 1000.0]
        .iter()
        .map(|k| k * cmax)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allocation::Allocation;

    /// A law whose only content is its exponent a.
    struct Exponent(f64);

    impl ComputeOptimal for Exponent {
        fn approach(&self) -> &'static str {
            "test"
        }
        fn allocation(&self, c: f64) -> Allocation {
            Allocation {
                c,
                n_opt: c.powf(self.0),
                d_opt: c.powf(1.0 - self.0),
                loss: 2.0,
            }
        }
        fn exponents(&self) -> (f64, f64) {
            (self.0, 1.0 - self.0)
        }
        fn parameters(&self) -> Vec<(&'static str, f64)> {
            vec![("a", self.0)]
        }
    }

    fn report(boots: &[Exponent], requested: usize) -> ApproachReport {
        let points = [Obs::from_n_d(1e6, 1e8, 3.0), Obs::from_n_d(1e7, 1e9, 2.5)];
        let options = FitOptions {
            bootstrap: requested,
            predict: vec![1e20],
            ..FitOptions::default()
        };
        assemble(
            Approach::Approach2,
            &Exponent(0.5),
            boots,
            &points,
            &options,
            Resample::Points,
        )
    }

    #[test]
    fn degenerate_and_failed_refits_are_counted_and_open_the_intervals_when_they_dominate() {
        // 10 requested, 8 succeeded, 3 of those with a >= 1 (D_opt shrinking with C): 5 degenerate.
        let mixed: Vec<Exponent> = [0.45, 0.5, 0.55, 0.48, 0.52, 1.2, 1.3, 1.5]
            .into_iter()
            .map(Exponent)
            .collect();
        let r = report(&mixed, 10);
        assert_eq!((r.bootstrap.succeeded, r.bootstrap.degenerate), (8, 5));
        assert!(!r.bootstrap.unbounded && r.a.hi >= 1.2, "{:?}", r.a);
        assert_eq!(r.warnings.len(), 1);
        // One more failure: 6 of 10, a majority.
        let r = report(&mixed[1..], 10);
        assert_eq!(r.bootstrap.degenerate, 6);
        assert!(r.bootstrap.unbounded && r.a.is_unbounded() && r.a.value == 0.5);
        assert!(r.predictions[0].n_opt.is_unbounded() && r.parameters["a"].is_unbounded());
        assert!(r.warnings[0].contains("unbounded"), "{:?}", r.warnings);
    }
}

//! The law for routed language models of Clark et al. 2022 ("Unified Scaling Laws for Routed
//! Language Models"), in base-10 logarithms:
//!
//! log L(N, E) = a log N + b log Ê + c log N log Ê + d,
//! 1 / Ê = 1 / (E - 1 + (1 / E_start - 1 / E_max)^-1) + 1 / E_max,
//!
//! with N the parameters of the dense model each expert copies, E the number of experts and Ê the
//! saturating expert count: about E for E_start << E << E_max, E_start for a dense model (E = 1),
//! and at most E_max.
//!
//! For fixed (E_start, E_max) the law is linear in (a, b, c, d): the fit solves that part exactly by
//! least squares (QR) and searches (log E_start, log(E_max - E_start)) by L-BFGS from a grid of
//! starts, with the gradient of the profiled sum of squares (variable projection). Intervals:
//! bootstrap over runs.

use crate::bootstrap::{self, Estimate};
use crate::error::{FitError, FitResult};
use crate::extrapolate::ExtrapolationError;
use crate::optimize::{grid, linspace, minimize_all, LbfgsSettings, Objective};
use crate::regression::least_squares;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A routed-LM law.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RoutedLaw {
    /// Slope in log N.
    pub a: f64,
    /// Slope in log Ê.
    pub b: f64,
    /// Interaction of log N and log Ê.
    pub c: f64,
    /// Intercept.
    pub d: f64,
    /// Expert count where routing starts to help.
    pub e_start: f64,
    /// Expert count where it saturates.
    pub e_max: f64,
}

/// A router of Clark et al.'s study.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Router {
    /// Sinkhorn-BASE.
    SBase,
    /// Reinforcement-learned routing.
    RlR,
    /// Hash routing.
    Hash,
}

/// One run: dense parameters N, experts E (1 for a dense model), final loss.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RoutedObs {
    /// Parameters of the dense model the experts copy.
    pub n: f64,
    /// Experts (1: dense).
    pub experts: f64,
    /// Final loss.
    pub loss: f64,
}

/// Ê, and the derivatives of log10 Ê in E_start and E_max.
fn saturated(e: f64, e_start: f64, e_max: f64) -> (f64, f64, f64) {
    let u = 1.0 / e_start - 1.0 / e_max;
    let w = e - 1.0 + 1.0 / u;
    let q = 1.0 / w + 1.0 / e_max;
    let k = -1.0 / (q * std::f64::consts::LN_10);
    let dq_start = -1.0 / (w * w * u * u * e_start * e_start);
    let dq_max = 1.0 / (w * w * u * u * e_max * e_max) - 1.0 / (e_max * e_max);
    (1.0 / q, k * dq_start, k * dq_max)
}

impl RoutedLaw {
    /// The fits published by Clark et al. 2022 (REFERENCES.md).
    pub fn published(router: Router) -> Self {
        let (a, b, c, d, e_start, e_max) = match router {
            Router::SBase => (-0.082, -0.108, 0.009, 1.104, 1.847, 314.478),
            Router::RlR => (-0.083, -0.126, 0.012, 1.111, 1.880, 469.982),
            Router::Hash => (-0.087, -0.136, 0.012, 1.157, 4.175, 477.741),
        };
        RoutedLaw {
            a,
            b,
            c,
            d,
            e_start,
            e_max,
        }
    }

    /// The saturating expert count Ê(E).
    pub fn saturated_experts(&self, experts: f64) -> f64 {
        saturated(experts, self.e_start, self.e_max).0
    }

    /// log10 L(N, E).
    pub fn log10_loss(&self, n: f64, experts: f64) -> f64 {
        let (x, y) = (n.log10(), self.saturated_experts(experts).log10());
        self.a * x + self.b * y + self.c * x * y + self.d
    }

    /// L(N, E).
    pub fn loss(&self, n: f64, experts: f64) -> f64 {
        10f64.powf(self.log10_loss(n, experts))
    }

    /// Parameters by name.
    pub fn parameters(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("a", self.a),
            ("b", self.b),
            ("c", self.c),
            ("d", self.d),
            ("E_start", self.e_start),
            ("E_max", self.e_max),
        ]
    }
}

/// (E_start, E_max) of the search coordinates [log E_start, log(E_max - E_start)].
fn saturation(x: &[f64]) -> (f64, f64) {
    let e_start = x[0].exp();
    (e_start, e_start + x[1].exp())
}

/// The sum of squares of log10 L profiled over (a, b, c, d).
struct Profile<'a> {
    points: &'a [RoutedObs],
}

impl Profile<'_> {
    /// The law with the least-squares linear part at `x`, its half sum of squares, and the
    /// gradient of that in `x`.
    fn solve(&self, x: &[f64]) -> Option<(RoutedLaw, f64, Vec<f64>)> {
        let (e_start, e_max) = saturation(x);
        if !(e_start.is_finite() && e_max.is_finite() && e_max > e_start) {
            return None;
        }
        let feats: Vec<(f64, (f64, f64, f64))> = self
            .points
            .iter()
            .map(|p| (p.n.log10(), saturated(p.experts, e_start, e_max)))
            .collect();
        let rows: Vec<Vec<f64>> = feats
            .iter()
            .map(|&(lx, (s, ..))| {
                let ly = s.log10();
                vec![lx, ly, lx * ly, 1.0]
            })
            .collect();
        let target: Vec<f64> = self.points.iter().map(|p| p.loss.log10()).collect();
        let (coef, sse) = least_squares(&rows, &target)?;
        let law = RoutedLaw {
            a: coef[0],
            b: coef[1],
            c: coef[2],
            d: coef[3],
            e_start,
            e_max,
        };
        // Variable projection: at the optimal linear part, the profile's gradient is the partial
        // derivative with (a, b, c, d) held.
        let mut g = vec![0.0; 2];
        for ((row, t), &(lx, (_, dy_start, dy_max))) in rows.iter().zip(&target).zip(&feats) {
            let r = row.iter().zip(&coef).map(|(f, c)| f * c).sum::<f64>() - t;
            let slope = law.b + law.c * lx;
            g[0] += r * slope * e_start * (dy_start + dy_max);
            g[1] += r * slope * (e_max - e_start) * dy_max;
        }
        Some((law, 0.5 * sse, g))
    }
}

impl Objective for Profile<'_> {
    fn value(&self, x: &[f64]) -> f64 {
        self.solve(x).map_or(f64::INFINITY, |s| s.1)
    }
    fn value_gradient(&self, x: &[f64]) -> (f64, Vec<f64>) {
        self.solve(x)
            .map_or((f64::INFINITY, vec![0.0; 2]), |(_, v, g)| (v, g))
    }
}

/// Starts over [log E_start, log(E_max - E_start)]: E_start from 1.05 to 50, E_max - E_start from
/// 3 to 1e5.
fn starts() -> Vec<Vec<f64>> {
    grid(&[
        linspace(1.05f64.ln(), 50f64.ln(), 10),
        linspace(3f64.ln(), 1e5f64.ln(), 12),
    ])
}

fn fit_from(points: &[RoutedObs], starts: &[Vec<f64>]) -> Option<RoutedLaw> {
    let profile = Profile { points };
    let settings = LbfgsSettings {
        tol_grad: 1e-14,
        ..LbfgsSettings::default()
    };
    let best = minimize_all(&profile, starts, &settings)
        .into_iter()
        .next()?;
    profile.solve(&best.x).map(|s| s.0)
}

/// A fitted routed-LM law with intervals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoutedFit {
    /// The law fitted to every run.
    pub law: RoutedLaw,
    /// Parameters with bootstrap intervals.
    pub parameters: BTreeMap<String, Estimate>,
    /// Runs fitted.
    pub points: usize,
    /// The distinct expert counts (1: dense).
    pub expert_counts: Vec<f64>,
    /// Root mean square of log10(predicted / observed).
    pub rms_log10: f64,
    /// Bootstrap replicates that produced a fit.
    pub bootstrap_succeeded: usize,
    /// E_start or E_max when its interval spans more than two decades: the runs do not pin it.
    pub unidentified: Vec<String>,
}

/// Fits the law to runs of at least two sizes and three expert counts, with `bootstrap` replicates
/// (runs resampled) at confidence `level`.
pub fn fit(points: &[RoutedObs], bootstrap: usize, seed: u64, level: f64) -> FitResult<RoutedFit> {
    let law_name = "routed-LM law";
    for (row, p) in points.iter().enumerate() {
        for (column, value) in [("n", p.n), ("experts", p.experts), ("loss", p.loss)] {
            if !(value.is_finite() && value > 0.0) {
                return Err(FitError::BadValue { row, column, value });
            }
        }
        if p.experts < 1.0 {
            return Err(FitError::BadValue {
                row,
                column: "experts",
                value: p.experts,
            });
        }
    }
    let distinct = |f: fn(&RoutedObs) -> f64| {
        let mut v: Vec<f64> = points.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v.dedup();
        v
    };
    let expert_counts = distinct(|p| p.experts);
    let sizes = distinct(|p| p.n);
    if points.len() < 8 || expert_counts.len() < 3 || sizes.len() < 2 {
        return Err(FitError::NotIdentified(format!(
            "{law_name}: needs at least 8 runs over 2 sizes and 3 expert counts (got {} runs, {} \
             sizes, {} expert counts)",
            points.len(),
            sizes.len(),
            expert_counts.len()
        )));
    }
    let law = fit_from(points, &starts())
        .ok_or_else(|| FitError::NotFittable(format!("{law_name}: no start converged")))?;
    let from_best = vec![vec![law.e_start.ln(), (law.e_max - law.e_start).ln()]];
    let boots = bootstrap::over_points(points, bootstrap, seed, |sub| fit_from(sub, &from_best));
    let parameters = bootstrap::named_intervals(RoutedLaw::parameters, &law, &boots, level);
    let unidentified = ["E_start", "E_max"]
        .into_iter()
        .filter(|n| {
            let e = &parameters[*n];
            e.lo.is_finite() && !(e.lo > 0.0 && e.hi / e.lo <= 100.0)
        })
        .map(|n| {
            let e = &parameters[n];
            format!("{n} in [{:.3e}, {:.3e}]", e.lo, e.hi)
        })
        .collect();
    let rms_log10 = (points
        .iter()
        .map(|p| (law.log10_loss(p.n, p.experts) - p.loss.log10()).powi(2))
        .sum::<f64>()
        / points.len() as f64)
        .sqrt();
    Ok(RoutedFit {
        law,
        parameters,
        points: points.len(),
        expert_counts,
        rms_log10,
        bootstrap_succeeded: boots.len(),
        unidentified,
    })
}

/// Fits on every size but the largest and predicts the largest size's runs (each expert count).
pub fn extrapolation(points: &[RoutedObs], level: f64) -> FitResult<ExtrapolationError> {
    let largest = points.iter().map(|p| p.n).fold(f64::NEG_INFINITY, f64::max);
    let (train, held): (Vec<RoutedObs>, Vec<RoutedObs>) =
        points.iter().partition(|p| p.n < largest);
    let law = fit(&train, 0, 0, level)?.law;
    let pairs: Vec<(f64, f64)> = held
        .iter()
        .map(|p| (law.loss(p.n, p.experts), p.loss))
        .collect();
    ExtrapolationError::of(
        format!("N >= {largest:.3e} (the largest size)"),
        train.len(),
        &pairs,
        level,
    )
    .ok_or_else(|| FitError::NotFittable("routed-LM extrapolation: no finite prediction".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Dense and routed runs of 5 sizes and 9 expert counts with the losses of `law`.
    fn design(law: &RoutedLaw) -> Vec<RoutedObs> {
        let mut pts = Vec::new();
        for &n in &[1.5e7, 2.5e7, 1.3e8, 3.7e8, 1.3e9] {
            for &experts in &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 512.0] {
                pts.push(RoutedObs {
                    n,
                    experts,
                    loss: law.loss(n, experts),
                });
            }
        }
        pts
    }

    #[test]
    fn saturating_experts_by_hand() {
        let law = RoutedLaw::published(Router::SBase);
        // A dense model counts as E_start experts; far past E_max the count approaches E_max.
        assert!((law.saturated_experts(1.0) - 1.847).abs() < 1e-12);
        assert!((law.saturated_experts(1e12) / 314.478 - 1.0).abs() < 1e-6);
        // E = 64 by hand: 1/Ê = 1/(63 + 1/(1/1.847 - 1/314.478)) + 1/314.478.
        let u: f64 = 1.0 / 1.847 - 1.0 / 314.478;
        let want = 1.0 / (1.0 / (63.0 + 1.0 / u) + 1.0 / 314.478);
        assert!((law.saturated_experts(64.0) / want - 1.0).abs() < 1e-14);
        // log10 L at N = 1e8, E = 64, by hand.
        let (x, y) = (8.0, want.log10());
        let l = -0.082 * x - 0.108 * y + 0.009 * x * y + 1.104;
        assert!((law.log10_loss(1e8, 64.0) - l).abs() < 1e-14);
        // Routing helps: more experts, lower loss, at every size here.
        assert!(law.loss(1e8, 64.0) < law.loss(1e8, 8.0));
    }

    #[test]
    fn the_profile_gradient_matches_finite_differences() {
        let mut off = RoutedLaw::published(Router::Hash);
        off.c = 0.02;
        let mut pts = design(&off);
        for (i, p) in pts.iter_mut().enumerate() {
            p.loss *= 1.0 + 0.01 * ((i * 7 % 5) as f64 - 2.0);
        }
        let profile = Profile { points: &pts };
        let x = vec![1.2, 5.5];
        let (_, g) = profile.value_gradient(&x);
        for i in 0..2 {
            let h = 1e-6;
            let (mut up, mut down) = (x.clone(), x.clone());
            up[i] += h;
            down[i] -= h;
            let numeric = (profile.value(&up) - profile.value(&down)) / (2.0 * h);
            assert!(
                (numeric - g[i]).abs() < 1e-6 * (1e-6 + g[i].abs()),
                "{i}: {numeric} vs {}",
                g[i]
            );
        }
    }

    #[test]
    fn recovers_the_published_laws_from_exact_points() {
        for router in [Router::SBase, Router::RlR, Router::Hash] {
            let truth = RoutedLaw::published(router);
            let f = fit(&design(&truth), 0, 0, 0.95).unwrap();
            for ((name, got), (_, want)) in f.law.parameters().into_iter().zip(truth.parameters()) {
                assert!(
                    (got / want - 1.0).abs() < 1e-6,
                    "{router:?} {name}: {got} vs {want}"
                );
            }
            assert!(f.rms_log10 < 1e-10, "{}", f.rms_log10);
        }
    }

    #[test]
    fn an_exact_law_extrapolates_exactly() {
        let truth = RoutedLaw::published(Router::RlR);
        let e = extrapolation(&design(&truth), 0.95).unwrap();
        assert_eq!((e.train_points, e.held_out_points), (36, 9));
        assert!(e.mean_abs_rel_error.value < 1e-8, "{e:?}");
        assert!(e.held_out.starts_with("N >= 1.300e9"), "{}", e.held_out);
    }

    #[test]
    fn refuses_designs_that_cannot_identify_saturation() {
        let law = RoutedLaw::published(Router::SBase);
        let two_counts: Vec<RoutedObs> = design(&law)
            .into_iter()
            .filter(|p| p.experts <= 2.0)
            .collect();
        assert!(matches!(
            fit(&two_counts, 0, 0, 0.95),
            Err(FitError::NotIdentified(_))
        ));
        let mut bad = design(&law);
        bad[2].experts = 0.5;
        assert!(matches!(
            fit(&bad, 0, 0, 0.95),
            Err(FitError::BadValue { row: 2, .. })
        ));
    }
}

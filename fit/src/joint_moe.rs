//! The joint scaling law of dense and mixture-of-experts models of Ludziejewski et al. 2025 ("Joint
//! MoE Scaling Laws"), in the paper's signed form:
//!
//! L(N, D, E) = a E^delta N^(alpha + gamma ln E) + b E^omega D^(beta + zeta ln E) + c,
//!
//! with N the active parameters, D the training tokens and E the expansion (experts per active
//! expert; 1 for a dense model, where the law is Chinchilla's with alpha = -alpha_chinchilla). The
//! efficiency leverage of an MoE is the compute a dense model needs to reach the MoE's loss over the
//! MoE's compute, both compute-optimal.
//!
//! Fitted like approach 3: summed Huber(delta = 1e-3) of log L in log-sum-exp form,
//! log L = LSE(log a + delta ln E + (alpha + gamma ln E) ln N, log b + omega ln E +
//! (beta + zeta ln E) ln D, log c), by L-BFGS from a grid of starts, bootstrap intervals over runs.

use crate::bootstrap::{self, Estimate};
use crate::error::{FitError, FitResult};
use crate::optimize::{grid, minimize_all, LbfgsSettings, Objective};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A joint MoE law.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct JointMoeLaw {
    /// Parameter-term coefficient a.
    pub a: f64,
    /// Its expansion exponent delta.
    pub delta: f64,
    /// Parameter exponent alpha (negative: the loss falls with N).
    pub alpha: f64,
    /// How the parameter exponent moves with ln E.
    pub gamma: f64,
    /// Data-term coefficient b.
    pub b: f64,
    /// Its expansion exponent omega.
    pub omega: f64,
    /// Data exponent beta (negative).
    pub beta: f64,
    /// How the data exponent moves with ln E.
    pub zeta: f64,
    /// Irreducible loss c.
    pub c: f64,
}

/// One run: active parameters N, tokens D, expansion E (1: dense), final loss.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MoeObs {
    /// Active parameters.
    pub n: f64,
    /// Training tokens.
    pub d: f64,
    /// Expansion: total experts over active experts (1 for a dense model).
    pub e: f64,
    /// Final loss.
    pub loss: f64,
}

impl JointMoeLaw {
    /// The two terms (parameter, data) at (N, D, E).
    fn terms(&self, n: f64, d: f64, e: f64) -> (f64, f64) {
        let le = e.ln();
        (
            self.a * e.powf(self.delta) * n.powf(self.alpha + self.gamma * le),
            self.b * e.powf(self.omega) * d.powf(self.beta + self.zeta * le),
        )
    }

    /// L(N, D, E).
    pub fn loss(&self, n: f64, d: f64, e: f64) -> f64 {
        let (p, q) = self.terms(n, d, e);
        p + q + self.c
    }

    /// The compute-optimal loss at compute C = 6ND for expansion E: the minimum over N of
    /// L(N, C/(6N), E), by golden-section search in ln N over [1, C/6].
    pub fn optimal_loss(&self, c: f64, e: f64) -> f64 {
        let f = |ln_n: f64| {
            let n = ln_n.exp();
            self.loss(n, c / (6.0 * n), e)
        };
        let (mut lo, mut hi) = (0.0, (c / 6.0).ln());
        let g = (5f64.sqrt() - 1.0) / 2.0;
        for _ in 0..200 {
            let (x1, x2) = (hi - g * (hi - lo), lo + g * (hi - lo));
            if f(x1) <= f(x2) {
                hi = x2;
            } else {
                lo = x1;
            }
        }
        f((lo + hi) / 2.0)
    }

    /// Efficiency leverage of expansion E at compute C: the compute a dense model needs for the
    /// MoE's compute-optimal loss, over C. `None` when no dense compute up to 1e6 C reaches it.
    pub fn efficiency_leverage(&self, c: f64, e: f64) -> Option<f64> {
        let target = self.optimal_loss(c, e);
        let dense = |ln_c: f64| self.optimal_loss(ln_c.exp(), 1.0);
        let (mut lo, mut hi) = ((c / 1e6).ln(), (c * 1e6).ln());
        if !(dense(hi) <= target && dense(lo) >= target) {
            return None;
        }
        for _ in 0..200 {
            let mid = 0.5 * (lo + hi);
            if dense(mid) > target {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Some((0.5 * (lo + hi)).exp() / c)
    }

    fn from_theta(t: &[f64]) -> Self {
        JointMoeLaw {
            a: t[0].exp(),
            delta: t[1],
            alpha: t[2],
            gamma: t[3],
            b: t[4].exp(),
            omega: t[5],
            beta: t[6],
            zeta: t[7],
            c: t[8].exp(),
        }
    }

    fn theta(&self) -> Vec<f64> {
        vec![
            self.a.ln(),
            self.delta,
            self.alpha,
            self.gamma,
            self.b.ln(),
            self.omega,
            self.beta,
            self.zeta,
            self.c.ln(),
        ]
    }

    /// Parameters by name.
    pub fn parameters(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("a", self.a),
            ("delta", self.delta),
            ("alpha", self.alpha),
            ("gamma", self.gamma),
            ("b", self.b),
            ("omega", self.omega),
            ("beta", self.beta),
            ("zeta", self.zeta),
            ("c", self.c),
        ]
    }
}

struct Huber<'a> {
    points: &'a [MoeObs],
    delta: f64,
}

impl Huber<'_> {
    fn eval(&self, t: &[f64], want_grad: bool) -> (f64, Vec<f64>) {
        let mut total = 0.0;
        let mut g = vec![0.0; 9];
        for p in self.points {
            let (ln_n, ln_d, ln_e) = (p.n.ln(), p.d.ln(), p.e.ln());
            let terms = [
                t[0] + t[1] * ln_e + (t[2] + t[3] * ln_e) * ln_n,
                t[4] + t[5] * ln_e + (t[6] + t[7] * ln_e) * ln_d,
                t[8],
            ];
            let m = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let w = terms.map(|v| (v - m).exp());
            let s: f64 = w.iter().sum();
            let r = m + s.ln() - p.loss.ln();
            total += if r.abs() <= self.delta {
                0.5 * r * r
            } else {
                self.delta * (r.abs() - 0.5 * self.delta)
            };
            if want_grad {
                let dh = r.clamp(-self.delta, self.delta) / s;
                let (w0, w1) = (dh * w[0], dh * w[1]);
                g[0] += w0;
                g[1] += w0 * ln_e;
                g[2] += w0 * ln_n;
                g[3] += w0 * ln_e * ln_n;
                g[4] += w1;
                g[5] += w1 * ln_e;
                g[6] += w1 * ln_d;
                g[7] += w1 * ln_e * ln_d;
                g[8] += dh * w[2];
            }
        }
        (total, g)
    }
}

impl Objective for Huber<'_> {
    fn value(&self, x: &[f64]) -> f64 {
        self.eval(x, false).0
    }
    fn value_gradient(&self, x: &[f64]) -> (f64, Vec<f64>) {
        self.eval(x, true)
    }
}

/// Starts over [log a, delta, alpha, gamma, log b, omega, beta, zeta, log c]: the E terms start at
/// zero (dense-like), the rest on a Chinchilla-like grid.
fn starts() -> Vec<Vec<f64>> {
    grid(&[
        vec![2.0, 5.0, 8.0],
        vec![0.0],
        vec![-0.2, -0.35, -0.6],
        vec![0.0],
        vec![2.0, 5.0, 8.0],
        vec![0.0],
        vec![-0.2, -0.35, -0.6],
        vec![0.0],
        vec![-0.5, 0.0, 0.5],
    ])
}

fn fit_from(points: &[MoeObs], starts: &[Vec<f64>]) -> Option<JointMoeLaw> {
    let objective = Huber {
        points,
        delta: 1e-3,
    };
    let best = minimize_all(&objective, starts, &LbfgsSettings::default())
        .into_iter()
        .next()?;
    // Nine parameters, two of them nearly collinear per term (a coefficient and its E power at
    // few expansions): polish the best start with the cost criterion off.
    let polish = LbfgsSettings {
        tol_cost: 0.0,
        tol_grad: 1e-15,
        max_iters: 5000,
        ..LbfgsSettings::default()
    };
    let polished = minimize_all(&objective, std::slice::from_ref(&best.x), &polish)
        .into_iter()
        .next()
        .filter(|p| p.value <= best.value)
        .unwrap_or(best);
    Some(JointMoeLaw::from_theta(&polished.x))
}

/// A fitted joint MoE law with intervals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JointMoeFit {
    /// The law fitted to every run.
    pub law: JointMoeLaw,
    /// Parameters with bootstrap intervals.
    pub parameters: BTreeMap<String, Estimate>,
    /// Runs fitted.
    pub points: usize,
    /// The distinct expansions (1: dense).
    pub expansions: Vec<f64>,
    /// RMSE of ln(predicted / observed).
    pub rmse_log: f64,
    /// Bootstrap replicates that produced a fit.
    pub bootstrap_succeeded: usize,
    /// Efficiency leverage of each MoE expansion at each requested compute, with intervals:
    /// (E, C, leverage).
    pub leverage: Vec<(f64, f64, Estimate)>,
}

/// Fits the law to dense and MoE runs (at least two expansions, one of them dense), with
/// `bootstrap` replicates at confidence `level`, and the efficiency leverage of every MoE
/// expansion at each compute of `leverage_at`.
pub fn fit(
    points: &[MoeObs],
    leverage_at: &[f64],
    bootstrap: usize,
    seed: u64,
    level: f64,
) -> FitResult<JointMoeFit> {
    let law_name = "joint MoE law";
    for (row, p) in points.iter().enumerate() {
        for (column, value) in [("n", p.n), ("d", p.d), ("e", p.e), ("loss", p.loss)] {
            if !(value.is_finite() && value > 0.0) || (column == "e" && value < 1.0) {
                return Err(FitError::BadValue { row, column, value });
            }
        }
    }
    let mut expansions: Vec<f64> = points.iter().map(|p| p.e).collect();
    expansions.sort_by(f64::total_cmp);
    expansions.dedup();
    if expansions.len() < 2 || expansions[0] != 1.0 || points.len() < 12 {
        return Err(FitError::NotIdentified(format!(
            "{law_name}: needs dense runs (E = 1) and MoE runs of at least one expansion, 12 runs \
             in all (got expansions {expansions:?}, {} runs)",
            points.len()
        )));
    }
    let law = fit_from(points, &starts())
        .ok_or_else(|| FitError::NotFittable(format!("{law_name}: no start converged")))?;
    let from_best = vec![law.theta()];
    let boots = bootstrap::over_points(points, bootstrap, seed, |sub| fit_from(sub, &from_best));
    let parameters = bootstrap::named_intervals(JointMoeLaw::parameters, &law, &boots, level);
    let mut leverage = Vec::new();
    for &e in expansions.iter().filter(|&&e| e > 1.0) {
        for &c in leverage_at {
            let Some(value) = law.efficiency_leverage(c, e) else {
                continue;
            };
            let samples: Vec<f64> = boots
                .iter()
                .filter_map(|b| b.efficiency_leverage(c, e))
                .collect();
            leverage.push((e, c, Estimate::from_samples(value, &samples, level)));
        }
    }
    let rmse_log = (points
        .iter()
        .map(|p| (law.loss(p.n, p.d, p.e) / p.loss).ln().powi(2))
        .sum::<f64>()
        / points.len() as f64)
        .sqrt();
    Ok(JointMoeFit {
        law,
        parameters,
        points: points.len(),
        expansions,
        rmse_log,
        bootstrap_succeeded: boots.len(),
        leverage,
    })
}

/// Fits on all but the `extrapolate::HELD_OUT_SHARE` of runs with the largest compute 6ND and
/// predicts those.
pub fn extrapolation(
    points: &[MoeObs],
    level: f64,
) -> FitResult<crate::extrapolate::ExtrapolationError> {
    crate::extrapolate::by_compute(
        points,
        |p| 6.0 * p.n * p.d,
        |train| Ok(fit(train, &[], 0, 0, level)?.law),
        |law, p| law.loss(p.n, p.d, p.e),
        |p| p.loss,
        ("joint MoE law", level),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A law in which experts help: the parameter term shrinks with E and its exponent steepens.
    const TRUTH: JointMoeLaw = JointMoeLaw {
        a: 400.0,
        delta: -0.05,
        alpha: -0.34,
        gamma: -0.01,
        b: 1500.0,
        omega: 0.02,
        beta: -0.28,
        zeta: 0.005,
        c: 1.7,
    };

    fn design(law: &JointMoeLaw) -> Vec<MoeObs> {
        let mut pts = Vec::new();
        for &e in &[1.0, 4.0, 8.0, 32.0] {
            for &n in &[1e7, 4e7, 1.6e8, 6.4e8] {
                for &d in &[1e9, 4e9, 1.6e10] {
                    pts.push(MoeObs {
                        n,
                        d,
                        e,
                        loss: law.loss(n, d, e),
                    });
                }
            }
        }
        pts
    }

    #[test]
    fn the_law_by_hand_and_dense_is_chinchilla() {
        // E = 1: ln E = 0 and E^x = 1, so L = a N^alpha + b D^beta + c.
        let (n, d): (f64, f64) = (1e8, 2e9);
        let dense = 400.0 * n.powf(-0.34) + 1500.0 * d.powf(-0.28) + 1.7;
        assert!((TRUTH.loss(n, d, 1.0) - dense).abs() < 1e-12);
        // E = 8 by hand.
        let le = 8f64.ln();
        let moe = 400.0 * 8f64.powf(-0.05) * n.powf(-0.34 - 0.01 * le)
            + 1500.0 * 8f64.powf(0.02) * d.powf(-0.28 + 0.005 * le)
            + 1.7;
        assert!((TRUTH.loss(n, d, 8.0) - moe).abs() < 1e-12);
        // Dense leverage is 1; this law's experts are worth more than one times the compute.
        let one = TRUTH.efficiency_leverage(1e20, 1.0).unwrap();
        assert!((one - 1.0).abs() < 1e-6, "{one}");
        let eight = TRUTH.efficiency_leverage(1e20, 8.0).unwrap();
        assert!(eight > 1.2, "{eight}");
        // The dense optimum at the leveraged compute reaches the MoE's loss.
        let l = TRUTH.optimal_loss(1e20 * eight, 1.0);
        assert!((l / TRUTH.optimal_loss(1e20, 8.0) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn the_gradient_matches_finite_differences() {
        let pts = design(&TRUTH);
        let obj = Huber {
            points: &pts,
            delta: 1.0,
        };
        let x = vec![5.5, -0.02, -0.3, -0.02, 7.0, 0.01, -0.25, 0.01, 0.4];
        let (_, g) = obj.eval(&x, true);
        for i in 0..x.len() {
            let h = 1e-6;
            let (mut up, mut down) = (x.clone(), x.clone());
            up[i] += h;
            down[i] -= h;
            let numeric = (obj.value(&up) - obj.value(&down)) / (2.0 * h);
            assert!(
                (numeric - g[i]).abs() < 1e-5 * (1.0 + g[i].abs()),
                "{i}: {numeric} vs {}",
                g[i]
            );
        }
    }

    #[test]
    fn recovers_a_known_law_from_exact_points() {
        let f = fit(&design(&TRUTH), &[1e20], 0, 0, 0.95).unwrap();
        for ((name, got), (_, want)) in f.law.parameters().into_iter().zip(TRUTH.parameters()) {
            assert!(
                (got - want).abs() < 1e-6 * want.abs().max(1.0),
                "{name}: {got} vs {want}"
            );
        }
        assert!(f.rmse_log < 1e-9);
        assert_eq!(f.leverage.len(), 3);
        let (e, c, l) = &f.leverage[1];
        assert_eq!((*e, *c), (8.0, 1e20));
        assert!((l.value / TRUTH.efficiency_leverage(1e20, 8.0).unwrap() - 1.0).abs() < 1e-5);
    }

    #[test]
    fn an_exact_law_extrapolates_exactly() {
        let e = extrapolation(&design(&TRUTH), 0.95).unwrap();
        assert_eq!(e.train_points + e.held_out_points, 48);
        assert!(e.held_out_points >= 9, "{e:?}");
        assert!(e.mean_abs_rel_error.value < 1e-6, "{e:?}");
    }

    #[test]
    fn refuses_runs_without_dense_or_moe() {
        let only_moe: Vec<MoeObs> = design(&TRUTH).into_iter().filter(|p| p.e > 1.0).collect();
        assert!(matches!(
            fit(&only_moe, &[], 0, 0, 0.95),
            Err(FitError::NotIdentified(_))
        ));
        let mut bad = design(&TRUTH);
        bad[5].e = 0.5;
        assert!(matches!(
            fit(&bad, &[], 0, 0, 0.95),
            Err(FitError::BadValue { row: 5, .. })
        ));
    }
}

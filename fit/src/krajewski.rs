//! The fine-grained MoE law of Krajewski et al. 2024 (REFERENCES.md):
//! L(N, D, G) = c + (g / G^gamma + a) / N^alpha + b / D^beta, with G the granularity (d_ff / d_expert).
//!
//! Fitted like approach 3: summed Huber(delta) of log L in log-sum-exp form,
//! log L = LSE(log g - gamma log G - alpha log N, log a - alpha log N, log b - beta log D, log c),
//! by L-BFGS from a grid of starts, with bootstrap intervals over points.

use crate::bootstrap::{self, Estimate};
use crate::data::Obs;
use crate::error::{FitError, FitResult};
use crate::optimize::{grid, minimize_all, LbfgsSettings, Objective};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A Krajewski law.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct KrajewskiLaw {
    /// Irreducible loss c.
    pub c: f64,
    /// Size coefficient a.
    pub a: f64,
    /// Size exponent alpha.
    pub alpha: f64,
    /// Data coefficient b.
    pub b: f64,
    /// Data exponent beta.
    pub beta: f64,
    /// Granularity coefficient g.
    pub g: f64,
    /// Granularity exponent gamma.
    pub gamma: f64,
}

impl KrajewskiLaw {
    /// The law published by Krajewski et al. 2024.
    pub fn published() -> Self {
        KrajewskiLaw {
            c: 0.47,
            a: 18.1,
            alpha: 0.115,
            b: 30.8,
            beta: 0.147,
            g: 2.1,
            gamma: 0.58,
        }
    }

    /// L(N, D, G).
    pub fn loss(&self, n: f64, d: f64, granularity: f64) -> f64 {
        self.c
            + (self.g / granularity.powf(self.gamma) + self.a) / n.powf(self.alpha)
            + self.b / d.powf(self.beta)
    }

    fn from_theta(t: &[f64]) -> Self {
        KrajewskiLaw {
            a: t[0].exp(),
            b: t[1].exp(),
            c: t[2].exp(),
            g: t[3].exp(),
            alpha: t[4],
            beta: t[5],
            gamma: t[6],
        }
    }

    fn theta(&self) -> Vec<f64> {
        vec![
            self.a.ln(),
            self.b.ln(),
            self.c.ln(),
            self.g.ln(),
            self.alpha,
            self.beta,
            self.gamma,
        ]
    }

    /// Parameters by name.
    pub fn parameters(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("c", self.c),
            ("a", self.a),
            ("alpha", self.alpha),
            ("b", self.b),
            ("beta", self.beta),
            ("g", self.g),
            ("gamma", self.gamma),
        ]
    }
}

/// An observation with its granularity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GObs {
    /// N, D, C and loss.
    pub obs: Obs,
    /// Granularity G.
    pub g: f64,
}

struct Huber {
    /// log c is held (its gradient is zero).
    fixed_c: bool,
    log_n: Vec<f64>,
    log_d: Vec<f64>,
    log_g: Vec<f64>,
    log_l: Vec<f64>,
    delta: f64,
}

impl Huber {
    fn new(points: &[GObs], delta: f64, fixed_c: bool) -> Self {
        Huber {
            fixed_c,
            log_n: points.iter().map(|p| p.obs.n.ln()).collect(),
            log_d: points.iter().map(|p| p.obs.d.ln()).collect(),
            log_g: points.iter().map(|p| p.g.ln()).collect(),
            log_l: points.iter().map(|p| p.obs.loss.ln()).collect(),
            delta,
        }
    }

    fn eval(&self, t: &[f64], want_grad: bool) -> (f64, Vec<f64>) {
        let (la, lb, lc, lg, alpha, beta, gamma) = (t[0], t[1], t[2], t[3], t[4], t[5], t[6]);
        let mut total = 0.0;
        let mut g = vec![0.0; 7];
        for i in 0..self.log_n.len() {
            let terms = [
                lg - gamma * self.log_g[i] - alpha * self.log_n[i],
                la - alpha * self.log_n[i],
                lb - beta * self.log_d[i],
                lc,
            ];
            let m = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let e = terms.map(|v| (v - m).exp());
            let s: f64 = e.iter().sum();
            let r = m + s.ln() - self.log_l[i];
            total += if r.abs() <= self.delta {
                0.5 * r * r
            } else {
                self.delta * (r.abs() - 0.5 * self.delta)
            };
            if want_grad {
                let dh = r.clamp(-self.delta, self.delta) / s;
                g[0] += dh * e[1];
                g[1] += dh * e[2];
                g[2] += dh * e[3];
                g[3] += dh * e[0];
                g[4] -= dh * (e[0] + e[1]) * self.log_n[i];
                g[5] -= dh * e[2] * self.log_d[i];
                g[6] -= dh * e[0] * self.log_g[i];
            }
        }
        if self.fixed_c {
            g[2] = 0.0;
        }
        (total, g)
    }
}

impl Objective for Huber {
    fn value(&self, x: &[f64]) -> f64 {
        self.eval(x, false).0
    }
    fn value_gradient(&self, x: &[f64]) -> (f64, Vec<f64>) {
        self.eval(x, true)
    }
}

/// The grid of starts: [log a, log b, log c, log g, alpha, beta, gamma]; log c only at `fixed_c`
/// when c is held.
pub fn start_grid(fixed_c: Option<f64>) -> Vec<Vec<f64>> {
    let log_c = match fixed_c {
        Some(c) => vec![c.ln()],
        None => vec![-1.0, 0.0, 0.5],
    };
    grid(&[
        vec![0.0, 3.0, 6.0],
        vec![0.0, 3.0, 6.0],
        log_c,
        vec![-1.0, 1.0, 3.0],
        vec![0.1, 0.3, 0.6],
        vec![0.1, 0.3, 0.6],
        vec![0.2, 0.6],
    ])
}

fn fit_from(
    points: &[GObs],
    starts: &[Vec<f64>],
    delta: f64,
    fixed_c: bool,
) -> FitResult<KrajewskiLaw> {
    let objective = Huber::new(points, delta, fixed_c);
    let optima = minimize_all(&objective, starts, &LbfgsSettings::default());
    optima
        .first()
        .map(|m| KrajewskiLaw::from_theta(&m.x))
        .ok_or_else(|| FitError::NotFittable("Krajewski law: no start converged".into()))
}

/// A fitted Krajewski law with intervals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KrajewskiFit {
    /// The law fitted to every point.
    pub law: KrajewskiLaw,
    /// Parameters with bootstrap intervals.
    pub parameters: BTreeMap<String, Estimate>,
    /// Points used.
    pub points: usize,
    /// Distinct granularities.
    pub granularities: Vec<f64>,
    /// RMSE of ln(predicted / observed).
    pub rmse_log: f64,
    /// Bootstrap replicates that produced a fit.
    pub bootstrap_succeeded: usize,
    /// Fitted on the smaller runs, predicting the largest ([`extrapolation`]; filled by the
    /// caller, absent from fits written before it existed).
    #[serde(default)]
    pub extrapolation: Option<crate::extrapolate::ExtrapolationError>,
}

/// Fits the law to points of at least two granularities, with `bootstrap` replicates (points
/// resampled) at confidence `level`; `fixed_c` holds the irreducible loss at a known value.
pub fn fit(
    points: &[GObs],
    bootstrap: usize,
    seed: u64,
    level: f64,
    fixed_c: Option<f64>,
) -> FitResult<KrajewskiFit> {
    let mut gs: Vec<f64> = points.iter().map(|p| p.g).collect();
    gs.sort_by(f64::total_cmp);
    gs.dedup();
    if gs.len() < 2 {
        return Err(FitError::NotFittable(format!(
            "the Krajewski law needs at least two granularities, got {gs:?}"
        )));
    }
    if points.len() < 8 {
        return Err(FitError::NotFittable(format!(
            "the Krajewski law has 7 parameters: {} points are too few",
            points.len()
        )));
    }
    let positive = |p: &GObs| [p.g, p.obs.n, p.obs.d, p.obs.loss].iter().all(|v| *v > 0.0);
    if !points.iter().all(positive) {
        return Err(FitError::InvalidSetting(
            "Krajewski law: N, D, loss and G must be positive".into(),
        ));
    }
    let delta = 1e-3;
    let held = fixed_c.is_some();
    let law = fit_from(points, &start_grid(fixed_c), delta, held)?;
    let starts = vec![law.theta()];
    let boots = bootstrap::over_points(points, bootstrap, seed, |sub| {
        fit_from(sub, &starts, delta, held).ok()
    });
    let parameters = bootstrap::named_intervals(KrajewskiLaw::parameters, &law, &boots, level);
    let rmse_log = (points
        .iter()
        .map(|p| (law.loss(p.obs.n, p.obs.d, p.g) / p.obs.loss).ln().powi(2))
        .sum::<f64>()
        / points.len() as f64)
        .sqrt();
    Ok(KrajewskiFit {
        law,
        parameters,
        points: points.len(),
        granularities: gs,
        rmse_log,
        bootstrap_succeeded: boots.len(),
        extrapolation: None,
    })
}

/// Fits on all but the `extrapolate::HELD_OUT_SHARE` of runs with the largest compute and predicts
/// those (c held as in the full fit).
pub fn extrapolation(
    points: &[GObs],
    fixed_c: Option<f64>,
    level: f64,
) -> FitResult<crate::extrapolate::ExtrapolationError> {
    crate::extrapolate::by_compute(
        points,
        |p| p.obs.c,
        |train| Ok(fit(train, 0, 0, level, fixed_c)?.law),
        |law, p| law.loss(p.obs.n, p.obs.d, p.g),
        |p| p.obs.loss,
        ("Krajewski law", level),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_the_published_law_from_exact_points() {
        let truth = KrajewskiLaw::published();
        let mut pts = Vec::new();
        for &g in &[1.0, 2.0, 4.0, 8.0, 16.0] {
            for i in 0..5 {
                for j in 0..4 {
                    let n = 1e7 * 3f64.powi(i);
                    let d = 1e9 * 4f64.powi(j);
                    pts.push(GObs {
                        obs: Obs::from_n_d(n, d, truth.loss(n, d, g)),
                        g,
                    });
                }
            }
        }
        let f = fit(&pts, 0, 0, 0.95, None).unwrap();
        // Holding c at its true value recovers the same law.
        let held = fit(&pts, 0, 0, 0.95, Some(truth.c)).unwrap();
        assert!((held.law.c - truth.c).abs() < 1e-12);
        assert!(
            (held.law.gamma - truth.gamma).abs() < 0.01,
            "{:?}",
            held.law
        );
        let l = f.law;
        for (name, got, want) in [
            ("alpha", l.alpha, truth.alpha),
            ("beta", l.beta, truth.beta),
            ("gamma", l.gamma, truth.gamma),
        ] {
            assert!((got - want).abs() < 0.01, "{name}: {got} vs {want} ({l:?})");
        }
        assert!(f.rmse_log < 1e-3, "{}", f.rmse_log);
        // Finer granularity lowers the loss at fixed N and D.
        assert!(l.loss(1e8, 1e10, 8.0) < l.loss(1e8, 1e10, 1.0));
        // Fitted on the smaller 80% of the runs by compute, it predicts the rest exactly.
        let x = extrapolation(&pts, Some(truth.c), 0.95).unwrap();
        assert_eq!(x.train_points + x.held_out_points, pts.len());
        assert!(x.mean_abs_rel_error.value < 1e-6, "{x:?}");
    }

    #[test]
    fn one_granularity_is_not_fittable() {
        let pts: Vec<GObs> = (0..10)
            .map(|i| GObs {
                obs: Obs::from_n_d(1e6 * (i + 1) as f64, 1e8, 3.0),
                g: 1.0,
            })
            .collect();
        assert!(matches!(
            fit(&pts, 0, 0, 0.95, None),
            Err(FitError::NotFittable(_))
        ));
    }
}

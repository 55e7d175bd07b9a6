//! Chinchilla approach 3: L(N, D) = E + A / N^alpha + B / D^beta, fitted by minimising the summed
//! Huber loss of log L in log-sum-exp form with L-BFGS from the best of a grid of starts.

use crate::allocation::{Allocation, ComputeOptimal};
use crate::cost::CostModel;
use crate::data::{validate, Obs};
use crate::error::{FitError, FitResult};
use crate::optimize::{grid, linspace, minimize_all, LbfgsSettings, Minimum, Objective};
use serde::{Deserialize, Serialize};

/// Parameters of the Chinchilla parametric law.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ChinchillaLaw {
    /// Irreducible loss E.
    pub e: f64,
    /// Model-size coefficient A.
    pub a: f64,
    /// Data coefficient B.
    pub b: f64,
    /// Model-size exponent alpha.
    pub alpha: f64,
    /// Data exponent beta.
    pub beta: f64,
}

impl ChinchillaLaw {
    /// The law printed in Hoffmann et al. 2022 (unrounded values from REFERENCES.md).
    pub fn hoffmann2022() -> Self {
        ChinchillaLaw {
            e: 0.5267228f64.exp(),
            a: 6.0073404f64.exp(),
            b: 6.0179186f64.exp(),
            alpha: 0.33917084,
            beta: 0.2849083,
        }
    }

    /// From the optimiser's coordinates [log A, log B, log E, alpha, beta].
    pub fn from_theta(t: &[f64]) -> Self {
        ChinchillaLaw {
            a: t[0].exp(),
            b: t[1].exp(),
            e: t[2].exp(),
            alpha: t[3],
            beta: t[4],
        }
    }

    /// L(N, D).
    pub fn loss(&self, n: f64, d: f64) -> f64 {
        self.e + self.a / n.powf(self.alpha) + self.b / d.powf(self.beta)
    }

    /// G = (alpha A / (beta B))^(1 / (alpha + beta)).
    pub fn g(&self) -> f64 {
        (self.alpha * self.a / (self.beta * self.b)).powf(1.0 / (self.alpha + self.beta))
    }
}

impl ComputeOptimal for ChinchillaLaw {
    fn approach(&self) -> &'static str {
        "approach3"
    }

    /// N_opt = G (C/6)^a, D_opt = G^-1 (C/6)^b (compute counted as C = 6 N D).
    fn allocation(&self, c: f64) -> Allocation {
        let (a, b) = self.exponents();
        let g = self.g();
        let n_opt = g * (c / 6.0).powf(a);
        let d_opt = (c / 6.0).powf(b) / g;
        Allocation {
            c,
            n_opt,
            d_opt,
            loss: self.loss(n_opt, d_opt),
        }
    }

    fn exponents(&self) -> (f64, f64) {
        let s = self.alpha + self.beta;
        (self.beta / s, self.alpha / s)
    }

    fn parameters(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("E", self.e),
            ("A", self.a),
            ("B", self.b),
            ("alpha", self.alpha),
            ("beta", self.beta),
        ]
    }

    fn predict_loss(&self, n: f64, d: f64) -> Option<f64> {
        Some(self.loss(n, d))
    }
}

/// A fitted law of L(N, D) with the data's compute per token, c(N) = kappa N^rho: the allocation
/// minimises L(N, C / c(N)) over N, so that N_opt(C) is read against the same C as approaches 1 and 2.
/// With C = 6 N D (kappa 6, rho 1) it is [`ChinchillaLaw`]'s closed form.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Approach3Law {
    /// L(N, D).
    pub law: ChinchillaLaw,
    /// FLOPs per token against N.
    pub cost: CostModel,
}

impl Approach3Law {
    /// The law with the cost model of `points`.
    pub fn new(law: ChinchillaLaw, points: &[Obs]) -> Self {
        Approach3Law {
            law,
            cost: CostModel::fit(points),
        }
    }
}

impl ComputeOptimal for Approach3Law {
    fn approach(&self) -> &'static str {
        "approach3"
    }

    /// Setting dL/dN = 0 with D = C / (kappa N^rho):
    /// N_opt = (alpha A / (rho beta B kappa^beta))^(1/(alpha + rho beta)) C^(beta/(alpha + rho beta)).
    fn allocation(&self, c: f64) -> Allocation {
        let l = &self.law;
        let (kappa, rho) = (self.cost.kappa, self.cost.rho);
        let s = l.alpha + rho * l.beta;
        let n_opt = (l.alpha * l.a / (rho * l.beta * l.b * kappa.powf(l.beta))).powf(1.0 / s)
            * c.powf(l.beta / s);
        let d_opt = c / self.cost.per_token(n_opt);
        Allocation {
            c,
            n_opt,
            d_opt,
            loss: l.loss(n_opt, d_opt),
        }
    }

    fn exponents(&self) -> (f64, f64) {
        let l = &self.law;
        let a = l.beta / (l.alpha + self.cost.rho * l.beta);
        (a, 1.0 - self.cost.rho * a)
    }

    fn parameters(&self) -> Vec<(&'static str, f64)> {
        let mut p = self.law.parameters();
        p.push(("cost_kappa", self.cost.kappa));
        p.push(("cost_rho", self.cost.rho));
        p
    }

    fn predict_loss(&self, n: f64, d: f64) -> Option<f64> {
        Some(self.law.loss(n, d))
    }

    /// An exponent at the edge of the plausible: one of the two terms has vanished from the data's
    /// range (alpha or beta above [`MAX_EXPONENT`] or near 0), or a is outside (0, 1/rho).
    fn degenerate(&self) -> bool {
        let l = &self.law;
        let (a, _) = self.exponents();
        let plausible = |x: f64| x.is_finite() && x > 1e-3 && x < MAX_EXPONENT;
        !(plausible(l.alpha) && plausible(l.beta) && a > 0.0 && a < 1.0 / self.cost.rho)
    }
}

/// Largest plausible alpha or beta: beyond it a bootstrap refit has let one term vanish (published
/// fits give 0.3-0.4; lab's small models up to about 1).
pub const MAX_EXPONENT: f64 = 4.0;

/// Starting grid for approach 3, one list of values per coordinate [log A, log B, log E, alpha, beta].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartGrid {
    /// Values of log A.
    pub log_a: Vec<f64>,
    /// Values of log B.
    pub log_b: Vec<f64>,
    /// Values of log E.
    pub log_e: Vec<f64>,
    /// Values of alpha.
    pub alpha: Vec<f64>,
    /// Values of beta.
    pub beta: Vec<f64>,
}

impl Default for StartGrid {
    /// The published grid: alpha, beta in {0, 0.5, .., 2}, e in {-1, -0.5, .., 1}, a, b in {0, 5, .., 25}
    /// (4,500 starts).
    fn default() -> Self {
        StartGrid {
            log_a: linspace(0.0, 25.0, 6),
            log_b: linspace(0.0, 25.0, 6),
            log_e: linspace(-1.0, 1.0, 5),
            alpha: linspace(0.0, 2.0, 5),
            beta: linspace(0.0, 2.0, 5),
        }
    }
}

impl StartGrid {
    /// Every start point.
    pub fn points(&self) -> Vec<Vec<f64>> {
        grid(&[
            self.log_a.clone(),
            self.log_b.clone(),
            self.log_e.clone(),
            self.alpha.clone(),
            self.beta.clone(),
        ])
    }
}

/// Settings of an approach-3 fit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approach3Settings {
    /// Huber delta on log-loss residuals.
    pub huber_delta: f64,
    /// Grid of starting points.
    pub grid: StartGrid,
    /// Hold E at this value (e.g. a corpus's known entropy rate) and fit A, B, alpha, beta only.
    #[serde(default)]
    pub fixed_e: Option<f64>,
}

impl Default for Approach3Settings {
    fn default() -> Self {
        Approach3Settings {
            huber_delta: 1e-3,
            grid: StartGrid::default(),
            fixed_e: None,
        }
    }
}

/// The approach-3 objective: sum over points of Huber(log Lhat - log L). With an infinite delta it
/// is half the residual sum of squares of log L.
pub struct HuberObjective {
    log_n: Vec<f64>,
    log_d: Vec<f64>,
    log_l: Vec<f64>,
    delta: f64,
    /// log E is held fixed (its gradient is zero, so L-BFGS never moves it).
    fixed_e: bool,
}

impl HuberObjective {
    /// Builds the objective over the given points.
    pub fn new(points: &[Obs], delta: f64) -> Self {
        HuberObjective {
            log_n: points.iter().map(|p| p.n.ln()).collect(),
            log_d: points.iter().map(|p| p.d.ln()).collect(),
            log_l: points.iter().map(|p| p.loss.ln()).collect(),
            delta,
            fixed_e: false,
        }
    }

    /// Holds log E where the parameters put it (its gradient is zeroed).
    pub fn set_fixed_e(&mut self, fixed: bool) {
        self.fixed_e = fixed;
    }

    /// Value and gradient together (one pass over the data).
    fn eval(&self, t: &[f64], grad: Option<&mut [f64; 5]>) -> f64 {
        let (la, lb, le, alpha, beta) = (t[0], t[1], t[2], t[3], t[4]);
        let delta = self.delta;
        let mut total = 0.0;
        let mut g = [0.0f64; 5];
        let want_grad = grad.is_some();
        for i in 0..self.log_n.len() {
            let t1 = la - alpha * self.log_n[i];
            let t2 = lb - beta * self.log_d[i];
            let m = t1.max(t2).max(le);
            let (e1, e2, e3) = ((t1 - m).exp(), (t2 - m).exp(), (le - m).exp());
            let s = e1 + e2 + e3;
            let r = m + s.ln() - self.log_l[i];
            let ar = r.abs();
            total += if ar <= delta {
                0.5 * r * r
            } else {
                delta * (ar - 0.5 * delta)
            };
            if want_grad {
                let dh = r.clamp(-delta, delta) / s;
                g[0] += dh * e1;
                g[1] += dh * e2;
                g[2] += dh * e3;
                g[3] -= dh * e1 * self.log_n[i];
                g[4] -= dh * e2 * self.log_d[i];
            }
        }
        if self.fixed_e {
            g[2] = 0.0;
        }
        if let Some(out) = grad {
            *out = g;
        }
        total
    }
}

impl Objective for HuberObjective {
    fn value(&self, x: &[f64]) -> f64 {
        self.eval(x, None)
    }
    fn value_gradient(&self, x: &[f64]) -> (f64, Vec<f64>) {
        let mut g = [0.0; 5];
        let v = self.eval(x, Some(&mut g));
        (v, g.to_vec())
    }
}

/// A fitted approach-3 law with what the optimiser saw.
#[derive(Debug, Clone, PartialEq)]
pub struct Approach3Fit {
    /// Best law.
    pub law: ChinchillaLaw,
    /// Objective value at the best law.
    pub objective: f64,
    /// Every finite optimum, best first (the best few seed bootstrap refits).
    pub optima: Vec<Minimum>,
    /// Number of starts tried.
    pub starts: usize,
    /// Whether the best optimum met a convergence criterion.
    pub converged: bool,
}

/// Fits approach 3 from every start in `starts` (with log E replaced by ln `fixed_e` when E is held).
pub fn fit_from_starts(
    points: &[Obs],
    delta: f64,
    fixed_e: Option<f64>,
    starts: &[Vec<f64>],
) -> FitResult<Approach3Fit> {
    validate(points, "approach 3", 5)?;
    let starts: Vec<Vec<f64>> = match fixed_e {
        None => starts.to_vec(),
        Some(e) => {
            let min_loss = points.iter().map(|p| p.loss).fold(f64::INFINITY, f64::min);
            if !(e > 0.0 && e < min_loss) {
                return Err(FitError::InvalidSetting(format!(
                    "fixed E = {e} must be positive and below every loss (lowest {min_loss})"
                )));
            }
            let mut out: Vec<Vec<f64>> = Vec::new();
            for s in starts {
                let mut s = s.clone();
                s[2] = e.ln();
                if !out.contains(&s) {
                    out.push(s);
                }
            }
            out
        }
    };
    let starts = &starts[..];
    if !(delta.is_finite() && delta > 0.0) {
        return Err(FitError::InvalidSetting(format!(
            "huber_delta must be positive, got {delta}"
        )));
    }
    let mut objective = HuberObjective::new(points, delta);
    objective.set_fixed_e(fixed_e.is_some());
    let optima = minimize_all(&objective, starts, &LbfgsSettings::default());
    let best = optima
        .iter()
        .find(|m| usable(&m.x, points))
        .ok_or(FitError::NoConvergence("approach 3"))?;
    Ok(Approach3Fit {
        law: ChinchillaLaw::from_theta(&best.x),
        objective: best.value,
        converged: best.converged,
        starts: starts.len(),
        optima: optima.clone(),
    })
}

/// Whether an optimum (log A, log B, log E, alpha, beta) is a law: finite parameters, positive
/// exponents, and a finite loss at every point it was fitted to (a huge alpha can drive log A past
/// what exp can hold, and A N^-alpha to inf x 0).
fn usable(theta: &[f64], points: &[Obs]) -> bool {
    if !(theta.iter().all(|v| v.is_finite()) && theta[3] > 0.0 && theta[4] > 0.0) {
        return false;
    }
    let law = ChinchillaLaw::from_theta(theta);
    points.iter().all(|p| law.loss(p.n, p.d).is_finite())
}

/// Fits approach 3 with the given settings (grid of starts, Huber delta).
pub fn fit(points: &[Obs], settings: &Approach3Settings) -> FitResult<Approach3Fit> {
    fit_from_starts(
        points,
        settings.huber_delta,
        settings.fixed_e,
        &settings.grid.points(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_optimum_whose_law_overflows_at_the_data_is_not_a_law() {
        let points: Vec<Obs> = [(1e4, 6e10, 3.0), (1e5, 6e11, 2.5)]
            .iter()
            .map(|&(n, c, loss)| Obs::from_n_c(n, c, loss))
            .collect();
        assert!(usable(&[6.0, 7.0, 0.5, 0.3, 0.3], &points));
        // log A = 800: A is inf and A N^-alpha is inf x 0 (the smoke sweep once fitted alpha 5,980).
        assert!(!usable(&[800.0, 7.0, 0.5, 5980.0, 0.3], &points));
        assert!(!usable(&[6.0, 7.0, 0.5, 0.0, 0.3], &points));
        assert!(!usable(&[6.0, f64::NAN, 0.5, 0.3, 0.3], &points));
    }

    #[test]
    fn chinchilla_printed_allocation() {
        // With the printed law, a = beta/(alpha+beta) = 0.2849/0.6241 = 0.4565.
        let law = ChinchillaLaw::hoffmann2022();
        let (a, b) = law.exponents();
        assert!((a - 0.45651).abs() < 1e-4 && (a + b - 1.0).abs() < 1e-12);
        // Hand computation: G = (0.33917*406.40/(0.28491*410.66))^(1/0.62408) = 1.1781^1.6024 = 1.3003.
        assert!((law.g() - 1.3003).abs() < 2e-3, "G = {}", law.g());
        let al = law.allocation(5.76e23);
        // N_opt = G (9.6e22)^0.45651 ; D_opt = (9.6e22)^0.54349 / G ; N D = C/6 exactly.
        let n_hand = 1.3003 * (9.6e22f64).powf(0.45651);
        assert!(
            (al.n_opt / n_hand - 1.0).abs() < 5e-3,
            "{} vs {}",
            al.n_opt,
            n_hand
        );
        assert!((al.n_opt * al.d_opt * 6.0 / 5.76e23 - 1.0).abs() < 1e-12);
    }

    #[test]
    fn the_cost_model_allocation_minimises_the_law_at_fixed_exact_compute() {
        let law = ChinchillaLaw::hoffmann2022();
        // Six N D: the closed form, exactly.
        let six = Approach3Law {
            law,
            cost: CostModel::six_nd(),
        };
        let (a, b) = (six.allocation(1e21), law.allocation(1e21));
        assert!((a.n_opt / b.n_opt - 1.0).abs() < 1e-12 && (a.d_opt / b.d_opt - 1.0).abs() < 1e-12);
        assert_eq!(six.exponents(), law.exponents());
        // c(N) = 9 N^0.85: the allocation spends C exactly and no nearby N does better.
        let bent = Approach3Law {
            law,
            cost: CostModel {
                kappa: 9.0,
                rho: 0.85,
                max_abs_log_error: 0.0,
            },
        };
        let c = 3e20;
        let al = bent.allocation(c);
        assert!((al.d_opt * 9.0 * al.n_opt.powf(0.85) / c - 1.0).abs() < 1e-12);
        let at = |n: f64| law.loss(n, c / (9.0 * n.powf(0.85)));
        for f in [0.9, 0.99, 1.01, 1.1] {
            assert!(at(al.n_opt * f) > at(al.n_opt), "factor {f}");
        }
        // Hand value of the exponent: beta / (alpha + rho beta).
        let (ea, eb) = bent.exponents();
        assert!((ea - 0.2849083 / (0.33917084 + 0.85 * 0.2849083)).abs() < 1e-12);
        assert!((eb - (1.0 - 0.85 * ea)).abs() < 1e-12);
        // And it is the local slope of N_opt(C).
        let slope = (bent.allocation(c * 1.01).n_opt / al.n_opt).ln() / 1.01f64.ln();
        assert!((slope - ea).abs() < 1e-9);
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let law = ChinchillaLaw {
            e: 1.8,
            a: 400.0,
            b: 2000.0,
            alpha: 0.34,
            beta: 0.37,
        };
        let pts: Vec<Obs> = (0..30)
            .map(|i| {
                let n = 1e7 * 1.3f64.powi(i);
                let d = 2e9 / 1.1f64.powi(i);
                Obs::from_n_d(
                    n,
                    d,
                    law.loss(n, d) * (1.0 + 0.01 * ((i * 7 % 5) as f64 - 2.0)),
                )
            })
            .collect();
        let obj = HuberObjective::new(&pts, 1e-3);
        let x = [6.1, 7.5, 0.6, 0.3, 0.4];
        let g = obj.gradient(&x);
        for k in 0..5 {
            let h = 1e-6;
            let mut xp = x;
            let mut xm = x;
            xp[k] += h;
            xm[k] -= h;
            let fd = (obj.value(&xp) - obj.value(&xm)) / (2.0 * h);
            assert!(
                (fd - g[k]).abs() < 1e-6 * (1.0 + fd.abs()),
                "coord {k}: fd {fd} vs {}",
                g[k]
            );
        }
    }
}

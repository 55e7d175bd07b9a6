//! Kaplan et al. 2020 laws: L(N) = (N_c/N)^alpha_N, L(D) = (D_c/D)^alpha_D,
//! L(N, D) = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D, and the frontier L(C_min) = (C_c/C_min)^alpha_C
//! with N_opt = N_c (C/C_c)^(alpha_C/alpha_N) (DESIGN.md).

use crate::allocation::{Allocation, ComputeOptimal};
use crate::data::{pareto_frontier, validate, Obs};
use crate::error::{FitError, FitResult};
use crate::floor::FloorPowerLaw;
use crate::optimize::{grid, minimize_all, LbfgsSettings, Objective};
use crate::regression::Line;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// FLOPs in one petaflop/s-day, Kaplan's unit of compute.
pub const PF_DAY: f64 = 8.64e19;

/// A one-variable Kaplan law L(x) = (x_c / x)^alpha.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct KaplanPower {
    /// Scale x_c.
    pub scale: f64,
    /// Exponent alpha.
    pub alpha: f64,
    /// R^2 of the log-log fit.
    pub r2: f64,
}

impl KaplanPower {
    /// Fits ln L = alpha ln x_c - alpha ln x; `None` without spread or with a non-decreasing trend.
    pub fn fit(x: &[f64], loss: &[f64]) -> Option<Self> {
        let lx: Vec<f64> = x.iter().map(|v| v.ln()).collect();
        let ll: Vec<f64> = loss.iter().map(|v| v.ln()).collect();
        let line = Line::fit(&lx, &ll)?;
        let alpha = -line.slope;
        (alpha > 0.0).then(|| KaplanPower {
            scale: (line.intercept / alpha).exp(),
            alpha,
            r2: line.r2,
        })
    }

    /// (x_c / x)^alpha.
    pub fn at(&self, x: f64) -> f64 {
        (self.scale / x).powf(self.alpha)
    }
}

/// Kaplan's joint law L(N, D).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct KaplanJoint {
    /// N_c.
    pub n_c: f64,
    /// alpha_N.
    pub alpha_n: f64,
    /// D_c.
    pub d_c: f64,
    /// alpha_D.
    pub alpha_d: f64,
}

impl KaplanJoint {
    /// The published fit (Kaplan et al. 2020, Table 2 and eq. 1.5).
    pub fn kaplan2020() -> Self {
        KaplanJoint {
            n_c: 8.8e13,
            alpha_n: 0.076,
            d_c: 5.4e13,
            alpha_d: 0.095,
        }
    }

    /// L(N, D).
    pub fn loss(&self, n: f64, d: f64) -> f64 {
        ((self.n_c / n).powf(self.alpha_n / self.alpha_d) + self.d_c / d).powf(self.alpha_d)
    }

    /// Optimum of L(N, D) under C = 6 N D: N_opt ~ C^(alpha_D / (alpha_N + alpha_D)).
    pub fn allocation(&self, c: f64) -> Allocation {
        // Minimising u + v with u = (N_c/N)^r, v = 6 D_c N / C, r = alpha_N/alpha_D gives v = r u, so
        // N^(1+r) = r N_c^r C / (6 D_c).
        let r = self.alpha_n / self.alpha_d;
        let n_opt = ((r * self.n_c.powf(r) * c / (6.0 * self.d_c)).ln() / (1.0 + r)).exp();
        let d_opt = c / (6.0 * n_opt);
        Allocation {
            c,
            n_opt,
            d_opt,
            loss: self.loss(n_opt, d_opt),
        }
    }
}

/// Squared error of ln L for the joint law, in coordinates [ln N_c, alpha_N, ln D_c, alpha_D].
struct JointObjective {
    ln_n: Vec<f64>,
    ln_d: Vec<f64>,
    ln_l: Vec<f64>,
}

impl JointObjective {
    fn eval(&self, x: &[f64], grad: Option<&mut [f64; 4]>) -> f64 {
        let (lnc, an, ldc, ad) = (x[0], x[1], x[2], x[3]);
        let r = an / ad;
        let mut total = 0.0;
        let mut g = [0.0; 4];
        for i in 0..self.ln_n.len() {
            let lu = r * (lnc - self.ln_n[i]);
            let lv = ldc - self.ln_d[i];
            let m = lu.max(lv);
            let (eu, ev) = ((lu - m).exp(), (lv - m).exp());
            let s = eu + ev;
            let ln_s = m + s.ln();
            let res = ad * ln_s - self.ln_l[i];
            total += res * res;
            let (wu, wv) = (eu / s, ev / s);
            let k = 2.0 * res;
            g[0] += k * an * wu;
            g[1] += k * wu * (lnc - self.ln_n[i]);
            g[2] += k * ad * wv;
            g[3] += k * (ln_s - wu * r * (lnc - self.ln_n[i]));
        }
        if let Some(out) = grad {
            *out = g;
        }
        total
    }
}

impl Objective for JointObjective {
    fn value(&self, x: &[f64]) -> f64 {
        self.eval(x, None)
    }
    fn value_gradient(&self, x: &[f64]) -> (f64, Vec<f64>) {
        let mut g = [0.0; 4];
        let v = self.eval(x, Some(&mut g));
        (v, g.to_vec())
    }
}

impl KaplanJoint {
    /// The optimiser's coordinates [ln N_c, alpha_N, ln D_c, alpha_D].
    pub fn theta(&self) -> Vec<f64> {
        vec![self.n_c.ln(), self.alpha_n, self.d_c.ln(), self.alpha_d]
    }
}

/// The default starts of the joint fit: a grid over [ln N_c, alpha_N, ln D_c, alpha_D] (256 starts).
pub fn joint_grid() -> Vec<Vec<f64>> {
    grid(&[
        vec![10.0, 20.0, 30.0, 40.0],
        vec![0.03, 0.1, 0.3, 0.6],
        vec![10.0, 20.0, 30.0, 40.0],
        vec![0.03, 0.1, 0.3, 0.6],
    ])
}

/// Fits the joint law by least squares on ln L from the default grid of starts.
pub fn fit_joint(points: &[Obs]) -> FitResult<KaplanJoint> {
    fit_joint_from(points, &joint_grid())
}

/// Fits the joint law by least squares on ln L from the given starts.
pub fn fit_joint_from(points: &[Obs], starts: &[Vec<f64>]) -> FitResult<KaplanJoint> {
    validate(points, "Kaplan L(N, D)", 4)?;
    let obj = JointObjective {
        ln_n: points.iter().map(|p| p.n.ln()).collect(),
        ln_d: points.iter().map(|p| p.d.ln()).collect(),
        ln_l: points.iter().map(|p| p.loss.ln()).collect(),
    };
    minimize_all(&obj, starts, &LbfgsSettings::default())
        .into_iter()
        .find(|m| m.x[1] > 0.0 && m.x[3] > 0.0)
        .map(|m| KaplanJoint {
            n_c: m.x[0].exp(),
            alpha_n: m.x[1],
            d_c: m.x[2].exp(),
            alpha_d: m.x[3],
        })
        .ok_or(FitError::NoConvergence("Kaplan L(N, D)"))
}

/// All Kaplan laws fitted on one table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KaplanFit {
    /// L(N) through the best loss of each size.
    pub l_of_n: KaplanPower,
    /// L(D) through the best loss at each token count.
    pub l_of_d: KaplanPower,
    /// The joint law.
    pub joint: KaplanJoint,
    /// L(C_min) through the (C, loss) Pareto frontier, Kaplan's pure power law: its alpha_C gives
    /// the allocation exponent alpha_C / alpha_N.
    pub l_of_c: KaplanPower,
    /// L(C_min) = E + k C^-g through the same frontier: the predicted loss, which cannot fall below E.
    pub l_of_c_floor: FloorPowerLaw,
    /// Number of frontier points used for L(C_min).
    pub frontier_points: usize,
}

impl KaplanFit {
    /// C_c in PF-days.
    pub fn c_c_pf_days(&self) -> f64 {
        self.l_of_c.scale / PF_DAY
    }
}

impl ComputeOptimal for KaplanFit {
    fn approach(&self) -> &'static str {
        "kaplan"
    }
    /// N_opt = N_c (C/C_c)^(alpha_C/alpha_N), D_opt = C/(6 N_opt), loss = E + k C^-g.
    fn allocation(&self, c: f64) -> Allocation {
        let n_opt =
            self.l_of_n.scale * (c / self.l_of_c.scale).powf(self.l_of_c.alpha / self.l_of_n.alpha);
        Allocation {
            c,
            n_opt,
            d_opt: c / (6.0 * n_opt),
            loss: self.l_of_c_floor.at(c),
        }
    }
    fn exponents(&self) -> (f64, f64) {
        let a = self.l_of_c.alpha / self.l_of_n.alpha;
        (a, 1.0 - a)
    }
    fn parameters(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("N_c", self.l_of_n.scale),
            ("alpha_N", self.l_of_n.alpha),
            ("D_c", self.l_of_d.scale),
            ("alpha_D", self.l_of_d.alpha),
            ("C_c", self.l_of_c.scale),
            ("alpha_C", self.l_of_c.alpha),
            ("loss_floor", self.l_of_c_floor.floor),
            ("loss_exponent", -self.l_of_c_floor.exponent),
            ("loss_coefficient", self.l_of_c_floor.coefficient),
            ("joint_N_c", self.joint.n_c),
            ("joint_alpha_N", self.joint.alpha_n),
            ("joint_D_c", self.joint.d_c),
            ("joint_alpha_D", self.joint.alpha_d),
        ]
    }
    fn predict_loss(&self, n: f64, d: f64) -> Option<f64> {
        Some(self.joint.loss(n, d))
    }
}

/// Kaplan et al. 2020's published compute-efficient frontier (REFERENCES.md): N_opt = 1.3e9
/// C^0.73, D_opt = 2e10 C^0.27 and L = (3.1e8 / C)^0.050, with C = C_min in PF-days and N the
/// non-embedding parameters. A reference line for plots, not a fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kaplan2020Frontier;

impl ComputeOptimal for Kaplan2020Frontier {
    fn approach(&self) -> &'static str {
        "kaplan2020"
    }
    fn allocation(&self, c: f64) -> Allocation {
        let pf = c / PF_DAY;
        Allocation {
            c,
            n_opt: 1.3e9 * pf.powf(0.73),
            d_opt: 2e10 * pf.powf(0.27),
            loss: (3.1e8 / pf).powf(0.050),
        }
    }
    fn exponents(&self) -> (f64, f64) {
        (0.73, 0.27)
    }
    fn parameters(&self) -> Vec<(&'static str, f64)> {
        vec![("C_c_pf_days", 3.1e8), ("alpha_C", 0.050)]
    }
}

/// Best (lowest) loss for each distinct value of `key` (values within 1e-6 relative share a bucket).
pub fn best_per(points: &[Obs], key: fn(&Obs) -> f64) -> (Vec<f64>, Vec<f64>) {
    let mut best: BTreeMap<i64, (f64, f64)> = BTreeMap::new();
    for p in points {
        let k = (key(p).ln() * 1e6).round() as i64;
        let e = best.entry(k).or_insert((key(p), f64::INFINITY));
        e.1 = e.1.min(p.loss);
    }
    best.values().copied().unzip()
}

/// Fits every Kaplan law on a table; `fixed_e` holds the floor of the loss frontier (fitted when
/// `None` and the frontier has 4 points, else held at 0).
pub fn fit(points: &[Obs], fixed_e: Option<f64>) -> FitResult<KaplanFit> {
    fit_from(points, &joint_grid(), fixed_e)
}

/// Fits every Kaplan law, starting the joint fit from `joint_starts` (bootstrap refits start from the
/// full-data optimum).
pub fn fit_from(
    points: &[Obs],
    joint_starts: &[Vec<f64>],
    fixed_e: Option<f64>,
) -> FitResult<KaplanFit> {
    validate(points, "Kaplan", 4)?;
    let power = |what: &str, x: &[f64], l: &[f64]| {
        KaplanPower::fit(x, l).ok_or_else(|| {
            FitError::NotFittable(format!(
                "Kaplan {what}: the best loss does not fall as a power law over {} distinct values \
                 (L(N) needs models trained to large D, L(D) large models: see sweeps/kaplan.yaml)",
                x.len()
            ))
        })
    };
    let (ns, ln) = best_per(points, |p| p.n);
    let l_of_n = power("L(N)", &ns, &ln)?;
    let (ds, ld) = best_per(points, |p| p.d);
    let l_of_d = power("L(D)", &ds, &ld)?;
    let frontier = pareto_frontier(points);
    let cs: Vec<f64> = frontier.iter().map(|p| p.c).collect();
    let lc: Vec<f64> = frontier.iter().map(|p| p.loss).collect();
    let l_of_c = power("L(C_min)", &cs, &lc)?;
    let floor = fixed_e.or((cs.len() < 4).then_some(0.0));
    let l_of_c_floor = FloorPowerLaw::fit(&cs, &lc, floor)
        .map_err(|why| FitError::NotFittable(format!("Kaplan L(C_min) with a floor: {why}")))?;
    let joint = fit_joint_from(points, joint_starts)?;
    Ok(KaplanFit {
        l_of_n,
        l_of_d,
        joint,
        l_of_c,
        l_of_c_floor,
        frontier_points: frontier.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_joint_law_at_large_d_reduces_to_l_of_n() {
        let k = KaplanJoint::kaplan2020();
        // L(N, D -> inf) = (N_c/N)^alpha_N: for N = 1e9, (8.8e4)^0.076 = exp(0.076 * 11.385) = 2.376.
        assert!(
            (k.loss(1e9, 1e30) - 2.3758).abs() < 1e-3,
            "{}",
            k.loss(1e9, 1e30)
        );
    }

    #[test]
    fn published_frontier_at_one_pf_day() {
        let a = Kaplan2020Frontier.allocation(PF_DAY);
        assert!((a.n_opt - 1.3e9).abs() < 1.0 && (a.d_opt - 2e10).abs() < 1.0);
        // Ten times the compute: N grows 10^0.73 = 5.37x.
        let b = Kaplan2020Frontier.allocation(10.0 * PF_DAY);
        assert!((b.n_opt / a.n_opt - 5.3703).abs() < 1e-3);
    }

    #[test]
    fn joint_allocation_is_stationary() {
        let k = KaplanJoint::kaplan2020();
        let c = 1e21;
        let al = k.allocation(c);
        let at = |n: f64| k.loss(n, c / (6.0 * n));
        assert!(at(al.n_opt) <= at(al.n_opt * 1.01) && at(al.n_opt) <= at(al.n_opt / 1.01));
        // Exponent alpha_D/(alpha_N+alpha_D) = 0.095/0.171.
        let a = (k.allocation(1e23).n_opt / al.n_opt).ln() / 100f64.ln();
        assert!((a - 0.095 / 0.171).abs() < 1e-9);
    }

    #[test]
    fn recovers_joint_law_from_exact_points() {
        let truth = KaplanJoint {
            n_c: 1e9,
            alpha_n: 0.2,
            d_c: 5e10,
            alpha_d: 0.25,
        };
        let mut pts = Vec::new();
        for i in 0..6 {
            for j in 0..6 {
                let (n, d) = (1e5 * 3f64.powi(i), 1e7 * 3f64.powi(j));
                pts.push(Obs::from_n_d(n, d, truth.loss(n, d)));
            }
        }
        let j = fit_joint(&pts).unwrap();
        assert!(
            (j.alpha_n - 0.2).abs() < 1e-4 && (j.alpha_d - 0.25).abs() < 1e-4,
            "{j:?}"
        );
        assert!(
            (j.n_c / 1e9 - 1.0).abs() < 1e-2 && (j.d_c / 5e10 - 1.0).abs() < 1e-2,
            "{j:?}"
        );
        let f = fit(&pts, None).unwrap();
        assert!(f.l_of_n.alpha > 0.0 && f.l_of_c.alpha > 0.0);
    }
}

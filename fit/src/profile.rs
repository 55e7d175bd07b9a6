//! Profile-likelihood intervals of approach 3's exponents: alpha, beta and the compute-optimal
//! a = beta / (alpha + rho beta).
//!
//! The bootstrap shows how the optimum moves when points are redrawn; it cannot show a direction in
//! which the objective is flat if every replicate lands on the same optimum. The profile does: for
//! each value of the held quantity it minimises the least-squares objective of ln L over the other
//! parameters (for a, beta tied to alpha), and the interval is where the residual sum of squares
//! stays below S_min (1 + F(1, n - p) / (n - p)) (Bates & Watts 1988, the profile t statistic).
//! Least squares rather than approach 3's Huber objective, because its threshold has a likelihood
//! meaning (Gaussian errors on ln L); the profile's centre is the least-squares optimum.

use crate::approach3::HuberObjective;
use crate::bootstrap::Estimate;
use crate::data::Obs;
use crate::optimize::{minimize, LbfgsSettings, Objective};
use serde::{Deserialize, Serialize};

/// How close to the ends of the held quantity's range the profile goes.
const EDGE: f64 = 0.005;

/// The quantity held along a profile.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Held {
    /// The compute-optimal exponent a = beta / (alpha + rho beta), with the data's rho.
    A {
        /// Exponent of the compute per token against N.
        rho: f64,
    },
    /// The model-size exponent.
    Alpha,
    /// The data exponent.
    Beta,
}

impl Held {
    /// Name of the held quantity, as in the report's parameters ("a", "alpha", "beta").
    pub fn name(self) -> &'static str {
        match self {
            Held::A { .. } => "a",
            Held::Alpha => "alpha",
            Held::Beta => "beta",
        }
    }

    /// Its value at the parameters [log A, log B, log E, alpha, beta].
    fn at(self, t: &[f64]) -> f64 {
        match self {
            Held::A { rho } => t[4] / (t[3] + rho * t[4]),
            Held::Alpha => t[3],
            Held::Beta => t[4],
        }
    }

    /// The range it can take (a: 0 to 1/rho; alpha, beta: 0 to the plausible maximum).
    fn range(self) -> f64 {
        match self {
            Held::A { rho } => 1.0 / rho,
            Held::Alpha | Held::Beta => crate::approach3::MAX_EXPONENT,
        }
    }

    /// Step along the profile: a hundredth of a for a, a fiftieth for alpha and beta.
    fn step(self) -> f64 {
        match self {
            Held::A { .. } => 0.01,
            Held::Alpha | Held::Beta => 0.02,
        }
    }

    /// The four free coordinates of the parameters.
    fn free(self, t: &[f64]) -> Vec<f64> {
        match self {
            Held::A { .. } | Held::Beta => t[..4].to_vec(),
            Held::Alpha => vec![t[0], t[1], t[2], t[4]],
        }
    }

    /// beta / alpha when a is held at `v`.
    fn ratio(rho: f64, v: f64) -> f64 {
        v / (1.0 - rho * v)
    }
}

/// The profile of one quantity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// What was held.
    pub held: Held,
    /// The least-squares optimum with the profile interval.
    pub estimate: Estimate,
    /// Residual sum of squares of ln L at the optimum.
    pub rss_min: f64,
    /// The profile's threshold on the residual sum of squares.
    pub rss_threshold: f64,
    /// Whether the interval stopped at the end of the quantity's range before the threshold: the
    /// data do not bound it on that side.
    pub open_below: bool,
    /// As `open_below`, above.
    pub open_above: bool,
    /// (value, RSS) along the profile, sorted by value.
    pub path: Vec<[f64; 2]>,
}

/// The least-squares objective with the held quantity at `value`, over the four free coordinates.
struct Constrained<'a> {
    inner: &'a HuberObjective,
    held: Held,
    value: f64,
}

impl Constrained<'_> {
    fn full(&self, x: &[f64]) -> [f64; 5] {
        match self.held {
            Held::A { rho } => [x[0], x[1], x[2], x[3], Held::ratio(rho, self.value) * x[3]],
            Held::Alpha => [x[0], x[1], x[2], self.value, x[3]],
            Held::Beta => [x[0], x[1], x[2], x[3], self.value],
        }
    }
}

impl Objective for Constrained<'_> {
    fn value(&self, x: &[f64]) -> f64 {
        self.inner.value(&self.full(x))
    }
    fn value_gradient(&self, x: &[f64]) -> (f64, Vec<f64>) {
        let (v, g) = self.inner.value_gradient(&self.full(x));
        let g = match self.held {
            Held::A { rho } => vec![g[0], g[1], g[2], g[3] + Held::ratio(rho, self.value) * g[4]],
            Held::Alpha => vec![g[0], g[1], g[2], g[4]],
            Held::Beta => vec![g[0], g[1], g[2], g[3]],
        };
        (v, g)
    }
}

/// The standard normal quantile (Acklam's rational approximation, relative error below 1.2e-9).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.38357751867269e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996,
        3.754408661907416,
    ];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// Student's t quantile with `df` degrees of freedom (Cornish-Fisher expansion about the normal,
/// Abramowitz & Stegun 26.7.5; within 0.3% of tables for df >= 3).
pub fn t_quantile(p: f64, df: f64) -> f64 {
    let z = normal_quantile(p);
    let (z3, z5, z7) = (z.powi(3), z.powi(5), z.powi(7));
    z + (z3 + z) / (4.0 * df)
        + (5.0 * z5 + 16.0 * z3 + 3.0 * z) / (96.0 * df * df)
        + (3.0 * z7 + 19.0 * z5 + 17.0 * z3 - 15.0 * z) / (384.0 * df.powi(3))
}

/// Profiles `held` from the approach-3 optimum `theta` ([log A, log B, log E, alpha, beta]); E stays
/// where `theta` has it when `fixed_e`. `None` when the least-squares fit fails, lands outside the
/// held quantity's range, or leaves no degrees of freedom.
pub fn profile(
    points: &[Obs],
    theta: &[f64],
    fixed_e: bool,
    held: Held,
    level: f64,
) -> Option<Profile> {
    let p = if fixed_e { 4 } else { 5 };
    let dof = points.len().checked_sub(p).filter(|&d| d >= 1)? as f64;
    let mut ls = HuberObjective::new(points, f64::INFINITY);
    ls.set_fixed_e(fixed_e);
    let settings = LbfgsSettings::default();
    let best = minimize(&ls, theta, &settings)?;
    // The objective is half the residual sum of squares.
    let rss_min = 2.0 * best.value;
    let centre = held.at(&best.x);
    let top = held.range();
    if !(centre.is_finite() && centre > 0.0 && centre < top) {
        return None;
    }
    let t = t_quantile(0.5 + level / 2.0, dof);
    let rss_threshold = rss_min * (1.0 + t * t / dof);
    let profiled = |value: f64, from: &[Vec<f64>]| -> Option<(f64, Vec<f64>)> {
        let c = Constrained {
            inner: &ls,
            held,
            value,
        };
        from.iter()
            .filter_map(|s| minimize(&c, s, &settings))
            .min_by(|x, y| x.value.total_cmp(&y.value))
            .map(|m| (2.0 * m.value, m.x))
    };
    let start = held.free(&best.x);
    let step = held.step();
    let mut path = vec![[centre, rss_min]];
    let mut bound = |dir: f64| -> (f64, bool) {
        let end = if dir < 0.0 { 0.0 } else { top };
        let mut prev = (centre, rss_min, start.clone());
        loop {
            let v = prev.0 + dir * step;
            if v <= EDGE || v >= top - EDGE {
                return (end, true);
            }
            let Some((rss, x)) = profiled(v, &[prev.2.clone(), start.clone()]) else {
                return (end, true);
            };
            path.push([v, rss]);
            if rss > rss_threshold {
                // Linear interpolation of the crossing between the last two steps.
                let f = (rss_threshold - prev.1) / (rss - prev.1);
                return (prev.0 + dir * step * f.clamp(0.0, 1.0), false);
            }
            prev = (v, rss, x);
        }
    };
    let (lo, open_below) = bound(-1.0);
    let (hi, open_above) = bound(1.0);
    path.sort_by(|x, y| x[0].total_cmp(&y[0]));
    Some(Profile {
        held,
        estimate: Estimate {
            value: centre,
            lo,
            hi,
        },
        rss_min,
        rss_threshold,
        open_below,
        open_above,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::approach3::ChinchillaLaw;

    #[test]
    fn quantiles_match_tables() {
        assert!((normal_quantile(0.975) - 1.959964).abs() < 1e-6);
        assert!((normal_quantile(0.025) + 1.959964).abs() < 1e-6);
        assert!((normal_quantile(0.995) - 2.575829).abs() < 1e-6);
        // t tables: t(0.975; 5) = 2.570582, t(0.975; 10) = 2.228139, t(0.975; 30) = 2.042272.
        assert!((t_quantile(0.975, 5.0) / 2.570582 - 1.0).abs() < 3e-3);
        assert!((t_quantile(0.975, 10.0) / 2.228139 - 1.0).abs() < 5e-4);
        assert!((t_quantile(0.975, 30.0) / 2.042272 - 1.0).abs() < 1e-4);
    }

    fn law() -> ChinchillaLaw {
        ChinchillaLaw {
            e: 1.5,
            a: 40.0,
            b: 400.0,
            alpha: 0.4,
            beta: 0.4,
        }
    }

    fn theta(l: &ChinchillaLaw) -> Vec<f64> {
        vec![l.a.ln(), l.b.ln(), l.e.ln(), l.alpha, l.beta]
    }

    /// Deterministic +-1% multiplicative noise.
    fn noisy(n: f64, d: f64, i: usize) -> Obs {
        let wiggle = [0.01, -0.007, 0.004, -0.01, 0.0, 0.008, -0.003];
        Obs::from_n_d(n, d, law().loss(n, d) * (1.0 + wiggle[i % wiggle.len()]))
    }

    #[test]
    fn an_isoflop_design_bounds_the_exponents_around_the_truth() {
        let mut pts = Vec::new();
        for c in [1e12, 1e13, 1e14, 1e15] {
            for k in 0..6 {
                let n = (c / 120.0f64).sqrt() * 2f64.powf(k as f64 - 2.5);
                pts.push(noisy(n, c / (6.0 * n), pts.len()));
            }
        }
        let p = profile(&pts, &theta(&law()), false, Held::A { rho: 1.0 }, 0.95).unwrap();
        assert!(!p.open_below && !p.open_above, "{p:?}");
        let a = p.estimate;
        assert!(a.contains(0.5) && a.hi - a.lo < 0.3, "{a:?}");
        for held in [Held::Alpha, Held::Beta] {
            let p = profile(&pts, &theta(&law()), false, held, 0.95).unwrap();
            assert!(
                !p.open_below && !p.open_above && p.estimate.contains(0.4),
                "{p:?}"
            );
        }
        // The path is a valley: RSS at its ends exceeds the minimum.
        assert!(p.path.first().unwrap()[1] > p.rss_min && p.path.last().unwrap()[1] > p.rss_min);
    }

    #[test]
    fn one_token_count_leaves_a_and_beta_unbounded() {
        let pts: Vec<Obs> = (0..12)
            .map(|i| noisy(1e4 * 1.5f64.powi(i), 4e6, i as usize))
            .collect();
        let p = profile(&pts, &theta(&law()), false, Held::A { rho: 1.0 }, 0.95).unwrap();
        assert!(p.open_below || p.open_above, "{p:?}");
        assert!(p.estimate.hi - p.estimate.lo > 0.5, "{:?}", p.estimate);
        // N varies, so alpha is pinned down; D does not, so beta is free.
        let alpha = profile(&pts, &theta(&law()), false, Held::Alpha, 0.95).unwrap();
        assert!(!alpha.open_below && !alpha.open_above, "{alpha:?}");
        let beta = profile(&pts, &theta(&law()), false, Held::Beta, 0.95).unwrap();
        assert!(beta.open_below || beta.open_above, "{beta:?}");
    }
}

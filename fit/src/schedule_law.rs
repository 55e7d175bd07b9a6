//! The schedule-aware loss-curve law of Tissue et al. 2024 ("Scaling Law with Learning Rate
//! Annealing"): the validation loss after step s of a run with learning rates eta_1..eta_s is
//!
//! L(s) = L0 + A S1^-alpha - C S2,
//!
//! with S1 = sum_{i<=s} eta_i (the forward area under the LR curve) and S2 = sum_{i<=s} m_i, where
//! m_i = lambda m_{i-1} + (eta_{i-1} - eta_i) accumulates the LR decreases with momentum lambda
//! (about 0.999; the annealing area). Increases of the rate (warmup) do not enter S2. Fitted on
//! one or two curves, it predicts the curve of any other schedule of the same model.
//!
//! For a fixed alpha the law is linear in (L0, A, C), so the fit is an exact linear least-squares
//! solve inside a one-dimensional search over alpha (a log-spaced grid, then golden-section
//! refinement): no starting values, no local minima in the linear part.

use crate::bootstrap::Estimate;
use crate::error::{FitError, FitResult};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Tissue et al.'s momentum of the annealing area.
pub const LAMBDA: f64 = 0.999;

/// The two areas of a schedule after some step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Areas {
    /// Forward area: the sum of the learning rates so far.
    pub s1: f64,
    /// Annealing area: the sum of the momentum of LR decreases so far.
    pub s2: f64,
}

/// The areas after every step of a schedule (`lrs[i]` is the rate of step i + 1).
pub fn areas(lrs: &[f64], lambda: f64) -> Vec<Areas> {
    let (mut s1, mut s2, mut m) = (0.0, 0.0, 0.0);
    let mut prev = lrs.first().copied().unwrap_or(0.0);
    lrs.iter()
        .map(|&eta| {
            s1 += eta;
            m = lambda * m + (prev - eta).max(0.0);
            s2 += m;
            prev = eta;
            Areas { s1, s2 }
        })
        .collect()
}

/// One observed point of a curve: the areas at its step and the loss there.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    /// The schedule's areas at the evaluated step.
    pub areas: Areas,
    /// Validation loss there.
    pub loss: f64,
}

/// The fitted law.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScheduleLaw {
    /// The loss the forward term decays to.
    pub l0: f64,
    /// Scale of the forward term.
    pub a: f64,
    /// Exponent of the forward area.
    pub alpha: f64,
    /// Loss removed per unit of annealing area.
    pub c: f64,
}

impl ScheduleLaw {
    /// The predicted loss at `areas`.
    pub fn at(&self, areas: Areas) -> f64 {
        self.l0 + self.a * areas.s1.powf(-self.alpha) - self.c * areas.s2
    }
}

/// A fit with its quality and (when bootstrapped) intervals.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScheduleFit {
    /// The law fitted on every point.
    pub law: ScheduleLaw,
    /// Root mean square of the relative residuals (predicted / observed - 1).
    pub rms_rel_error: f64,
    /// Points fitted.
    pub points: usize,
    /// L0, A, alpha and C with percentile intervals (NaN bounds without bootstrap).
    pub l0: Estimate,
    /// A.
    pub a: Estimate,
    /// alpha.
    pub alpha: Estimate,
    /// C.
    pub c: Estimate,
    /// The bootstrap replicates' laws, for intervals of predictions.
    #[serde(skip)]
    pub replicates: Vec<ScheduleLaw>,
}

/// Solves the 3x3 system `m x = v` by Gaussian elimination with partial pivoting.
fn solve3(mut m: [[f64; 3]; 3], mut v: [f64; 3]) -> Option<[f64; 3]> {
    for col in 0..3 {
        let pivot = (col..3).max_by(|&i, &j| m[i][col].abs().total_cmp(&m[j][col].abs()))?;
        if m[pivot][col].abs() < 1e-300 {
            return None;
        }
        m.swap(col, pivot);
        v.swap(col, pivot);
        let pivot_row = m[col];
        for row in col + 1..3 {
            let f = m[row][col] / pivot_row[col];
            for (a, b) in m[row][col..].iter_mut().zip(&pivot_row[col..]) {
                *a -= f * b;
            }
            v[row] -= f * v[col];
        }
    }
    let mut x = [0.0; 3];
    for row in (0..3).rev() {
        let tail: f64 = (row + 1..3).map(|k| m[row][k] * x[k]).sum();
        x[row] = (v[row] - tail) / m[row][row];
    }
    x.iter().all(|x| x.is_finite()).then_some(x)
}

/// The least-squares (L0, A, C) for a fixed alpha and the sum of squared residuals. Columns are
/// scaled to unit size first, so S1^-alpha of 1e-3 and S2 of 1e2 are solved equally well.
fn solve_linear(points: &[CurvePoint], alpha: f64) -> Option<(ScheduleLaw, f64)> {
    let rows: Vec<[f64; 3]> = points
        .iter()
        .map(|p| [1.0, p.areas.s1.powf(-alpha), -p.areas.s2])
        .collect();
    let scale: Vec<f64> = (0..3)
        .map(|k| {
            rows.iter()
                .map(|r| r[k].abs())
                .fold(0.0, f64::max)
                .max(1e-300)
        })
        .collect();
    let mut m = [[0.0; 3]; 3];
    let mut v = [0.0; 3];
    for (r, p) in rows.iter().zip(points) {
        let x = [r[0] / scale[0], r[1] / scale[1], r[2] / scale[2]];
        for i in 0..3 {
            for j in 0..3 {
                m[i][j] += x[i] * x[j];
            }
            v[i] += x[i] * p.loss;
        }
    }
    // An annealing column of zeros (constant-LR curves) leaves C undetermined: fit it as 0.
    let has_anneal = rows.iter().any(|r| r[2] != 0.0);
    if !has_anneal {
        m[2] = [0.0, 0.0, 1.0];
        m[0][2] = 0.0;
        m[1][2] = 0.0;
        v[2] = 0.0;
    }
    let x = solve3(m, v)?;
    let law = ScheduleLaw {
        l0: x[0] / scale[0],
        a: x[1] / scale[1],
        alpha,
        c: x[2] / scale[2],
    };
    let sse = points
        .iter()
        .map(|p| (law.at(p.areas) - p.loss).powi(2))
        .sum();
    Some((law, sse))
}

/// The least-squares law on `points`: alpha searched on (0.01, 3).
fn fit_law(points: &[CurvePoint]) -> Option<ScheduleLaw> {
    let sse = |alpha: f64| solve_linear(points, alpha).map_or(f64::INFINITY, |(_, s)| s);
    let grid: Vec<f64> = (0..=80)
        .map(|i| (0.01f64.ln() + (3.0f64.ln() - 0.01f64.ln()) * i as f64 / 80.0).exp())
        .collect();
    let best = (0..grid.len()).min_by(|&i, &j| sse(grid[i]).total_cmp(&sse(grid[j])))?;
    let (mut lo, mut hi) = (
        grid[best.saturating_sub(1)].ln(),
        grid[(best + 1).min(grid.len() - 1)].ln(),
    );
    let g = (5f64.sqrt() - 1.0) / 2.0;
    for _ in 0..60 {
        let (x1, x2) = (hi - g * (hi - lo), lo + g * (hi - lo));
        if sse(x1.exp()) <= sse(x2.exp()) {
            hi = x2;
        } else {
            lo = x1;
        }
    }
    solve_linear(points, ((lo + hi) / 2.0).exp()).map(|(law, _)| law)
}

/// Fits the law on `points` (one or more curves), with percentile intervals from `replicates`
/// bootstrap resamples of the points (none when 0), deterministic for `seed`.
pub fn fit(
    points: &[CurvePoint],
    replicates: usize,
    level: f64,
    seed: u64,
) -> FitResult<ScheduleFit> {
    if points.len() < 6 {
        return Err(FitError::TooFewPoints {
            law: "schedule-aware law",
            needed: 6,
            got: points.len(),
        });
    }
    if let Some(p) = points
        .iter()
        .find(|p| !(p.areas.s1 > 0.0 && p.areas.s2 >= 0.0 && p.loss.is_finite()))
    {
        return Err(FitError::NotFittable(format!(
            "schedule-aware law: a point with S1 {} S2 {} loss {} (S1 must be positive, the loss finite)",
            p.areas.s1, p.areas.s2, p.loss
        )));
    }
    let law = fit_law(points).ok_or_else(|| {
        FitError::NotFittable(
            "schedule-aware law: the least-squares system is singular (every point at one step?)"
                .into(),
        )
    })?;
    let rms_rel_error = (points
        .iter()
        .map(|p| (law.at(p.areas) / p.loss - 1.0).powi(2))
        .sum::<f64>()
        / points.len() as f64)
        .sqrt();
    let laws: Vec<ScheduleLaw> = (0..replicates)
        .into_par_iter()
        .filter_map(|r| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (r as u64).wrapping_mul(0x9E37_79B9));
            let sample: Vec<CurvePoint> = (0..points.len())
                .map(|_| points[rng.random_range(0..points.len())])
                .collect();
            fit_law(&sample)
        })
        .collect();
    let est = |f: fn(&ScheduleLaw) -> f64| {
        let samples: Vec<f64> = laws.iter().map(f).collect();
        Estimate::from_samples(f(&law), &samples, level)
    };
    Ok(ScheduleFit {
        law,
        rms_rel_error,
        points: points.len(),
        l0: est(|l| l.l0),
        a: est(|l| l.a),
        alpha: est(|l| l.alpha),
        c: est(|l| l.c),
        replicates: laws,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Warmup 10 steps, constant to `cool_from`, then a linear cooldown to 10% over the rest.
    fn wsd(total: usize, cool_from: usize) -> Vec<f64> {
        (0..total)
            .map(|i| {
                if i < 10 {
                    0.01 * (i + 1) as f64 / 10.0
                } else if i < cool_from {
                    0.01
                } else {
                    let p = (i + 1 - cool_from) as f64 / (total - cool_from) as f64;
                    0.01 * (1.0 - 0.9 * p)
                }
            })
            .collect()
    }

    fn cosine(total: usize) -> Vec<f64> {
        (0..total)
            .map(|i| {
                let p = i as f64 / (total - 1) as f64;
                0.001 + 0.0045 * (1.0 + (std::f64::consts::PI * p).cos())
            })
            .collect()
    }

    const TRUE: ScheduleLaw = ScheduleLaw {
        l0: 1.5,
        a: 0.8,
        alpha: 0.45,
        c: 0.03,
    };

    fn curve(lrs: &[f64], every: usize) -> Vec<CurvePoint> {
        areas(lrs, LAMBDA)
            .into_iter()
            .enumerate()
            .filter(|(i, _)| (i + 1) % every == 0)
            .map(|(_, a)| CurvePoint {
                areas: a,
                loss: TRUE.at(a),
            })
            .collect()
    }

    #[test]
    fn areas_by_hand() {
        // Rates 1, 1, 0.5, 0.5 with lambda 0.5: m = 0, 0, 0.5, 0.25; S2 = 0, 0, 0.5, 0.75.
        let a = areas(&[1.0, 1.0, 0.5, 0.5], 0.5);
        let s1: Vec<f64> = a.iter().map(|x| x.s1).collect();
        let s2: Vec<f64> = a.iter().map(|x| x.s2).collect();
        assert_eq!(s1, vec![1.0, 2.0, 2.5, 3.0]);
        assert_eq!(s2, vec![0.0, 0.0, 0.5, 0.75]);
        // Warmup (rising rates) adds nothing to S2.
        assert!(areas(&[0.1, 0.2, 0.3], LAMBDA).iter().all(|x| x.s2 == 0.0));
    }

    #[test]
    fn recovers_a_noise_free_law_and_predicts_another_schedule() {
        let pts = curve(&wsd(2000, 1600), 20);
        let f = fit(&pts, 0, 0.95, 0).unwrap();
        assert!((f.law.alpha - TRUE.alpha).abs() < 1e-6, "{:?}", f.law);
        assert!((f.law.l0 - TRUE.l0).abs() < 1e-6, "{:?}", f.law);
        assert!((f.law.c - TRUE.c).abs() < 1e-6, "{:?}", f.law);
        assert!(f.rms_rel_error < 1e-9);
        // The cosine curve it never saw.
        for p in curve(&cosine(3000), 50) {
            assert!((f.law.at(p.areas) / p.loss - 1.0).abs() < 1e-6);
        }
    }

    #[test]
    fn noisy_curves_give_intervals_that_cover_the_truth() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let pts: Vec<CurvePoint> = curve(&wsd(2000, 1600), 10)
            .into_iter()
            .map(|p| CurvePoint {
                loss: p.loss * (1.0 + 0.002 * (rng.random::<f64>() - 0.5)),
                ..p
            })
            .collect();
        let f = fit(&pts, 200, 0.95, 1).unwrap();
        assert!(
            f.alpha.lo <= TRUE.alpha && TRUE.alpha <= f.alpha.hi,
            "{:?}",
            f.alpha
        );
        assert!(f.c.lo <= TRUE.c && TRUE.c <= f.c.hi, "{:?}", f.c);
        assert!(f.alpha.hi - f.alpha.lo < 0.2, "{:?}", f.alpha);
        assert_eq!(f.replicates.len(), 200);
    }

    #[test]
    fn too_few_or_bad_points_are_refused() {
        let pts = curve(&wsd(200, 160), 40);
        assert!(matches!(
            fit(&pts, 0, 0.95, 0),
            Err(FitError::TooFewPoints { .. })
        ));
        let mut bad = curve(&wsd(2000, 1600), 20);
        bad[3].loss = f64::NAN;
        assert!(fit(&bad, 0, 0.95, 0).is_err());
    }
}

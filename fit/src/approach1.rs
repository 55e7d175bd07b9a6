//! Chinchilla approach 1: the lower envelope of all training curves in (C, loss). At each of a grid of
//! compute values the run on the envelope gives N_opt(C) and D_opt(C); power laws are fitted through them.

use crate::allocation::{Allocation, ComputeOptimal};
use crate::data::{validate, Obs};
use crate::error::{FitError, FitResult};
use crate::floor::FloorPowerLaw;
use crate::regression::PowerLaw;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Settings of an approach-1 fit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Approach1Settings {
    /// Number of log-spaced compute values at which the envelope is read (Chinchilla used 1,500).
    pub grid_points: usize,
    /// The loss frontier's floor E: held at this value, or fitted when `None`.
    #[serde(default)]
    pub fixed_e: Option<f64>,
}

impl Default for Approach1Settings {
    fn default() -> Self {
        Approach1Settings {
            grid_points: 1500,
            fixed_e: None,
        }
    }
}

/// Envelope points the loss frontier is fitted through (evenly spaced in log C; the full envelope's
/// 1,500 points would only slow the bootstrap, not inform the three parameters more).
const LOSS_LAW_POINTS: usize = 60;

/// One point of the envelope: at compute `c`, run `run` (of `n` parameters, at `d` tokens) is best.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EnvelopePoint {
    /// Compute.
    pub c: f64,
    /// Winning run.
    pub run: u32,
    /// Its parameters.
    pub n: f64,
    /// Its tokens at this compute.
    pub d: f64,
    /// Its (interpolated) loss.
    pub loss: f64,
}

/// A fitted approach-1 law.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approach1Fit {
    /// The envelope read at every grid compute, less the censored points.
    pub envelope: Vec<EnvelopePoint>,
    /// N_opt = k C^a.
    pub n_law: PowerLaw,
    /// D_opt = k' C^b.
    pub d_law: PowerLaw,
    /// Envelope loss = E + k'' C^-g.
    pub loss_law: FloorPowerLaw,
    /// Number of distinct runs that appear on the (uncensored) envelope.
    pub runs_on_envelope: usize,
    /// Envelope points dropped because the smallest or largest model won there.
    pub censored: usize,
}

impl ComputeOptimal for Approach1Fit {
    fn approach(&self) -> &'static str {
        "approach1"
    }
    fn allocation(&self, c: f64) -> Allocation {
        Allocation {
            c,
            n_opt: self.n_law.at(c),
            d_opt: self.d_law.at(c),
            loss: self.loss_law.at(c),
        }
    }
    fn exponents(&self) -> (f64, f64) {
        (self.n_law.exponent, self.d_law.exponent)
    }
    fn parameters(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("a", self.n_law.exponent),
            ("k_n", self.n_law.coefficient),
            ("b", self.d_law.exponent),
            ("k_d", self.d_law.coefficient),
            ("loss_floor", self.loss_law.floor),
            ("loss_exponent", -self.loss_law.exponent),
            ("loss_coefficient", self.loss_law.coefficient),
        ]
    }
}

/// One training curve sorted by compute.
struct Curve {
    run: u32,
    n: f64,
    pts: Vec<Obs>,
}

impl Curve {
    /// Loss and tokens at compute c by linear interpolation in log C; `None` outside the curve.
    fn at(&self, c: f64) -> Option<(f64, f64)> {
        let first = self.pts.first()?;
        let last = self.pts.last()?;
        if c < first.c || c > last.c {
            return None;
        }
        let k = self.pts.partition_point(|p| p.c < c);
        if k == 0 {
            return Some((first.loss, first.d));
        }
        let (p0, p1) = (&self.pts[k - 1], &self.pts[k]);
        let t = (c.ln() - p0.c.ln()) / (p1.c.ln() - p0.c.ln());
        Some((
            p0.loss + t * (p1.loss - p0.loss),
            (p0.d.ln() + t * (p1.d.ln() - p0.d.ln())).exp(),
        ))
    }
}

/// Reads the lower envelope of the curves at `grid_points` log-spaced compute values.
pub fn envelope(points: &[Obs], grid_points: usize) -> Vec<EnvelopePoint> {
    let mut by_run: BTreeMap<u32, Vec<Obs>> = BTreeMap::new();
    for p in points {
        by_run.entry(p.run).or_default().push(*p);
    }
    let curves: Vec<Curve> = by_run
        .into_iter()
        .map(|(run, mut pts)| {
            pts.sort_by(|a, b| a.c.total_cmp(&b.c));
            Curve {
                run,
                n: pts[0].n,
                pts,
            }
        })
        .collect();
    let (lo, hi) = points.iter().fold((f64::INFINITY, 0.0f64), |(a, b), p| {
        (a.min(p.c), b.max(p.c))
    });
    (0..grid_points)
        .filter_map(|i| {
            let c =
                (lo.ln() + (hi.ln() - lo.ln()) * i as f64 / (grid_points.max(2) - 1) as f64).exp();
            curves
                .iter()
                .filter_map(|cv| {
                    cv.at(c).map(|(loss, d)| EnvelopePoint {
                        c,
                        run: cv.run,
                        n: cv.n,
                        d,
                        loss,
                    })
                })
                .min_by(|a, b| a.loss.total_cmp(&b.loss))
        })
        .collect()
}

/// Fits approach 1 on training curves (points grouped into runs by `Obs::run`).
pub fn fit(points: &[Obs], settings: &Approach1Settings) -> FitResult<Approach1Fit> {
    validate(points, "approach 1", 4)?;
    if settings.grid_points < 10 {
        return Err(FitError::InvalidSetting(
            "approach 1 needs at least 10 grid points".into(),
        ));
    }
    let full = envelope(points, settings.grid_points);
    // Where the smallest or largest model wins, the true optimum may lie outside the sampled sizes:
    // those envelope points are censored and left out of the power-law fits.
    let (n_min, n_max) = points.iter().fold((f64::INFINITY, 0.0f64), |(a, b), p| {
        (a.min(p.n), b.max(p.n))
    });
    let interior = |e: &EnvelopePoint| e.n > n_min * (1.0 + 1e-9) && e.n < n_max * (1.0 - 1e-9);
    let env: Vec<EnvelopePoint> = full.iter().copied().filter(interior).collect();
    let censored = full.len() - env.len();
    let mut runs: Vec<u32> = env.iter().map(|e| e.run).collect();
    runs.sort_unstable();
    runs.dedup();
    if runs.len() < 2 {
        return Err(FitError::NotFittable(format!(
            "approach 1: {} run(s) other than the smallest and largest model lie on the envelope of the \
             training curves; need 2 (more sizes, or more evaluation points per curve)",
            runs.len()
        )));
    }
    let cs: Vec<f64> = env.iter().map(|e| e.c).collect();
    let law = |f: fn(&EnvelopePoint) -> f64| {
        let ys: Vec<f64> = env.iter().map(f).collect();
        PowerLaw::fit(&cs, &ys).ok_or(FitError::NoConvergence("approach 1"))
    };
    let stride = env.len().div_ceil(LOSS_LAW_POINTS).max(1);
    let (lc, ll): (Vec<f64>, Vec<f64>) = env.iter().step_by(stride).map(|e| (e.c, e.loss)).unzip();
    let loss_law = FloorPowerLaw::fit(&lc, &ll, settings.fixed_e)
        .map_err(|why| FitError::NotFittable(format!("approach 1: loss frontier: {why}")))?;
    Ok(Approach1Fit {
        n_law: law(|e| e.n)?,
        d_law: law(|e| e.d)?,
        loss_law,
        runs_on_envelope: runs.len(),
        censored,
        envelope: env,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::approach3::ChinchillaLaw;

    /// Curves of a family of sizes, each trained far, with loss following L(N, D) along the curve.
    fn curves(law: &ChinchillaLaw) -> Vec<Obs> {
        let mut out = Vec::new();
        for (run, k) in (0..12).enumerate() {
            let n = 1e7 * 2f64.powi(k);
            for s in 1..=200 {
                let d = n * 0.5 * 1.04f64.powi(s);
                out.push(Obs {
                    n,
                    d,
                    c: 6.0 * n * d,
                    loss: law.loss(n, d),
                    run: run as u32,
                });
            }
        }
        out
    }

    #[test]
    fn envelope_of_exact_law_gives_its_exponent() {
        let law = ChinchillaLaw::hoffmann2022();
        let f = fit(&curves(&law), &Approach1Settings::default()).unwrap();
        // Discrete sizes (factor 2) make the envelope a staircase; the exponent is still close.
        assert!(
            (f.n_law.exponent - law.exponents().0).abs() < 0.03,
            "a = {}",
            f.n_law.exponent
        );
        assert!(f.runs_on_envelope >= 6);
        let ratio = f.allocation(1e21).n_opt / law.allocation(1e21).n_opt;
        assert!(ratio > 0.7 && ratio < 1.4, "ratio {ratio}");
    }

    #[test]
    fn single_run_is_an_error() {
        let law = ChinchillaLaw::hoffmann2022();
        let one: Vec<Obs> = curves(&law).into_iter().filter(|p| p.run == 3).collect();
        assert!(fit(&one, &Approach1Settings::default()).is_err());
    }
}

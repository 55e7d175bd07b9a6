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
    /// A curve's points enter the envelope only from this fraction of its run's tokens on (0: every
    /// point). Before it, a run with a decaying schedule has not annealed and its loss is not that of
    /// a run trained to that point: Hoffmann et al. (2022, §3.1 and Fig. A1) found that a cosine cycle
    /// longer than the steps taken by more than 25% gives a noticeably worse loss, hence 0.8. A WSD
    /// branch with a 20% cooldown contributes exactly its cooldown.
    #[serde(default = "default_from_run_fraction")]
    pub from_run_fraction: f64,
    /// Locate the optimum between sizes: at each compute, the minimum of a parabola in ln N through
    /// the winning size and its neighbours. Without it N_opt is the winner's size (Hoffmann et al.'s
    /// reading), a staircase that quantises a when sizes are a factor 2 or more apart.
    #[serde(default = "default_interpolate_sizes")]
    pub interpolate_sizes: bool,
}

fn default_interpolate_sizes() -> bool {
    true
}

fn default_from_run_fraction() -> f64 {
    0.8
}

impl Default for Approach1Settings {
    fn default() -> Self {
        Approach1Settings {
            grid_points: 1500,
            fixed_e: None,
            from_run_fraction: default_from_run_fraction(),
            interpolate_sizes: default_interpolate_sizes(),
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
    /// Envelope points dropped because the smallest or largest model won there (with
    /// `interpolate_sizes`: because no size on one side of the winner had a curve there).
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

/// One reading of the envelope, and whether a size on either side of its winner had a curve there
/// (only then can the optimum be located between sizes, and is it known not to lie beyond them).
#[derive(Debug, Clone, Copy)]
struct Reading {
    point: EnvelopePoint,
    bracketed: bool,
}

/// Sizes closer than this (relative) are one size: a parabola through two nearly equal sizes with
/// different losses (two architectures of almost the same N, say) is all curvature, and its vertex
/// can lie far below every observed loss.
const SAME_SIZE: f64 = 0.01;

/// The best curve of each size at compute `c` (each as an envelope point), sorted by size; sizes
/// within 1% of each other count as one.
fn best_by_size(curves: &[Curve], c: f64) -> Vec<EnvelopePoint> {
    let mut best: Vec<EnvelopePoint> = Vec::new();
    for cv in curves {
        let Some((loss, d)) = cv.at(c) else { continue };
        let p = EnvelopePoint {
            c,
            run: cv.run,
            n: cv.n,
            d,
            loss,
        };
        match best
            .iter_mut()
            .find(|b| (b.n / cv.n).ln().abs() <= SAME_SIZE)
        {
            Some(b) if b.loss <= loss => {}
            Some(b) => *b = p,
            None => best.push(p),
        }
    }
    best.sort_by(|a, b| a.n.total_cmp(&b.n));
    best
}

/// The minimum of the parabola in ln N through a winning size and its two neighbours: its N, the
/// tokens interpolated in ln N between the two sizes that bracket it, and its loss. `None` when the
/// three losses tie (no curvature).
fn vertex(three: &[EnvelopePoint]) -> Option<EnvelopePoint> {
    let [p0, p1, p2] = three else { return None };
    let (x0, x1, x2) = (p0.n.ln(), p1.n.ln(), p2.n.ln());
    let f01 = (p1.loss - p0.loss) / (x1 - x0);
    let f12 = (p2.loss - p1.loss) / (x2 - x1);
    let curvature = (f12 - f01) / (x2 - x0);
    if curvature.is_nan() || curvature <= 0.0 {
        return None;
    }
    let x = 0.5 * (x0 + x1) - f01 / (2.0 * curvature);
    let (a, b) = if x <= x1 { (p0, p1) } else { (p1, p2) };
    let t = (x - a.n.ln()) / (b.n.ln() - a.n.ln());
    Some(EnvelopePoint {
        c: p1.c,
        run: p1.run,
        n: x.exp(),
        d: (a.d.ln() + t * (b.d.ln() - a.d.ln())).exp(),
        loss: p0.loss + f01 * (x - x0) + curvature * (x - x0) * (x - x1),
    })
}

/// Reads the lower envelope of the curves at `grid_points` log-spaced compute values, each curve
/// from `settings.from_run_fraction` of its run's tokens (its last point's) on; with
/// `settings.interpolate_sizes`, the optimum between the winner and its neighbours.
fn read_envelope(points: &[Obs], settings: &Approach1Settings) -> Vec<Reading> {
    let mut by_run: BTreeMap<u32, Vec<Obs>> = BTreeMap::new();
    for p in points {
        by_run.entry(p.run).or_default().push(*p);
    }
    let curves: Vec<Curve> = by_run
        .into_iter()
        .map(|(run, mut pts)| {
            pts.sort_by(|a, b| a.c.total_cmp(&b.c));
            let run_tokens = pts.iter().fold(0.0f64, |m, p| m.max(p.d));
            pts.retain(|p| p.d >= settings.from_run_fraction * run_tokens);
            Curve {
                run,
                n: pts[0].n,
                pts,
            }
        })
        .collect();
    let (lo, hi) = curves
        .iter()
        .flat_map(|cv| &cv.pts)
        .fold((f64::INFINITY, 0.0f64), |(a, b), p| {
            (a.min(p.c), b.max(p.c))
        });
    let grid = settings.grid_points.max(2);
    (0..grid)
        .filter_map(|i| {
            let c = (lo.ln() + (hi.ln() - lo.ln()) * i as f64 / (grid - 1) as f64).exp();
            let sizes = best_by_size(&curves, c);
            let (k, winner) = sizes
                .iter()
                .enumerate()
                .min_by(|a, b| a.1.loss.total_cmp(&b.1.loss))?;
            let bracketed = k > 0 && k + 1 < sizes.len();
            let point = if settings.interpolate_sizes && bracketed {
                vertex(&sizes[k - 1..=k + 1]).unwrap_or(*winner)
            } else {
                *winner
            };
            Some(Reading { point, bracketed })
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
    if !(0.0..=1.0).contains(&settings.from_run_fraction) {
        return Err(FitError::InvalidSetting(format!(
            "approach 1: the fraction of a run from which its curve is read must lie in [0, 1], not {}",
            settings.from_run_fraction
        )));
    }
    let full = read_envelope(points, settings);
    // Where the smallest or largest model wins, the true optimum may lie outside the sampled sizes:
    // those envelope points are censored and left out of the power-law fits. Interpolating between
    // sizes needs a size with a curve on either side of the winner, so there every unbracketed
    // winner is censored.
    let (n_min, n_max) = points.iter().fold((f64::INFINITY, 0.0f64), |(a, b), p| {
        (a.min(p.n), b.max(p.n))
    });
    let interior = |r: &Reading| {
        if settings.interpolate_sizes {
            r.bracketed
        } else {
            r.point.n > n_min * (1.0 + 1e-9) && r.point.n < n_max * (1.0 - 1e-9)
        }
    };
    let env: Vec<EnvelopePoint> = full
        .iter()
        .filter(|r| interior(r))
        .map(|r| r.point)
        .collect();
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

    /// Settings that read every curve point (the curves of `curves` follow the law at every point).
    fn every_point() -> Approach1Settings {
        Approach1Settings {
            from_run_fraction: 0.0,
            ..Approach1Settings::default()
        }
    }

    /// An isoFLOP design (8 budgets a factor 3 apart, sizes a factor 2 apart within a decade of the
    /// law's optimum), each run's curve of 20 points on a cosine schedule: a point at t of T tokens
    /// lies above L(N, t) by 15% of the reducible loss times the learning rate still to anneal.
    fn isoflop_curves(law: &ChinchillaLaw) -> Vec<Obs> {
        let mut out = Vec::new();
        let mut run = 0;
        for j in 0..8 {
            let budget = 1e18 * 3f64.powi(j);
            let n_opt = law.allocation(budget).n_opt;
            for k in 0..24 {
                let n = 1e6 * 2f64.powi(k);
                if (n / n_opt).log10().abs() > 1.0 {
                    continue;
                }
                let total = budget / (6.0 * n);
                for i in 1..=20 {
                    let t = total * i as f64 / 20.0;
                    let to_anneal = 0.5 * (1.0 + (std::f64::consts::PI * i as f64 / 20.0).cos());
                    out.push(Obs {
                        n,
                        d: t,
                        c: 6.0 * n * t,
                        loss: law.loss(n, t) + 0.15 * (law.loss(n, t) - law.e) * to_anneal,
                        run,
                    });
                }
                run += 1;
            }
        }
        out
    }

    #[test]
    fn annealed_tail_of_each_curve_gives_the_exponent_of_an_isoflop_design() {
        let law = ChinchillaLaw::hoffmann2022();
        let pts = isoflop_curves(&law);
        let tail = fit(&pts, &Approach1Settings::default()).unwrap();
        let staircase = Approach1Settings {
            interpolate_sizes: false,
            ..Approach1Settings::default()
        };
        let steps = fit(&pts, &staircase).unwrap();
        let truth = law.exponents().0;
        let (off, off_steps) = (tail.n_law.exponent - truth, steps.n_law.exponent - truth);
        // Sizes a factor 2 apart make the winner's size a staircase: a is off by 0.025 read that
        // way, by 2e-5 with the optimum located between sizes.
        assert!(off.abs() < 1e-3, "a off by {off}");
        assert!(off_steps.abs() > 0.01, "staircase a off by {off_steps}");
        assert!(tail.runs_on_envelope >= 6, "{} runs", tail.runs_on_envelope);
        // Every winning curve point comes from the last 20% of its run.
        for e in &steps.envelope {
            let run_tokens = pts
                .iter()
                .filter(|p| p.run == e.run)
                .fold(0.0f64, |m, p| m.max(p.d));
            assert!(
                e.d >= 0.8 * run_tokens * (1.0 - 1e-12),
                "{e:?} before 80% of {run_tokens}"
            );
        }
    }

    #[test]
    fn nearly_equal_sizes_count_as_one() {
        // A second family of runs 0.2% larger and 5% worse (another architecture of almost the
        // same N): merged with the first, the fit is the first family's; as separate sizes their
        // parabola would put optima far below every loss.
        let law = ChinchillaLaw::hoffmann2022();
        let pts = isoflop_curves(&law);
        let alone = fit(&pts, &Approach1Settings::default()).unwrap();
        let shift = pts.iter().map(|p| p.run).max().unwrap() + 1;
        let mut both = pts.clone();
        both.extend(pts.iter().map(|p| Obs {
            n: p.n * 1.002,
            c: p.c * 1.002,
            loss: p.loss * 1.05,
            run: p.run + shift,
            ..*p
        }));
        let merged = fit(&both, &Approach1Settings::default()).unwrap();
        assert!((merged.n_law.exponent - alone.n_law.exponent).abs() < 1e-3);
        let lowest = both.iter().map(|p| p.loss).fold(f64::INFINITY, f64::min);
        assert!(merged.envelope.iter().all(|e| e.loss >= 0.99 * lowest));
    }

    #[test]
    fn fraction_outside_unit_interval_is_refused() {
        let law = ChinchillaLaw::hoffmann2022();
        for bad in [-0.1, 1.5, f64::NAN] {
            let s = Approach1Settings {
                from_run_fraction: bad,
                ..Approach1Settings::default()
            };
            assert!(matches!(
                fit(&isoflop_curves(&law), &s),
                Err(FitError::InvalidSetting(_))
            ));
        }
    }

    #[test]
    fn envelope_of_exact_law_gives_its_exponent() {
        let law = ChinchillaLaw::hoffmann2022();
        let f = fit(&curves(&law), &every_point()).unwrap();
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

//! Bootstrap resampling (parallel, deterministic for a seed) and percentile intervals.

use crate::data::{group_budgets, Obs};
use crate::noise::NoiseModel;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What is drawn with replacement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Resample {
    /// Individual points.
    Points,
    /// Whole training runs (curves), for the envelope of approach 1.
    Runs,
    /// Points within each compute budget (keeps every isoFLOP profile populated), for approach 2.
    WithinBudgets,
    /// Nothing: every point is kept and each run's loss perturbed by the measured noise
    /// ([`crate::noise::NoiseModel`]; a fixed-design bootstrap).
    Noise,
}

/// A value with a two-sided interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// Estimate on the full data.
    #[serde(deserialize_with = "null_as_nan")]
    pub value: f64,
    /// Lower bound of the interval (NaN without bootstrap; null in JSON).
    #[serde(deserialize_with = "null_as_nan")]
    pub lo: f64,
    /// Upper bound of the interval.
    #[serde(deserialize_with = "null_as_nan")]
    pub hi: f64,
}

/// Reads a JSON null (how serde_json writes NaN) back as NaN.
pub(crate) fn null_as_nan<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// [`null_as_nan`] for a (value, low, high) triple.
pub(crate) fn null_as_nan_triple<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<(f64, f64, f64), D::Error> {
    let (a, b, c) = <(Option<f64>, Option<f64>, Option<f64>)>::deserialize(d)?;
    let nan = |v: Option<f64>| v.unwrap_or(f64::NAN);
    Ok((nan(a), nan(b), nan(c)))
}

impl Estimate {
    /// An estimate with its percentile interval over `samples` at confidence `level`.
    pub fn from_samples(value: f64, samples: &[f64], level: f64) -> Self {
        let mut s: Vec<f64> = samples.iter().copied().filter(|v| v.is_finite()).collect();
        if s.is_empty() {
            return Estimate {
                value,
                lo: f64::NAN,
                hi: f64::NAN,
            };
        }
        s.sort_by(f64::total_cmp);
        let q = |p: f64| {
            let pos = p * (s.len() - 1) as f64;
            let (i, f) = (pos.floor() as usize, pos.fract());
            if i + 1 < s.len() {
                s[i] * (1.0 - f) + s[i + 1] * f
            } else {
                s[i]
            }
        };
        let tail = (1.0 - level) / 2.0;
        Estimate {
            value,
            lo: q(tail),
            hi: q(1.0 - tail),
        }
    }

    /// A value whose interval the data do not bound.
    pub fn unbounded(value: f64) -> Self {
        Estimate {
            value,
            lo: f64::NEG_INFINITY,
            hi: f64::INFINITY,
        }
    }

    /// Whether the interval is unbounded on both sides.
    pub fn is_unbounded(&self) -> bool {
        self.lo == f64::NEG_INFINITY && self.hi == f64::INFINITY
    }

    /// Whether `x` lies inside the interval.
    pub fn contains(&self, x: f64) -> bool {
        x >= self.lo && x <= self.hi
    }
}

/// How a replicate is drawn: the unit, the budget grouping of [`Resample::WithinBudgets`] and
/// the noise model of [`Resample::Noise`] (without one that unit keeps the points as they are).
#[derive(Debug, Clone, Copy)]
pub struct Draw<'a> {
    /// What is drawn.
    pub how: Resample,
    /// Points whose compute is within this factor of the previous one share a budget.
    pub budget_ratio: f64,
    /// The runs' noise.
    pub noise: Option<&'a NoiseModel>,
}

impl Draw<'_> {
    /// Resampling `how`, with no noise model.
    pub fn resampling(how: Resample, budget_ratio: f64) -> Self {
        Draw {
            how,
            budget_ratio,
            noise: None,
        }
    }
}

/// One bootstrap sample of the points.
pub fn resample(points: &[Obs], draw: &Draw, rng: &mut ChaCha8Rng) -> Vec<Obs> {
    match draw.how {
        Resample::Noise => match draw.noise {
            Some(model) => model.perturb(points, rng),
            None => points.to_vec(),
        },
        Resample::Points => (0..points.len())
            .map(|_| points[rng.random_range(0..points.len())])
            .collect(),
        Resample::Runs => {
            let mut runs: BTreeMap<u32, Vec<Obs>> = BTreeMap::new();
            for p in points {
                runs.entry(p.run).or_default().push(*p);
            }
            let runs: Vec<Vec<Obs>> = runs.into_values().collect();
            // Drawn runs get fresh ids so that a run drawn twice stays two curves.
            (0..runs.len())
                .flat_map(|k| {
                    let r = &runs[rng.random_range(0..runs.len())];
                    r.iter()
                        .map(move |p| Obs {
                            run: k as u32,
                            ..*p
                        })
                        .collect::<Vec<_>>()
                })
                .collect()
        }
        Resample::WithinBudgets => group_budgets(points, draw.budget_ratio)
            .into_iter()
            .flat_map(|g| {
                (0..g.len())
                    .map(|_| points[g[rng.random_range(0..g.len())]])
                    .collect::<Vec<_>>()
            })
            .collect(),
    }
}

/// Runs `fit` on `replicates` bootstrap samples in parallel. Replicate i draws from a ChaCha8 stream
/// seeded by (`seed`, i), so results do not depend on thread scheduling. Failed refits are dropped;
/// the caller reports how many succeeded.
pub fn run<F, T>(points: &[Obs], draw: &Draw, replicates: usize, seed: u64, fit: F) -> Vec<T>
where
    F: Fn(&[Obs]) -> Option<T> + Sync,
    T: Send,
{
    (0..replicates)
        .into_par_iter()
        .filter_map(|i| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(i as u64);
            fit(&resample(points, draw, &mut rng))
        })
        .collect()
}

/// [`run`] for observations of any kind: each replicate refits `fit` on a resample (with
/// replacement) of `points`; failed refits are dropped.
pub fn over_points<P, F, T>(points: &[P], replicates: usize, seed: u64, fit: F) -> Vec<T>
where
    P: Copy + Sync,
    F: Fn(&[P]) -> Option<T> + Sync,
    T: Send,
{
    let index: Vec<Obs> = (0..points.len())
        .map(|i| Obs {
            run: i as u32,
            ..Obs::from_n_d(1.0, 1.0, 1.0)
        })
        .collect();
    let draw = Draw::resampling(Resample::Points, 1.25);
    run(&index, &draw, replicates, seed, |sample| {
        let sub: Vec<P> = sample.iter().map(|o| points[o.run as usize]).collect();
        fit(&sub)
    })
}

/// Each named parameter of a fit with the percentile interval of the same parameter over the
/// bootstrap replicates (`parameters` lists a fit's parameters in a fixed order).
pub fn named_intervals<T>(
    parameters: impl Fn(&T) -> Vec<(&'static str, f64)>,
    fitted: &T,
    replicates: &[T],
    level: f64,
) -> std::collections::BTreeMap<String, Estimate> {
    let samples: Vec<Vec<(&'static str, f64)>> = replicates.iter().map(&parameters).collect();
    parameters(fitted)
        .into_iter()
        .enumerate()
        .map(|(i, (name, value))| {
            let s: Vec<f64> = samples.iter().map(|p| p[i].1).collect();
            (name.to_string(), Estimate::from_samples(value, &s, level))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_interval() {
        let s: Vec<f64> = (0..=100).map(|i| i as f64).collect();
        let e = Estimate::from_samples(50.0, &s, 0.9);
        assert!((e.lo - 5.0).abs() < 1e-9 && (e.hi - 95.0).abs() < 1e-9);
        assert!(e.contains(50.0) && !e.contains(99.0));
    }

    #[test]
    fn deterministic_and_stratified() {
        let pts: Vec<Obs> = (0..20)
            .map(|i| {
                Obs::from_n_c(
                    1e6 * (1 + i % 5) as f64,
                    if i < 10 { 1e18 } else { 1e19 },
                    3.0,
                )
            })
            .collect();
        let draw = Draw::resampling(Resample::WithinBudgets, 1.25);
        let a = run(&pts, &draw, 8, 7, |s| Some(s.to_vec()));
        let b = run(&pts, &draw, 8, 7, |s| Some(s.to_vec()));
        assert_eq!(a, b);
        for s in &a {
            assert_eq!(s.iter().filter(|p| p.c == 1e18).count(), 10);
        }
    }
}

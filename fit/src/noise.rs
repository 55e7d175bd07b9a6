//! The measurement-noise model of a fixed-design bootstrap.
//!
//! A sweep chooses its (N, D) points; what is random is each run's loss (initialisation, data
//! order). Resampling points treats the design as drawn: with three to seven sizes per budget most
//! resamples of an isoFLOP profile repeat or drop sizes, and the interval measures which sizes
//! were kept rather than how noisy the losses are. The noise bootstrap keeps every point and
//! multiplies each run's losses (its final point and its whole curve) by exp(sd z), z ~ N(0, 1)
//! per run and replicate, with sd one run's measured scatter between seeds, or, without seeds, the
//! scatter left around the parametric law L(N, D) (a conservative estimate: it includes the law's
//! misfit).

use crate::approach3::{self, Approach3Settings};
use crate::data::Obs;
use crate::error::{FitError, FitResult};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Where a noise model's standard deviation came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoiseSource {
    /// The pooled scatter between seeds of repeated configurations.
    Seeds,
    /// The residuals of approach 3's L(N, D), with its degrees of freedom.
    Residuals,
    /// Given by the user.
    Given,
}

/// One run's noise in ln L, and how many runs each fitted point averages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoiseModel {
    /// One run's standard deviation of ln L.
    pub sd_ln_loss: f64,
    /// Where it came from.
    pub source: NoiseSource,
    /// Runs averaged into each point, by its `run` id (a mean of k seeds has sd / sqrt k); empty:
    /// one run per point.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runs_per_point: Vec<usize>,
    /// Each point's noise group, by its `run` id: the points of one group draw one factor (the
    /// cooldown branches of one WSD trunk share its seed, initialisation and path to the fork);
    /// empty, or a point beyond the list: a group of its own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shared: Vec<u32>,
}

impl NoiseModel {
    /// A model with one run per point.
    pub fn new(sd_ln_loss: f64, source: NoiseSource) -> FitResult<Self> {
        if !(sd_ln_loss.is_finite() && sd_ln_loss >= 0.0) {
            return Err(FitError::InvalidSetting(format!(
                "the noise's standard deviation of ln L must be finite and >= 0, got {sd_ln_loss}"
            )));
        }
        Ok(NoiseModel {
            sd_ln_loss,
            source,
            runs_per_point: Vec::new(),
            shared: Vec::new(),
        })
    }

    /// The standard deviation of ln L of the point with `run` id.
    pub fn sd_of(&self, run: u32) -> f64 {
        let k = self.runs_per_point.get(run as usize).copied().unwrap_or(1);
        self.sd_ln_loss / (k.max(1) as f64).sqrt()
    }

    /// Whether some points share a draw.
    pub fn has_shared_groups(&self) -> bool {
        let mut seen = std::collections::HashSet::new();
        self.shared.iter().any(|g| !seen.insert(*g))
    }

    /// One replicate: every point kept, each run's losses scaled by one draw of exp(sd z), one z
    /// per noise group.
    pub fn perturb(&self, points: &[Obs], rng: &mut ChaCha8Rng) -> Vec<Obs> {
        // Keys: a shared group, or a run of its own. Groups draw in order of first appearance, so a
        // replicate is deterministic.
        let key = |run: u32| match self.shared.get(run as usize) {
            Some(&g) => (0u8, g),
            None => (1u8, run),
        };
        let mut z: std::collections::BTreeMap<(u8, u32), f64> = Default::default();
        points
            .iter()
            .map(|p| {
                let z = *z.entry(key(p.run)).or_insert_with(|| standard_normal(rng));
                Obs {
                    loss: p.loss * (self.sd_of(p.run) * z).exp(),
                    ..*p
                }
            })
            .collect()
    }
}

/// A standard normal draw (Box-Muller).
pub fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]: ln is finite
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// The scatter of ln L around approach 3's law fitted to `finals`: sqrt(RSS / (n - p)) with p its
/// free parameters (5, or 4 with E held).
pub fn residual_sd(finals: &[Obs], settings: &Approach3Settings) -> FitResult<f64> {
    let fit = approach3::fit(finals, settings)?;
    let p = if settings.fixed_e.is_some() { 4 } else { 5 };
    let dof = finals.len().saturating_sub(p);
    if dof == 0 {
        return Err(FitError::InvalidSetting(format!(
            "{} points leave no degrees of freedom for the residual scatter of a {p}-parameter law",
            finals.len()
        )));
    }
    let rss: f64 = finals
        .iter()
        .map(|o| (fit.law.loss(o.n, o.d) / o.loss).ln().powi(2))
        .sum();
    Ok((rss / dof as f64).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn perturbation_scales_each_run_by_one_factor_with_the_models_sd() {
        let mut noise = NoiseModel::new(0.05, NoiseSource::Given).unwrap();
        noise.runs_per_point = vec![1, 4];
        assert_eq!(noise.sd_of(1), 0.025);
        assert_eq!(
            noise.sd_of(7),
            0.05,
            "points beyond the list are single runs"
        );
        // Two points of run 0 (a curve) and one of run 1.
        let pts = [
            Obs {
                run: 0,
                ..Obs::from_n_d(1e3, 1e4, 2.0)
            },
            Obs {
                run: 0,
                ..Obs::from_n_d(1e3, 2e4, 1.5)
            },
            Obs {
                run: 1,
                ..Obs::from_n_d(2e3, 1e4, 1.8)
            },
        ];
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let (mut run0, mut run1) = (Vec::new(), Vec::new());
        for _ in 0..20_000 {
            let q = noise.perturb(&pts, &mut rng);
            let f = (q[0].loss / 2.0).ln();
            assert!(
                ((q[1].loss / 1.5).ln() - f).abs() < 1e-12,
                "one factor per run"
            );
            assert_eq!((q[0].n, q[0].d, q[0].c), (pts[0].n, pts[0].d, pts[0].c));
            run0.push(f);
            run1.push((q[2].loss / 1.8).ln());
        }
        let sd = |v: &[f64]| {
            let m = v.iter().sum::<f64>() / v.len() as f64;
            (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
        };
        // 20,000 draws: the sample sd is within 2% of the model's (its standard error is 0.5%).
        assert!((sd(&run0) / 0.05 - 1.0).abs() < 0.02, "{}", sd(&run0));
        assert!((sd(&run1) / 0.025 - 1.0).abs() < 0.02, "{}", sd(&run1));
        assert!(NoiseModel::new(f64::NAN, NoiseSource::Given).is_err());
        // Runs 0 and 1 in one group (two branches of a trunk): one draw moves both.
        noise.runs_per_point = Vec::new();
        noise.shared = vec![5, 5];
        assert!(noise.has_shared_groups());
        for _ in 0..100 {
            let q = noise.perturb(&pts, &mut rng);
            let (f0, f1) = ((q[0].loss / 2.0).ln(), (q[2].loss / 1.8).ln());
            assert!((f0 - f1).abs() < 1e-12, "{f0} {f1}");
        }
    }

    #[test]
    fn residual_sd_recovers_the_noise_put_on_a_known_law() {
        let law = approach3::ChinchillaLaw {
            e: 1.0,
            a: 400.0,
            b: 2000.0,
            alpha: 0.35,
            beta: 0.4,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut pts = Vec::new();
        for c in [1e15, 3e15, 1e16, 3e16, 1e17, 3e17] {
            for k in 0..8 {
                let n = 1e6 * 2f64.powi(k);
                let d = c / (6.0 * n);
                let loss = law.loss(n, d) * (0.03 * standard_normal(&mut rng)).exp();
                pts.push(Obs::from_n_d(n, d, loss));
            }
        }
        let sd = residual_sd(&pts, &Approach3Settings::default()).unwrap();
        // 48 points, 43 degrees of freedom: the estimate's own standard error is about 11%.
        assert!((sd / 0.03 - 1.0).abs() < 0.25, "{sd}");
    }
}

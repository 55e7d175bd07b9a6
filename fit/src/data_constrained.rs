//! Data-constrained scaling (Muennighoff et al. 2023, "Scaling Data-Constrained Language Models"):
//! the Chinchilla form on effective data and effective parameters,
//!
//! L(N, D, U) = E + A / N'^alpha + B / D'^beta,
//! D' = U_D + U_D R*_D (1 - exp(-R_D / R*_D)),  R_D = D / U_D - 1 (repetitions beyond one epoch),
//! N' = U_N + U_N R*_N (1 - exp(-R_N / R*_N)),  R_N = N / U_N - 1,  U_N = min(N, N_opt(U_D)),
//!
//! with U_D the unique tokens and N_opt(U_D) the size for which U_D tokens are the compute-optimal
//! data under the law's own Chinchilla part (E, A, alpha, B, beta). A repeated token is worth less
//! each epoch and a parameter past U_N less each multiple; R*_D and R*_N are the decay constants of
//! that worth. Single-epoch runs of models their data can use reduce it to Chinchilla's law.
//!
//! Fitted in the paper's two stages (its `utils/parametric_fit.ipynb`): the Chinchilla part first,
//! on the runs that are neither repeated nor over-parameterised (or held at given values, as the
//! paper held the coefficients it fitted on separate single-epoch C4 runs), then R*_D and R*_N
//! with it held. Each stage minimises the summed Huber(delta = 1e-3) of log L in log-sum-exp form,
//! log L = LSE(log A - alpha log N', log B - beta log D', log E), by L-BFGS from a grid of starts;
//! bootstrap intervals resample the runs and repeat both stages.

use crate::approach3::{self, Approach3Settings};
use crate::bootstrap::{self, Estimate};
use crate::data::Obs;
use crate::error::{FitError, FitResult};
use crate::extrapolate::{self, ExtrapolationError};
use crate::optimize::{grid, minimize_all, LbfgsSettings, Objective};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The Chinchilla part of the law: L = E + A / N^alpha + B / D^beta.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BaseLaw {
    /// Irreducible loss E.
    pub e: f64,
    /// Parameter coefficient A.
    pub a: f64,
    /// Parameter exponent alpha.
    pub alpha: f64,
    /// Data coefficient B.
    pub b: f64,
    /// Data exponent beta.
    pub beta: f64,
}

impl BaseLaw {
    /// The parameters for which `d` tokens are the compute-optimal data: with
    /// G = (alpha A / (beta B))^(1 / (alpha + beta)), N_opt = G (G d)^(beta / alpha).
    pub fn optimal_params_for_tokens(&self, d: f64) -> f64 {
        let g = (self.alpha * self.a / (self.beta * self.b)).powf(1.0 / (self.alpha + self.beta));
        g * (g * d).powf(self.beta / self.alpha)
    }
}

/// A data-constrained law.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DataConstrainedLaw {
    /// The Chinchilla part.
    pub base: BaseLaw,
    /// Decay constant of repeated data, in epochs beyond the first.
    pub r_star_d: f64,
    /// Decay constant of excess parameters, in multiples of U_N beyond the first.
    pub r_star_n: f64,
}

/// One run: parameters N, tokens seen D, unique tokens U_D, final loss.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConstrainedObs {
    /// Parameters N.
    pub n: f64,
    /// Training tokens D (every epoch counted).
    pub d: f64,
    /// Unique tokens U_D.
    pub unique: f64,
    /// Final loss.
    pub loss: f64,
}

/// Effective count `u (1 + r* (1 - exp(-r / r*)))` and its derivative in log r*.
fn effective(u: f64, r: f64, r_star: f64) -> (f64, f64) {
    let x = r / r_star;
    let decay = (-x).exp();
    let value = u * (1.0 + r_star * (1.0 - decay));
    let d_log_r_star = u * r_star * (1.0 - decay * (1.0 + x));
    (value, d_log_r_star)
}

/// A run's base counts and repetitions under a Chinchilla part: (U_N, R_N, U_D, R_D).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Counts {
    u_n: f64,
    r_n: f64,
    u_d: f64,
    r_d: f64,
}

impl Counts {
    fn of(p: &ConstrainedObs, base: &BaseLaw) -> Self {
        let u_n = p.n.min(base.optimal_params_for_tokens(p.unique));
        Counts {
            u_n,
            r_n: (p.n / u_n - 1.0).max(0.0),
            u_d: p.unique,
            r_d: (p.d / p.unique - 1.0).max(0.0),
        }
    }

    /// N and D taken at face value (the first stage: no repetition, no excess).
    fn plain(p: &ConstrainedObs) -> Self {
        Counts {
            u_n: p.n,
            r_n: 0.0,
            u_d: p.d,
            r_d: 0.0,
        }
    }
}

impl DataConstrainedLaw {
    /// The fit of Muennighoff et al. 2023 (their repository's README: log A 6.255414, log B
    /// 7.3049974, log E 0.6254804, alpha = beta 0.3526596, R*_D 15.387756, R*_N 5.309743).
    pub fn published() -> Self {
        DataConstrainedLaw {
            base: BaseLaw {
                e: 0.6254804f64.exp(),
                a: 6.255414f64.exp(),
                alpha: 0.3526596,
                b: 7.3049974f64.exp(),
                beta: 0.3526596,
            },
            r_star_d: 15.387756,
            r_star_n: 5.309743,
        }
    }

    /// Effective parameters N' and effective data D' of a run.
    pub fn effective(&self, p: &ConstrainedObs) -> (f64, f64) {
        let c = Counts::of(p, &self.base);
        (
            effective(c.u_n, c.r_n, self.r_star_n).0,
            effective(c.u_d, c.r_d, self.r_star_d).0,
        )
    }

    /// L(N, D, U_D).
    pub fn loss(&self, p: &ConstrainedObs) -> f64 {
        let (n_eff, d_eff) = self.effective(p);
        let b = &self.base;
        b.e + b.a / n_eff.powf(b.alpha) + b.b / d_eff.powf(b.beta)
    }

    fn from_theta(t: &[f64], tied: bool) -> Self {
        DataConstrainedLaw {
            base: BaseLaw {
                a: t[0].exp(),
                b: t[1].exp(),
                e: t[2].exp(),
                alpha: t[3],
                beta: if tied { t[3] } else { t[4] },
            },
            r_star_d: t[5].exp(),
            r_star_n: t[6].exp(),
        }
    }

    fn theta(&self) -> Vec<f64> {
        let b = &self.base;
        vec![
            b.a.ln(),
            b.b.ln(),
            b.e.ln(),
            b.alpha,
            b.beta,
            self.r_star_d.ln(),
            self.r_star_n.ln(),
        ]
    }

    /// Parameters by name.
    pub fn parameters(&self) -> Vec<(&'static str, f64)> {
        let b = &self.base;
        vec![
            ("E", b.e),
            ("A", b.a),
            ("alpha", b.alpha),
            ("B", b.b),
            ("beta", b.beta),
            ("R*_D", self.r_star_d),
            ("R*_N", self.r_star_n),
        ]
    }
}

/// How the Chinchilla part is obtained.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Base {
    /// Fitted on the single-epoch runs of models their data can use, alpha and beta separately.
    Free,
    /// Fitted likewise with beta = alpha (the paper's choice).
    Tied,
    /// Held at given values (e.g. the paper's, fitted on runs this table lacks).
    Held(BaseLaw),
}

/// The summed Huber loss of log L over runs with fixed counts; parameters not in `free` have
/// zero gradient.
struct Huber<'a> {
    counts: &'a [Counts],
    log_loss: &'a [f64],
    tied: bool,
    free: [bool; 7],
}

const DELTA: f64 = 1e-3;

/// Chinchilla's tokens per parameter, which picks the first stage's first runs.
const CHINCHILLA_TOKENS_PER_PARAM: f64 = 20.0;

impl Huber<'_> {
    fn eval(&self, t: &[f64], want_grad: bool, delta: f64) -> (f64, Vec<f64>) {
        let (la, lb, le, alpha) = (t[0], t[1], t[2], t[3]);
        let beta = if self.tied { t[3] } else { t[4] };
        let (r_star_d, r_star_n) = (t[5].exp(), t[6].exp());
        let mut total = 0.0;
        let mut g = vec![0.0; 7];
        for (c, &log_l) in self.counts.iter().zip(self.log_loss) {
            let (n_eff, dn) = effective(c.u_n, c.r_n, r_star_n);
            let (d_eff, dd) = effective(c.u_d, c.r_d, r_star_d);
            let (log_n, log_d) = (n_eff.ln(), d_eff.ln());
            let terms = [la - alpha * log_n, lb - beta * log_d, le];
            let m = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let e = terms.map(|v| (v - m).exp());
            let s: f64 = e.iter().sum();
            let r = m + s.ln() - log_l;
            total += if r.abs() <= delta {
                0.5 * r * r
            } else {
                delta * (r.abs() - 0.5 * delta)
            };
            if want_grad {
                let dh = r.clamp(-delta, delta) / s;
                g[0] += dh * e[0];
                g[1] += dh * e[1];
                g[2] += dh * e[2];
                g[3] -= dh * e[0] * log_n;
                g[if self.tied { 3 } else { 4 }] -= dh * e[1] * log_d;
                g[5] -= dh * e[1] * beta * dd / d_eff;
                g[6] -= dh * e[0] * alpha * dn / n_eff;
            }
        }
        for (gi, free) in g.iter_mut().zip(self.free) {
            if !free {
                *gi = 0.0;
            }
        }
        (total, g)
    }
}

impl Objective for Huber<'_> {
    fn value(&self, x: &[f64]) -> f64 {
        self.eval(x, false, DELTA).0
    }
    fn value_gradient(&self, x: &[f64]) -> (f64, Vec<f64>) {
        self.eval(x, true, DELTA)
    }
}

/// The best law from `starts` over runs with `counts`.
fn minimise(
    counts: &[Counts],
    log_loss: &[f64],
    starts: &[Vec<f64>],
    tied: bool,
    free: [bool; 7],
) -> Option<DataConstrainedLaw> {
    let objective = Huber {
        counts,
        log_loss,
        tied,
        free,
    };
    let optima = minimize_all(&objective, starts, &LbfgsSettings::default());
    optima
        .first()
        .map(|m| DataConstrainedLaw::from_theta(&m.x, tied))
}

/// Starts of the first stage over [log A, log B, log E, alpha, beta] (R* unused there).
fn base_starts(tied: bool) -> Vec<Vec<f64>> {
    let exps = vec![0.2, 0.35, 0.5];
    grid(&[
        vec![2.0, 5.0, 8.0],
        vec![2.0, 5.0, 8.0],
        vec![-0.5, 0.0, 0.5],
        exps.clone(),
        if tied { vec![0.0] } else { exps },
        vec![0.0],
        vec![0.0],
    ])
}

/// The stage-one runs under a Chinchilla part: one epoch, and no more parameters than the data
/// can use.
fn plain_runs(points: &[ConstrainedObs], base: &BaseLaw) -> Vec<usize> {
    (0..points.len())
        .filter(|&i| {
            let c = Counts::of(&points[i], base);
            c.r_d == 0.0 && c.r_n == 0.0
        })
        .collect()
}

/// Both stages on `points`; `warm` are starting laws from an earlier fit (the bootstrap's).
fn fit_stages(
    points: &[ConstrainedObs],
    base: Base,
    warm: Option<&DataConstrainedLaw>,
) -> Option<DataConstrainedLaw> {
    let log_loss: Vec<f64> = points.iter().map(|p| p.loss.ln()).collect();
    let held = match base {
        Base::Held(b) => b,
        Base::Free | Base::Tied => {
            let tied = base == Base::Tied;
            let starts = match warm {
                Some(w) => vec![w.theta()],
                None => base_starts(tied),
            };
            let free = [true, true, true, true, !tied, false, false];
            // Single-epoch runs with at least Chinchilla's 20 tokens per parameter, then those
            // the fitted part finds neither repeated nor over-parameterised, until the set no
            // longer changes.
            let mut chosen: Vec<usize> = (0..points.len())
                .filter(|&i| {
                    let p = &points[i];
                    p.d <= p.unique && p.n <= p.unique / CHINCHILLA_TOKENS_PER_PARAM
                })
                .collect();
            let mut law = None;
            for _ in 0..10 {
                let counts: Vec<Counts> =
                    chosen.iter().map(|&i| Counts::plain(&points[i])).collect();
                let logs: Vec<f64> = chosen.iter().map(|&i| log_loss[i]).collect();
                if counts.len() < 6 {
                    return None;
                }
                let fitted = minimise(&counts, &logs, &starts, tied, free)?;
                let next = plain_runs(points, &fitted.base);
                law = Some(fitted);
                if next == chosen {
                    break;
                }
                chosen = next;
            }
            law?.base
        }
    };
    let counts: Vec<Counts> = points.iter().map(|p| Counts::of(p, &held)).collect();
    let start = |r_d: f64, r_n: f64| {
        DataConstrainedLaw {
            base: held,
            r_star_d: r_d,
            r_star_n: r_n,
        }
        .theta()
    };
    let starts: Vec<Vec<f64>> = match warm {
        Some(w) => vec![start(w.r_star_d, w.r_star_n)],
        None => grid(&[vec![1.0, 5.0, 20.0, 100.0], vec![0.5, 2.0, 8.0, 30.0]])
            .into_iter()
            .map(|r| start(r[0], r[1]))
            .collect(),
    };
    let free = [false, false, false, false, false, true, true];
    minimise(&counts, &log_loss, &starts, false, free)
}

/// A fitted data-constrained law with intervals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataConstrainedFit {
    /// The law fitted to every point.
    pub law: DataConstrainedLaw,
    /// How its Chinchilla part was obtained.
    pub base: Base,
    /// Parameters with bootstrap intervals (held ones without).
    pub parameters: BTreeMap<String, Estimate>,
    /// Points used.
    pub points: usize,
    /// Runs of one epoch with no excess parameters (under the fitted law): the first stage's.
    pub plain: usize,
    /// Points trained on repeated data (more than one epoch).
    pub repeated: usize,
    /// Points with more parameters than their unique data can use (N > N_opt(U_D)).
    pub excess_parameters: usize,
    /// RMSE of ln(predicted / observed).
    pub rmse_log: f64,
    /// Bootstrap replicates that produced a fit.
    pub bootstrap_succeeded: usize,
    /// Parameters the runs do not pin down: a 95% interval spanning more than
    /// [`UNIDENTIFIED_SPAN`] (ratio of its ends), with what that means.
    pub unidentified: Vec<String>,
}

/// The ratio of an interval's ends past which a positive parameter counts as not identified
/// (two decades).
pub const UNIDENTIFIED_SPAN: f64 = 100.0;

/// Fits the law to `points`, with `bootstrap` replicates (runs resampled) at confidence `level`.
/// R*_D needs runs of more than one epoch and R*_N runs with excess parameters: without them the
/// law is not identified, and the fit is refused.
pub fn fit(
    points: &[ConstrainedObs],
    base: Base,
    bootstrap: usize,
    seed: u64,
    level: f64,
) -> FitResult<DataConstrainedFit> {
    let law_name = "data-constrained law";
    if points.len() < 8 {
        return Err(FitError::TooFewPoints {
            law: law_name,
            needed: 8,
            got: points.len(),
        });
    }
    for (row, p) in points.iter().enumerate() {
        for (column, value) in [
            ("n", p.n),
            ("d", p.d),
            ("unique", p.unique),
            ("loss", p.loss),
        ] {
            if !(value.is_finite() && value > 0.0) {
                return Err(FitError::BadValue { row, column, value });
            }
        }
    }
    let law = fit_stages(points, base, None).ok_or_else(|| {
        FitError::NotFittable(format!(
            "{law_name}: no fit (the first stage needs at least 6 single-epoch runs of models \
             their data can use)"
        ))
    })?;
    let counts: Vec<Counts> = points.iter().map(|p| Counts::of(p, &law.base)).collect();
    let repeated = counts.iter().filter(|c| c.r_d > 0.0).count();
    let excess = counts.iter().filter(|c| c.r_n > 0.0).count();
    if repeated == 0 || excess == 0 {
        return Err(FitError::NotIdentified(format!(
            "{law_name}: R*_D needs runs of more than one epoch (D > U_D; {repeated} here) and R*_N \
             runs with more parameters than their unique tokens use compute-optimally ({excess} \
             here)"
        )));
    }
    let boots = bootstrap::over_points(points, bootstrap, seed, |sub| {
        fit_stages(sub, base, Some(&law))
    });
    let mut parameters =
        bootstrap::named_intervals(DataConstrainedLaw::parameters, &law, &boots, level);
    if matches!(base, Base::Held(_)) {
        // Held parameters carry no interval.
        for (name, value) in &law.parameters()[..5] {
            parameters.insert(name.to_string(), Estimate::from_samples(*value, &[], level));
        }
    }
    let rmse_log = (points
        .iter()
        .map(|p| (law.loss(p) / p.loss).ln().powi(2))
        .sum::<f64>()
        / points.len() as f64)
        .sqrt();
    let unidentified = ["E", "A", "B", "R*_D", "R*_N"]
        .into_iter()
        .filter(|name| {
            let e = &parameters[*name];
            e.lo.is_finite() && !(e.lo > 0.0 && e.hi / e.lo <= UNIDENTIFIED_SPAN)
        })
        .map(|name| {
            let e = &parameters[name];
            let meaning = match name {
                "R*_D" => ": the runs do not show how fast repeated data loses its worth",
                "R*_N" => ": the runs do not show how fast excess parameters lose their worth",
                _ => "",
            };
            format!("{name} in [{:.3e}, {:.3e}]{meaning}", e.lo, e.hi)
        })
        .collect();
    Ok(DataConstrainedFit {
        unidentified,
        law,
        base,
        parameters,
        points: points.len(),
        plain: plain_runs(points, &law.base).len(),
        repeated,
        excess_parameters: excess,
        rmse_log,
        bootstrap_succeeded: boots.len(),
    })
}

/// The extrapolation check of the law against a law blind to repetition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConstrainedExtrapolation {
    /// The data-constrained law fitted on the smaller runs.
    pub law: ExtrapolationError,
    /// Chinchilla's law (approach 3) fitted on the same runs' N and D alone; `None` when it did
    /// not fit.
    pub chinchilla: Option<ExtrapolationError>,
}

/// Fits on all but the `extrapolate::HELD_OUT_SHARE` of runs with the largest compute 6ND and predicts
/// those; a Chinchilla law fitted on N and D alone (repeated tokens counted as fresh) is held to
/// the same runs, so the table shows what accounting for repetition buys.
pub fn extrapolation(
    points: &[ConstrainedObs],
    base: Base,
    level: f64,
) -> FitResult<ConstrainedExtrapolation> {
    let name = "data-constrained law";
    let (train, held, label) = extrapolate::split_by_compute(points, |p| 6.0 * p.n * p.d, name)?;
    let law = fit(&train, base, 0, 0, level)?.law;
    let error_of = |predict: &dyn Fn(&ConstrainedObs) -> f64| {
        let pairs: Vec<(f64, f64)> = held.iter().map(|p| (predict(p), p.loss)).collect();
        ExtrapolationError::of(label.clone(), train.len(), &pairs, level)
    };
    let law_error = error_of(&|p| law.loss(p)).ok_or_else(|| {
        FitError::NotFittable(format!("{name} extrapolation: no finite prediction"))
    })?;
    let plain: Vec<Obs> = train
        .iter()
        .map(|p| Obs::from_n_d(p.n, p.d, p.loss))
        .collect();
    let chinchilla = approach3::fit(&plain, &Approach3Settings::default())
        .ok()
        .and_then(|f| error_of(&|p| f.law.loss(p.n, p.d)));
    Ok(ConstrainedExtrapolation {
        law: law_error,
        chinchilla,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs of 6 sizes at 3 unique-data sizes, each for 1 to 40 epochs, with the losses of `law`.
    fn design(law: &DataConstrainedLaw) -> Vec<ConstrainedObs> {
        let mut pts = Vec::new();
        for &n in &[1e7, 3e7, 1e8, 4e8, 1.5e9, 6e9] {
            for &unique in &[1e9, 1e10, 1e11] {
                for &epochs in &[1.0, 2.0, 4.0, 10.0, 40.0] {
                    let mut p = ConstrainedObs {
                        n,
                        d: unique * epochs,
                        unique,
                        loss: 0.0,
                    };
                    p.loss = law.loss(&p);
                    pts.push(p);
                }
            }
        }
        pts
    }

    #[test]
    fn effective_counts_by_hand() {
        let law = DataConstrainedLaw::published();
        let b = law.base;
        // Tied exponents: N_opt(U) = G^2 U with G = (A / B)^(1 / (2 alpha)); the paper's 0.051.
        let g2 = (b.a / b.b).powf(1.0 / b.alpha);
        assert!((b.optimal_params_for_tokens(1e9) / (g2 * 1e9) - 1.0).abs() < 1e-12);
        assert!((g2 / 0.051 - 1.0).abs() < 0.01, "{g2}");
        // One epoch and a model that its data can use: nothing is discounted.
        let fresh = ConstrainedObs {
            n: 1e8,
            d: 1e10,
            unique: 1e10,
            loss: 1.0,
        };
        assert_eq!(law.effective(&fresh), (1e8, 1e10));
        // Four epochs: R_D = 3, D' = U (1 + R*_D (1 - e^(-3 / R*_D))).
        let repeated = ConstrainedObs { d: 4e10, ..fresh };
        let rd = 15.387756f64;
        let want = 1e10 * (1.0 + rd * (1.0 - (-3.0 / rd).exp()));
        assert!((law.effective(&repeated).1 / want - 1.0).abs() < 1e-15);
        assert!(want < 4e10 && want > 3.6e10, "{want}");
        // 1e9 parameters on 1e9 unique tokens: U_N = G^2 1e9, R_N = 1e9 / U_N - 1.
        let big = ConstrainedObs {
            n: 1e9,
            d: 1e9,
            unique: 1e9,
            loss: 1.0,
        };
        let (u_n, rn) = (g2 * 1e9, 5.309743f64);
        let r_n = 1e9 / u_n - 1.0;
        let want = u_n * (1.0 + rn * (1.0 - (-r_n / rn).exp()));
        assert!((law.effective(&big).0 / want - 1.0).abs() < 1e-12, "{want}");
        // The loss at the fresh point, by hand.
        let l = b.e + b.a / 1e8f64.powf(b.alpha) + b.b / 1e10f64.powf(b.beta);
        assert!((law.loss(&fresh) - l).abs() < 1e-12);
    }

    #[test]
    fn recovers_known_laws_from_exact_points() {
        let mut untied = DataConstrainedLaw::published();
        untied.base.beta = 0.40;
        let truth = DataConstrainedLaw::published();
        for (truth, base) in [
            (truth, Base::Tied),
            (untied, Base::Free),
            (truth, Base::Held(truth.base)),
        ] {
            let f = fit(&design(&truth), base, 0, 0, 0.95).unwrap();
            for ((name, got), (_, want)) in f.law.parameters().into_iter().zip(truth.parameters()) {
                assert!(
                    (got / want - 1.0).abs() < 1e-6,
                    "{base:?} {name}: {got} vs {want}"
                );
            }
            assert!(f.rmse_log < 1e-9, "{}", f.rmse_log);
            assert_eq!(f.points, 90);
            assert!(f.plain >= 6 && f.repeated == 72, "{f:?}");
        }
    }

    #[test]
    fn bootstrap_intervals_cover_the_truth_under_noise() {
        use rand::{Rng, SeedableRng};
        let truth = DataConstrainedLaw::published();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let mut pts = design(&truth);
        for p in &mut pts {
            p.loss *= 1.0 + 0.004 * (rng.random::<f64>() - 0.5);
        }
        let f = fit(&pts, Base::Held(truth.base), 100, 1, 0.95).unwrap();
        assert!(f.bootstrap_succeeded >= 95, "{}", f.bootstrap_succeeded);
        for (name, want) in [("R*_D", truth.r_star_d), ("R*_N", truth.r_star_n)] {
            let e = &f.parameters[name];
            assert!(e.contains(want), "{name}: {e:?}");
        }
        // Held parameters carry no interval.
        assert!(
            f.parameters["alpha"].lo.is_nan(),
            "{:?}",
            f.parameters["alpha"]
        );
    }

    #[test]
    fn the_gradient_matches_finite_differences() {
        let truth = DataConstrainedLaw::published();
        let pts = design(&truth);
        let counts: Vec<Counts> = pts.iter().map(|p| Counts::of(p, &truth.base)).collect();
        let logs: Vec<f64> = pts.iter().map(|p| p.loss.ln()).collect();
        let obj = Huber {
            counts: &counts,
            log_loss: &logs,
            tied: false,
            free: [true; 7],
        };
        let x = vec![6.0, 7.5, 0.6, 0.33, 0.37, 2.5, 1.8];
        let (_, g) = obj.eval(&x, true, 1.0);
        for i in 0..x.len() {
            let h = 1e-6;
            let (mut up, mut down) = (x.clone(), x.clone());
            up[i] += h;
            down[i] -= h;
            let numeric = (obj.eval(&up, false, 1.0).0 - obj.eval(&down, false, 1.0).0) / (2.0 * h);
            assert!(
                (numeric - g[i]).abs() < 1e-6 * (1.0 + g[i].abs()),
                "{i}: {numeric} vs {}",
                g[i]
            );
        }
    }

    #[test]
    fn an_exact_law_extrapolates_exactly_and_chinchilla_does_not() {
        let truth = DataConstrainedLaw::published();
        let x = extrapolation(&design(&truth), Base::Tied, 0.95).unwrap();
        assert_eq!(x.law.held_out_points + x.law.train_points, 90);
        assert!(x.law.held_out_points >= 18, "{:?}", x.law);
        assert!(x.law.mean_abs_rel_error.value < 1e-6, "{:?}", x.law);
        // Blind to repetition, Chinchilla's law mispredicts the many-epoch runs.
        let blind = x.chinchilla.unwrap();
        assert!(blind.mean_abs_rel_error.value > 0.01, "{blind:?}");
    }

    #[test]
    fn refuses_designs_without_repetition_and_bad_values() {
        let law = DataConstrainedLaw::published();
        let single_epoch: Vec<ConstrainedObs> = design(&law)
            .into_iter()
            .filter(|p| p.d == p.unique)
            .collect();
        assert!(matches!(
            fit(&single_epoch, Base::Tied, 0, 0, 0.95),
            Err(FitError::NotIdentified(_))
        ));
        let mut bad = design(&law);
        bad[3].unique = -1.0;
        assert!(matches!(
            fit(&bad, Base::Tied, 0, 0, 0.95),
            Err(FitError::BadValue { row: 3, .. })
        ));
    }
}

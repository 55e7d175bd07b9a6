//! Chinchilla approach 2: for each isoFLOP budget fit a parabola of loss in log N; its vertex is
//! N_opt(C). Then N_opt = k C^a, D_opt = k' C^b and L_opt = k'' C^g across budgets.

use crate::allocation::{Allocation, ComputeOptimal};
use crate::data::{budget_compute, distinct_sizes, group_budgets, validate, Obs};
use crate::error::{FitError, FitResult};
use crate::floor::FloorPowerLaw;
use crate::regression::{Line, Parabola, PowerLaw};
use serde::{Deserialize, Serialize};

/// Settings of an approach-2 fit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Approach2Settings {
    /// Points whose compute differs by at most this factor from the previous one share a budget.
    pub budget_ratio: f64,
    /// Budgets whose vertex lies outside the sampled sizes are dropped from the frontier fit
    /// (they are always reported with a warning).
    pub drop_unbracketed: bool,
    /// Fit each parabola only to sizes within this many decades of the lowest-loss size (a parabola
    /// describes a profile only near its minimum); `None` uses every size.
    pub window_decades: Option<f64>,
    /// The loss frontier's floor E: held at this value, or fitted when `None` (which needs four
    /// usable budgets; with fewer, E is held at 0 with a warning).
    #[serde(default)]
    pub fixed_e: Option<f64>,
}

impl Default for Approach2Settings {
    fn default() -> Self {
        Approach2Settings {
            budget_ratio: 1.25,
            drop_unbracketed: true,
            window_decades: Some(0.5),
            fixed_e: None,
        }
    }
}

/// One isoFLOP profile and its fitted minimum.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IsoflopProfile {
    /// Nominal budget (geometric mean of the points' compute).
    pub c: f64,
    /// Number of points in the budget.
    pub points: usize,
    /// Parabola of loss in ln N.
    pub parabola: Parabola,
    /// N at the vertex.
    pub n_opt: f64,
    /// D at the vertex, from a log-log line of D against N within the budget.
    pub d_opt: f64,
    /// Loss at the vertex.
    pub loss_opt: f64,
    /// Whether the vertex lies inside the range of sampled sizes.
    pub bracketed: bool,
    /// Smallest and largest N sampled.
    pub n_range: (f64, f64),
}

/// A fitted approach-2 law.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approach2Fit {
    /// Every usable budget's profile.
    pub profiles: Vec<IsoflopProfile>,
    /// N_opt = k C^a.
    pub n_law: PowerLaw,
    /// D_opt = k' C^b.
    pub d_law: PowerLaw,
    /// L_opt = E + k'' C^-g through the profile minima.
    pub loss_law: FloorPowerLaw,
    /// Things the user should know (skipped budgets, unbracketed minima).
    pub warnings: Vec<String>,
}

impl ComputeOptimal for Approach2Fit {
    fn approach(&self) -> &'static str {
        "approach2"
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

/// The points of a budget within `window` decades of its lowest-loss size, widened to the nearest
/// sizes until at least 3 distinct sizes are in (a parabola needs 3).
fn near_minimum(points: &[Obs], group: &[usize], window: Option<f64>) -> Vec<usize> {
    let Some(w) = window else {
        return group.to_vec();
    };
    let best = group
        .iter()
        .copied()
        .min_by(|&a, &b| points[a].loss.total_cmp(&points[b].loss))
        .expect("non-empty");
    let centre = points[best].n.log10();
    let dist = |i: usize| (points[i].n.log10() - centre).abs();
    let mut by_distance = group.to_vec();
    by_distance.sort_by(|&a, &b| dist(a).total_cmp(&dist(b)));
    let mut out: Vec<usize> = Vec::new();
    for i in by_distance {
        if dist(i) <= w + 1e-12 || distinct_sizes(points, &out) < 3 {
            out.push(i);
        }
    }
    out
}

/// Fits one budget's profile; `Err` carries why the budget is unusable.
fn fit_profile(
    points: &[Obs],
    group: &[usize],
    window: Option<f64>,
) -> Result<IsoflopProfile, String> {
    let c = budget_compute(points, group);
    let group = &near_minimum(points, group, window);
    let sizes = distinct_sizes(points, group);
    if sizes < 3 {
        return Err(format!("budget {c:.3e}: {sizes} distinct sizes (needs 3)"));
    }
    let ln_n: Vec<f64> = group.iter().map(|&i| points[i].n.ln()).collect();
    let loss: Vec<f64> = group.iter().map(|&i| points[i].loss).collect();
    let ln_d: Vec<f64> = group.iter().map(|&i| points[i].d.ln()).collect();
    let parabola =
        Parabola::fit(&ln_n, &loss).ok_or(format!("budget {c:.3e}: parabola is singular"))?;
    if parabola.coef[2] <= 0.0 {
        return Err(format!(
            "budget {c:.3e}: loss is not convex in log N (no minimum)"
        ));
    }
    let x = parabola.vertex();
    let (lo, hi) = ln_n
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let d_line =
        Line::fit(&ln_n, &ln_d).ok_or(format!("budget {c:.3e}: D does not vary with N"))?;
    Ok(IsoflopProfile {
        c,
        points: group.len(),
        parabola,
        n_opt: x.exp(),
        d_opt: d_line.at(x).exp(),
        loss_opt: parabola.at(x),
        bracketed: x >= lo && x <= hi,
        n_range: (lo.exp(), hi.exp()),
    })
}

/// Fits approach 2.
pub fn fit(points: &[Obs], settings: &Approach2Settings) -> FitResult<Approach2Fit> {
    validate(points, "approach 2", 6)?;
    let mut warnings = Vec::new();
    let mut profiles = Vec::new();
    for group in group_budgets(points, settings.budget_ratio) {
        match fit_profile(points, &group, settings.window_decades) {
            Ok(p) => {
                if !p.bracketed {
                    warnings.push(format!(
                        "budget {:.3e}: the minimum (N = {:.3e}) is not bracketed by the sampled sizes {:.3e}..{:.3e}{}",
                        p.c,
                        p.n_opt,
                        p.n_range.0,
                        p.n_range.1,
                        if settings.drop_unbracketed { "; dropped" } else { "" }
                    ));
                    if settings.drop_unbracketed {
                        continue;
                    }
                }
                profiles.push(p)
            }
            Err(why) => warnings.push(format!("skipped {why}")),
        }
    }
    if profiles.len() < 2 {
        return Err(FitError::NoUsableBudget(format!(
            "{} usable budget(s); need 2. {}",
            profiles.len(),
            warnings.join("; ")
        )));
    }
    let cs: Vec<f64> = profiles.iter().map(|p| p.c).collect();
    let law = |f: fn(&IsoflopProfile) -> f64| {
        let ys: Vec<f64> = profiles.iter().map(f).collect();
        PowerLaw::fit(&cs, &ys).ok_or(FitError::NoUsableBudget(
            "budgets do not span a range of compute".into(),
        ))
    };
    let lo: Vec<f64> = profiles.iter().map(|p| p.loss_opt).collect();
    let floor = match settings.fixed_e {
        None if profiles.len() < 4 => {
            warnings.push(format!(
                "loss frontier: {} budgets cannot fit its floor E (needs 4); E held at 0, so the \
                 predicted losses are too low far beyond the data (hold E with --fix-e)",
                profiles.len()
            ));
            Some(0.0)
        }
        e => e,
    };
    let loss_law = FloorPowerLaw::fit(&cs, &lo, floor)
        .map_err(|why| FitError::NotFittable(format!("approach 2: loss frontier: {why}")))?;
    Ok(Approach2Fit {
        n_law: law(|p| p.n_opt)?,
        d_law: law(|p| p.d_opt)?,
        loss_law,
        profiles,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::approach3::ChinchillaLaw;

    fn isoflop_table(law: &ChinchillaLaw, budgets: &[f64], sizes_per_budget: usize) -> Vec<Obs> {
        let mut out = Vec::new();
        for &c in budgets {
            let centre = law.allocation(c).n_opt;
            for k in 0..sizes_per_budget {
                let f = (k as f64 - (sizes_per_budget - 1) as f64 / 2.0) * 0.5;
                let n = centre * f.exp();
                let d = c / (6.0 * n);
                out.push(Obs {
                    n,
                    d,
                    c,
                    loss: law.loss(n, d),
                    run: 0,
                });
            }
        }
        out
    }

    #[test]
    fn recovers_chinchilla_optimum_from_exact_law() {
        let law = ChinchillaLaw::hoffmann2022();
        let pts = isoflop_table(&law, &[1e18, 1e19, 1e20, 1e21], 9);
        let f = fit(&pts, &Approach2Settings::default()).unwrap();
        // Parabolas approximate the true profile; the exponent is close to beta/(alpha+beta).
        assert!(
            (f.n_law.exponent - law.exponents().0).abs() < 0.01,
            "a = {}",
            f.n_law.exponent
        );
        let c = 1e20;
        let ratio = f.allocation(c).n_opt / law.allocation(c).n_opt;
        assert!((ratio - 1.0).abs() < 0.05, "ratio {ratio}");
        assert!(f.warnings.is_empty(), "{:?}", f.warnings);
    }

    #[test]
    fn loss_frontier_keeps_to_the_floor_far_beyond_the_data() {
        let law = ChinchillaLaw::hoffmann2022();
        let pts = isoflop_table(&law, &[1e18, 1e19, 1e20, 1e21], 9);
        for fixed_e in [Some(law.e), None] {
            let s = Approach2Settings {
                fixed_e,
                ..Approach2Settings::default()
            };
            let f = fit(&pts, &s).unwrap();
            // At 1e26 FLOPs, 10^5 beyond the data, the true optimal loss is 1.82 (E = 1.69); a pure
            // power law through the four minima predicts 1.56, below the floor.
            let (pred, truth) = (f.allocation(1e26).loss, law.allocation(1e26).loss);
            assert!(
                pred > law.e - 0.02,
                "{fixed_e:?}: {pred} below E = {}",
                law.e
            );
            assert!(
                (pred / truth - 1.0).abs() < 0.03,
                "{fixed_e:?}: {pred} vs {truth}"
            );
            assert!(f.allocation(1e40).loss >= f.loss_law.floor);
        }
        let pure = crate::regression::PowerLaw::fit(
            &[1e18, 1e19, 1e20, 1e21],
            &[1e18, 1e19, 1e20, 1e21].map(|c| law.allocation(c).loss),
        )
        .unwrap();
        assert!(pure.at(1e26) < law.e, "{}", pure.at(1e26));
    }

    #[test]
    fn unbracketed_minimum_warns_and_too_few_sizes_is_an_error() {
        let law = ChinchillaLaw::hoffmann2022();
        let mut pts = isoflop_table(&law, &[1e18, 1e19, 1e20], 5);
        // Shift the last budget's sizes far above the optimum.
        for p in pts.iter_mut().filter(|p| p.c == 1e20) {
            p.n *= 30.0;
            p.d = p.c / (6.0 * p.n);
            p.loss = law.loss(p.n, p.d);
        }
        let f = fit(&pts, &Approach2Settings::default()).unwrap();
        assert!(
            f.warnings.iter().any(|w| w.contains("not bracketed")),
            "{:?}",
            f.warnings
        );

        let two_sizes = isoflop_table(&law, &[1e18, 1e19, 1e20], 2);
        let err = fit(&two_sizes, &Approach2Settings::default()).unwrap_err();
        assert!(err.to_string().contains("3 distinct model sizes"), "{err}");
    }
}

//! The sub-task explanation of a jump: a composite task succeeds only when each of its steps does,
//! so its exact match is the joint success of the steps and, where they are independent, the
//! product of their accuracies; it can jump while every step rises smoothly (the chess example:
//! checkmates rise abruptly while legal moves rise steadily).
//!
//! The check asks whether the steps' own curves have no jump as sharp as the composite's (not
//! jump-shaped, or a sigmoid at least twice as wide) and whether the product of the step
//! accuracies falls inside the composite's 95% interval (give or take 0.02) at 80% of the models:
//! then the jump is "explained by sub-tasks", else "not explained by sub-tasks".

use crate::emergence::{share_inside, smooth_beside, JumpFit, MetricPoint};
use crate::regression::weighted_line;
use serde::{Deserialize, Serialize};

/// The sub-task check of a composite's jump.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubtaskCheck {
    /// "explained by sub-tasks" or "not explained by sub-tasks".
    pub label: String,
    /// Whether no step has a jump of its own as sharp as the composite's.
    pub steps_smooth: bool,
    /// Share of models where the product of the step accuracies lies in the composite's 95%
    /// interval (give or take 0.02).
    pub reproduced_share: f64,
    /// Per model: (x, the composite's exact match, the product of its steps' accuracies).
    pub predicted: Vec<(f64, f64, f64)>,
}

/// A step's sigmoid must be at least this many times as wide as the composite's for the step to
/// count as rising more smoothly than the composite jumps. A product of k equal logistic steps is
/// itself close to a logistic only 1.19 (k = 2), 1.32 (k = 4) or 1.37 (k = 7) times narrower than
/// each step (least squares over the whole curve), so the mirage check's factor 2 would refuse
/// the very case the sub-task explanation describes; a step that carries the jump alone has a
/// factor 1.
pub const STEPS_WIDER: f64 = 1.25;

/// Checks whether the composite's jump (`jump`, the detection on `composite`) is the product of
/// its steps' accuracies (`steps`, one curve per step on the same models).
pub fn subtask_check(
    jump: &JumpFit,
    composite: &[MetricPoint],
    steps: &[Vec<MetricPoint>],
) -> SubtaskCheck {
    let steps_smooth = steps
        .iter()
        .all(|s| smooth_beside(jump, s, 0.0, STEPS_WIDER));
    let predicted: Vec<(f64, f64, f64)> = composite
        .iter()
        .filter_map(|c| Some((c.x, c.value, step_product(steps, c.x)?)))
        .collect();
    let reproduced_share = share_inside(composite, &predicted);
    let label = if steps_smooth && !steps.is_empty() && reproduced_share >= 0.8 {
        "explained by sub-tasks"
    } else {
        "not explained by sub-tasks"
    };
    SubtaskCheck {
        label: label.into(),
        steps_smooth,
        reproduced_share,
        predicted,
    }
}

/// The product of the steps' accuracies at `x` (None when a step was not evaluated there).
pub fn step_product(steps: &[Vec<MetricPoint>], x: f64) -> Option<f64> {
    steps.iter().try_fold(1.0, |acc, s| {
        let p = s.iter().find(|p| (p.x - x).abs() < 1e-9)?;
        Some(acc * p.value.clamp(0.0, 1.0))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emergence::{curve, detect};

    #[test]
    fn a_product_of_smooth_steps_explains_the_jump() {
        // Six steps, each rising smoothly: their product rises sharply.
        let p = |x: f64| 0.45 + 0.09 * (x - 10.0);
        let steps: Vec<Vec<MetricPoint>> = (0..6).map(|_| curve(p, 2000)).collect();
        let composite = curve(|x| p(x).powi(6), 2000);
        let jump = detect(&composite, 0.0);
        let check = subtask_check(&jump, &composite, &steps);
        assert_eq!(check.label, "explained by sub-tasks", "{check:?}");
        assert!(check.steps_smooth && check.reproduced_share == 1.0);
    }

    #[test]
    fn a_product_of_logistic_steps_explains_the_jump() {
        // Four steps, each logistic in x (midpoint 12.5, width 0.5): their product is sharper,
        // though only about 1.3 times, not twice.
        let p = |x: f64| 1.0 / (1.0 + (-(x - 12.5) / 0.5).exp());
        let steps: Vec<Vec<MetricPoint>> = (0..4).map(|_| curve(p, 2000)).collect();
        let composite = curve(|x| p(x).powi(4), 2000);
        let jump = detect(&composite, 0.0);
        assert_ne!(jump.verdict, crate::emergence::Verdict::Smooth, "{jump:?}");
        let step = detect(&steps[0], 0.0);
        let ratio = step.sigmoid.width / jump.sigmoid.width;
        assert!((STEPS_WIDER..2.0).contains(&ratio), "width ratio {ratio}");
        let check = subtask_check(&jump, &composite, &steps);
        assert_eq!(check.label, "explained by sub-tasks", "{check:?}");
    }

    #[test]
    fn a_jump_the_steps_do_not_multiply_to_is_not_explained() {
        let p = |x: f64| 0.45 + 0.09 * (x - 10.0);
        let steps: Vec<Vec<MetricPoint>> = (0..2).map(|_| curve(p, 2000)).collect();
        let composite = curve(|x| if x < 13.2 { 0.0 } else { 0.9 }, 2000);
        let jump = detect(&composite, 0.0);
        let check = subtask_check(&jump, &composite, &steps);
        assert_eq!(check.label, "not explained by sub-tasks", "{check:?}");
        assert!(check.steps_smooth);
        // Steps that jump with the composite multiply to it but do not explain it.
        let step = |x: f64| if x < 13.2 { 0.0 } else { 0.95 };
        let steps: Vec<Vec<MetricPoint>> = (0..2).map(|_| curve(step, 2000)).collect();
        let composite = curve(|x| step(x) * step(x), 2000);
        let jump = detect(&composite, 0.0);
        let check = subtask_check(&jump, &composite, &steps);
        assert!(!check.steps_smooth, "{check:?}");
        assert_eq!(check.label, "not explained by sub-tasks");
    }
}

/// A prediction of where a composite crosses 50%, from the models below its jump only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrossingPrediction {
    /// Models the prediction was fitted on (x below the composite's jump, x0 - 2 widths).
    pub fitted_on: usize,
    /// Predicted x at which the product of the steps' fitted accuracies reaches 0.5 (None: not
    /// within 3 units of x past the largest model).
    pub predicted: Option<f64>,
    /// Observed crossing: the x where the composite's exact match first reaches 0.5, linearly
    /// interpolated between the models around it (None: it never does).
    pub observed: Option<f64>,
    /// predicted - observed, in units of x (decades).
    pub error: Option<f64>,
}

/// The line of logit(accuracy) against x through `points`, weighted by n / (p (1 - p)) (the
/// inverse variance of a logit): (intercept, slope).
fn logit_line(points: &[&MetricPoint]) -> Option<(f64, f64)> {
    let (mut x, mut y, mut w) = (Vec::new(), Vec::new(), Vec::new());
    for p in points {
        let q = p.value.clamp(1e-4, 1.0 - 1e-4);
        x.push(p.x);
        y.push((q / (1.0 - q)).ln());
        w.push(p.n.max(1) as f64 * q * (1.0 - q));
    }
    let line = weighted_line(&x, &y, &w);
    (line.sxx > 0.0).then_some((line.intercept, line.slope))
}

/// Predicts where the composite crosses 50% from the models below its jump only: each step's
/// accuracy extrapolated by a line in logit(accuracy) against x, multiplied over the steps; and
/// compares it with where the composite's exact match actually crosses 50% (a held-out check like
/// the scaling laws' extrapolation check).
pub fn predict_crossing(
    jump: &JumpFit,
    composite: &[MetricPoint],
    steps: &[Vec<MetricPoint>],
) -> CrossingPrediction {
    let cut = jump.sigmoid.x0 - 2.0 * jump.sigmoid.width;
    let mut lines = Vec::new();
    let mut fitted_on = usize::MAX;
    for s in steps {
        let below: Vec<&MetricPoint> = s.iter().filter(|p| p.x < cut).collect();
        fitted_on = fitted_on.min(below.len());
        lines.push(if below.len() >= 2 {
            logit_line(&below)
        } else {
            None
        });
    }
    let product = |x: f64| -> Option<f64> {
        lines.iter().try_fold(1.0, |acc, l| {
            let (a, b) = (*l)?;
            Some(acc / (1.0 + (-(a + b * x)).exp()))
        })
    };
    let (start, last) = match composite.is_empty() {
        true => (0.0, 0.0),
        false => (
            composite.iter().map(|p| p.x).fold(f64::INFINITY, f64::min),
            composite
                .iter()
                .map(|p| p.x)
                .fold(f64::NEG_INFINITY, f64::max),
        ),
    };
    let predicted = (!steps.is_empty() && fitted_on >= 2)
        .then(|| {
            let (mut lo, mut hi) = (start, last + 3.0);
            if product(lo)? >= 0.5 || product(hi)? < 0.5 {
                return None;
            }
            for _ in 0..60 {
                let mid = (lo + hi) / 2.0;
                if product(mid)? < 0.5 {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            Some((lo + hi) / 2.0)
        })
        .flatten();
    let observed = observed_half(composite);
    CrossingPrediction {
        fitted_on: if fitted_on == usize::MAX {
            0
        } else {
            fitted_on
        },
        predicted,
        observed,
        error: predicted.zip(observed).map(|(p, o)| p - o),
    }
}

/// The x where `points` (one metric against x) first reach 0.5, linearly interpolated between the
/// models around it; None when they never do.
pub fn observed_half(points: &[MetricPoint]) -> Option<f64> {
    let mut sorted: Vec<&MetricPoint> = points.iter().collect();
    sorted.sort_by(|a, b| a.x.total_cmp(&b.x));
    sorted.windows(2).find_map(|w| {
        let (a, b) = (w[0], w[1]);
        (a.value < 0.5 && b.value >= 0.5)
            .then(|| a.x + (0.5 - a.value) / (b.value - a.value) * (b.x - a.x))
    })
}

#[cfg(test)]
mod prediction_tests {
    use super::*;
    use crate::emergence::detect;

    #[test]
    fn smooth_logistic_steps_predict_the_crossing() {
        // Four steps, each logistic in x (midpoint 11, slope 1.5 per unit): their product crosses
        // 0.5 where each step is 0.5^(1/4) = 0.841, at x = 11 + logit(0.841) / 1.5 = 12.11.
        let step = |x: f64| 1.0 / (1.0 + (-(1.5 * (x - 11.0))).exp());
        let pts = |f: &dyn Fn(f64) -> f64| -> Vec<MetricPoint> {
            (0..16)
                .map(|i| {
                    let x = 9.0 + 0.3 * i as f64;
                    MetricPoint {
                        x,
                        value: f(x),
                        n: 5000,
                    }
                })
                .collect()
        };
        let steps: Vec<Vec<MetricPoint>> = (0..4).map(|_| pts(&step)).collect();
        let composite = pts(&|x| step(x).powi(4));
        let jump = detect(&composite, 0.0);
        let p = predict_crossing(&jump, &composite, &steps);
        let want = 11.0 + (0.5f64.powf(0.25) / (1.0 - 0.5f64.powf(0.25))).ln() / 1.5;
        assert!(p.fitted_on >= 3, "{p:?}");
        assert!(
            (p.predicted.unwrap() - want).abs() < 0.02,
            "{p:?} vs {want}"
        );
        // The observed crossing interpolates between the models around it (0.3 apart).
        assert!((p.observed.unwrap() - want).abs() < 0.1, "{p:?}");
        assert!(p.error.unwrap().abs() < 0.1);
    }

    #[test]
    fn no_models_below_the_jump_predict_nothing() {
        let composite: Vec<MetricPoint> = (0..6)
            .map(|i| MetricPoint {
                x: 10.0 + i as f64,
                value: 0.9,
                n: 100,
            })
            .collect();
        let jump = detect(&composite, 0.0);
        let p = predict_crossing(&jump, &composite, std::slice::from_ref(&composite));
        assert_eq!(p.predicted, None);
        assert_eq!(p.observed, None);
    }
}

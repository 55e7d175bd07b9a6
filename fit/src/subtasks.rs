//! The sub-task explanation of a jump: a composite task succeeds only when each of its steps does,
//! so its exact match is the joint success of the steps and, where they are independent, the
//! product of their accuracies; it can jump while every step rises smoothly (the chess example:
//! checkmates rise abruptly while legal moves rise steadily).
//!
//! The check asks whether the steps' own curves have no jump as sharp as the composite's (not
//! jump-shaped, or a sigmoid at least twice as wide) and whether the product of the step
//! accuracies falls inside the composite's 95% interval (give or take 0.02) at 80% of the models:
//! then the jump is "explained by sub-tasks", else "not explained by sub-tasks".

use crate::emergence::{detect, wilson, JumpFit, MetricPoint};
use serde::{Deserialize, Serialize};

/// A step's sigmoid must be at least this many times wider than the composite's to count as a
/// smooth rise beside the jump (as for the mirage check's continuous metric).
const SMOOTHER: f64 = 2.0;

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

/// Checks whether the composite's jump (`jump`, the detection on `composite`) is the product of
/// its steps' accuracies (`steps`, one curve per step on the same models).
pub fn subtask_check(
    jump: &JumpFit,
    composite: &[MetricPoint],
    steps: &[Vec<MetricPoint>],
) -> SubtaskCheck {
    let span = |pts: &[MetricPoint]| {
        pts.iter().map(|p| p.x).fold(f64::NEG_INFINITY, f64::max)
            - pts.iter().map(|p| p.x).fold(f64::INFINITY, f64::min)
    };
    let steps_smooth = steps.iter().all(|s| {
        let own = detect(s, 0.0);
        !own.jump_shaped(span(s)) || own.sigmoid.width >= SMOOTHER * jump.sigmoid.width
    });
    let predicted: Vec<(f64, f64, f64)> = composite
        .iter()
        .filter_map(|c| {
            let product = steps.iter().try_fold(1.0, |acc, s| {
                let p = s.iter().find(|p| (p.x - c.x).abs() < 1e-9)?;
                Some(acc * p.value.clamp(0.0, 1.0))
            })?;
            Some((c.x, c.value, product))
        })
        .collect();
    let inside = composite
        .iter()
        .filter(|c| {
            predicted.iter().any(|p| {
                let (lo, hi) = wilson(c.value, c.n, 1.96);
                (p.0 - c.x).abs() < 1e-9 && p.2 >= lo - 0.02 && p.2 <= hi + 0.02
            })
        })
        .count();
    let reproduced_share = inside as f64 / predicted.len().max(1) as f64;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(f: impl Fn(f64) -> f64, n: usize) -> Vec<MetricPoint> {
        (0..12)
            .map(|i| {
                let x = 10.0 + 0.5 * i as f64;
                MetricPoint { x, value: f(x), n }
            })
            .collect()
    }

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

//! The loss axis of emergence (Du et al. 2024): a task metric against the model's validation loss
//! instead of its size or compute. If abilities appear below a loss threshold that is the same for
//! every size, the metric at every evaluation of every run falls on one curve of the loss; if not,
//! models of different sizes reach the ability at different losses.
//!
//! The test fits one sigmoid in -loss (from chance, binomial likelihood, as [`crate::emergence`])
//! to every point, and one sigmoid per group (a model size) to the same points, and compares them
//! by BIC: the shared curve wins when the groups collapse onto it. The threshold is the loss at the
//! shared curve's midpoint.

use crate::emergence::{
    bic, detect, rises_in_data, sigmoid_fit, x_span, MetricPoint, Sigmoid, MIN_RISE,
};
use serde::{Deserialize, Serialize};

/// One evaluation of one run: its validation loss, the metric and the examples behind it, and the
/// model size (the group it belongs to).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LossPoint {
    /// Validation loss at the evaluation (nats per token).
    pub loss: f64,
    /// Metric value (a proportion).
    pub value: f64,
    /// Examples evaluated.
    pub n: usize,
    /// The model's size (parameters): evaluations of one size form a group.
    pub size: f64,
}

/// What the loss-axis test concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Collapse {
    /// One curve of the loss describes every group: a loss threshold independent of size.
    Collapses,
    /// The groups reach the ability at different losses.
    DoesNotCollapse,
    /// Too few groups or points, or no rise on the loss axis.
    InsufficientResolution,
}

/// The loss-axis test of one task metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LossAxis {
    /// Verdict.
    pub verdict: Collapse,
    /// Validation loss at the shared curve's midpoint (nats).
    #[serde(deserialize_with = "crate::bootstrap::null_as_nan")]
    pub threshold: f64,
    /// The shared curve's width, in nats of validation loss.
    #[serde(deserialize_with = "crate::bootstrap::null_as_nan")]
    pub width: f64,
    /// The shared curve's top.
    #[serde(deserialize_with = "crate::bootstrap::null_as_nan")]
    pub top: f64,
    /// BIC of one curve for every group.
    #[serde(deserialize_with = "crate::bootstrap::null_as_nan")]
    pub bic_shared: f64,
    /// BIC of one curve per group.
    #[serde(deserialize_with = "crate::bootstrap::null_as_nan")]
    pub bic_separate: f64,
    /// Each size's own midpoint (its loss threshold), with its point count, by size.
    pub thresholds: Vec<(f64, f64, usize)>,
    /// Why.
    pub reason: String,
    /// The points tested (sizes with enough evaluations), for the figure.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub points: Vec<LossPoint>,
}

impl LossAxis {
    /// The shared curve at validation loss `loss`, from `chance` (the metric's chance level).
    pub fn shared_at(&self, loss: f64, chance: f64) -> f64 {
        Sigmoid {
            floor: chance,
            top: self.top,
            x0: -self.threshold,
            width: self.width,
        }
        .at(-loss)
    }
}

/// Fewest points a group needs to get its own curve.
const MIN_GROUP_POINTS: usize = 3;

fn as_metric(points: &[&LossPoint]) -> Vec<MetricPoint> {
    points
        .iter()
        .map(|p| MetricPoint {
            x: -p.loss,
            value: p.value,
            n: p.n,
        })
        .collect()
}

/// Tests whether the groups' metric collapses onto one curve of the validation loss; `chance` is
/// the metric's chance level.
pub fn loss_axis(points: &[LossPoint], chance: f64) -> LossAxis {
    let mut by_size: Vec<&LossPoint> = points.iter().collect();
    by_size.sort_by(|a, b| a.size.total_cmp(&b.size));
    let mut groups: Vec<(f64, Vec<&LossPoint>)> = Vec::new();
    for p in by_size {
        match groups.last_mut() {
            Some((size, g)) if *size == p.size => g.push(p),
            _ => groups.push((p.size, vec![p])),
        }
    }
    groups.retain(|(_, g)| g.len() >= MIN_GROUP_POINTS);
    let kept: Vec<&LossPoint> = groups.iter().flat_map(|(_, g)| g.iter().copied()).collect();
    let all = as_metric(&kept);
    let (shared, ll_shared) = sigmoid_fit(&all, chance);
    let mut ll_separate = 0.0;
    let mut thresholds = Vec::new();
    for (size, g) in &groups {
        let (s, ll) = sigmoid_fit(&as_metric(g), chance);
        ll_separate += ll;
        thresholds.push((*size, -s.x0, g.len()));
    }
    let m = all.len();
    let (bic_shared, bic_separate) = (bic(ll_shared, m, 3), bic(ll_separate, m, 3 * groups.len()));
    let result = |verdict, reason: String| LossAxis {
        verdict,
        threshold: -shared.x0,
        width: shared.width,
        top: shared.top,
        bic_shared,
        bic_separate,
        thresholds: thresholds.clone(),
        reason,
        points: kept.iter().map(|p| (*p).clone()).collect(),
    };
    if groups.len() < 2 {
        return result(
            Collapse::InsufficientResolution,
            format!(
                "{} group(s) with {MIN_GROUP_POINTS}+ evaluations: nothing to collapse",
                groups.len()
            ),
        );
    }
    // The metric must rise in the data, not only in a sigmoid extrapolated past it.
    let highest = all
        .iter()
        .map(|p| p.value)
        .fold(f64::NEG_INFINITY, f64::max);
    if !rises_in_data(&all, chance)
        || !(detect(&all, chance).jump_shaped(x_span(&all)) || rises(&shared, chance))
    {
        return result(
            Collapse::InsufficientResolution,
            format!("no rise of the metric on the loss axis (its highest value {highest:.3})"),
        );
    }
    let spread = thresholds
        .iter()
        .map(|t| t.1)
        .fold(f64::NEG_INFINITY, f64::max)
        - thresholds.iter().map(|t| t.1).fold(f64::INFINITY, f64::min);
    if bic_shared <= bic_separate {
        result(
            Collapse::Collapses,
            format!(
                "one curve of the loss fits {} sizes (BIC {bic_shared:.1} vs {bic_separate:.1} \
                 apart): threshold {:.3} nats (width {:.3})",
                groups.len(),
                -shared.x0,
                shared.width
            ),
        )
    } else {
        result(
            Collapse::DoesNotCollapse,
            format!(
                "the {} sizes reach the metric at different losses (their midpoints span {spread:.3} \
                 nats; BIC {bic_separate:.1} apart vs {bic_shared:.1} shared)",
                groups.len()
            ),
        )
    }
}

/// Whether a fitted sigmoid rises by at least [`MIN_RISE`] above chance.
fn rises(s: &Sigmoid, chance: f64) -> bool {
    s.top - chance >= MIN_RISE
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three sizes evaluated 8 times each over overlapping ranges of loss, the metric a sigmoid of
    /// the loss with midpoint `threshold(size)` (width 0.05 nats, top 0.9), 500 examples a point.
    fn sizes(threshold: impl Fn(usize) -> f64) -> Vec<LossPoint> {
        let mut out = Vec::new();
        for g in 0..3 {
            for i in 0..8 {
                let loss = 2.4 - 0.1 * g as f64 - 0.12 * i as f64;
                let value = 0.9 / (1.0 + ((loss - threshold(g)) / 0.05).exp());
                out.push(LossPoint {
                    loss,
                    value,
                    n: 500,
                    size: 1e4 * (g + 1) as f64,
                });
            }
        }
        out
    }

    #[test]
    fn one_threshold_for_every_size_collapses() {
        let a = loss_axis(&sizes(|_| 1.8), 0.0);
        assert_eq!(a.verdict, Collapse::Collapses, "{}", a.reason);
        assert!((a.threshold - 1.8).abs() < 0.03, "{a:?}");
        // The shared curve, as the figure draws it, is half way up at the threshold.
        assert!((a.shared_at(a.threshold, 0.0) - a.top / 2.0).abs() < 1e-12);
        assert_eq!(a.points.len(), 24);
    }

    #[test]
    fn thresholds_that_move_with_size_do_not_collapse() {
        let a = loss_axis(&sizes(|g| 1.6 + 0.2 * g as f64), 0.0);
        assert_eq!(a.verdict, Collapse::DoesNotCollapse, "{}", a.reason);
        let mids: Vec<f64> = a.thresholds.iter().map(|t| t.1).collect();
        for (m, want) in mids.iter().zip([1.6, 1.8, 2.0]) {
            assert!((m - want).abs() < 0.05, "{mids:?}");
        }
    }

    #[test]
    fn a_metric_that_stays_low_in_the_data_is_insufficient() {
        // A sigmoid to 0.9 whose data stop at 0.05: only the extrapolation rises.
        let low: Vec<LossPoint> = sizes(|_| 1.0)
            .into_iter()
            .filter(|p| p.value < 0.05)
            .collect();
        assert!(low.len() >= 12);
        let a = loss_axis(&low, 0.0);
        assert_eq!(a.verdict, Collapse::InsufficientResolution, "{}", a.reason);
    }

    #[test]
    fn an_insufficient_result_reads_back_from_json() {
        // One evaluation per size: no group to fit, NaN figures written as null.
        let one_each: Vec<LossPoint> = sizes(|_| 1.8).into_iter().step_by(8).collect();
        let a = loss_axis(&one_each, 0.0);
        assert_eq!(a.verdict, Collapse::InsufficientResolution);
        let back: LossAxis = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        assert_eq!(back.verdict, a.verdict);
        assert_eq!(back.threshold.is_finite(), a.threshold.is_finite());
    }

    #[test]
    fn a_flat_metric_or_one_size_is_insufficient() {
        let flat: Vec<LossPoint> = sizes(|_| 0.0)
            .into_iter()
            .map(|p| LossPoint { value: 0.0, ..p })
            .collect();
        assert_eq!(
            loss_axis(&flat, 0.0).verdict,
            Collapse::InsufficientResolution
        );
        let one: Vec<LossPoint> = sizes(|_| 1.8)
            .into_iter()
            .filter(|p| p.size == 1e4)
            .collect();
        assert_eq!(
            loss_axis(&one, 0.0).verdict,
            Collapse::InsufficientResolution
        );
    }
}

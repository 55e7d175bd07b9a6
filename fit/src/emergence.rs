//! Emergence: is there a jump in a task metric against log compute (or log N), and does the metric
//! explain it away?
//!
//! A smooth model (a line in x) is compared with a sigmoid rising from chance,
//! y = chance + (top - chance) / (1 + exp(-(x - x0) / w)), both fitted by binomial maximum
//! likelihood (each point is value x n successes in n examples), by BIC.
//! A jump needs the sigmoid to win clearly, a width below a quarter of the x range, points before
//! it that are at chance (their 95% interval reaches chance, give or take 1% of the jump's height:
//! one lucky answer in 600 does not make a rise), and enough examples to tell the levels apart; otherwise the verdict is "smooth" or "insufficient resolution". The mirage check
//! (Schaeffer et al. 2023) then asks whether a continuous metric on the same outputs rises smoothly
//! and whether per-token accuracy raised to the answer length reproduces the jump: if both, the jump
//! is "metric-induced", else "not explained by the metric".

use serde::{Deserialize, Serialize};

/// One evaluated model: x (log10 compute or log10 N), the metric, and the examples behind it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MetricPoint {
    /// log10 of compute or parameters.
    pub x: f64,
    /// Metric value (a proportion for accuracies).
    pub value: f64,
    /// Examples evaluated.
    pub n: usize,
}

/// The sigmoid of a fit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sigmoid {
    /// Lower asymptote (chance).
    pub floor: f64,
    /// Upper asymptote.
    pub top: f64,
    /// Transition point (x at the midpoint).
    pub x0: f64,
    /// Width (x units for a factor e in the odds).
    pub width: f64,
}

impl Sigmoid {
    /// The curve at x.
    pub fn at(&self, x: f64) -> f64 {
        self.floor + (self.top - self.floor) / (1.0 + (-(x - self.x0) / self.width).exp())
    }
}

/// What the detector concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// A sharp rise from chance.
    Jump,
    /// No jump: a smooth curve explains the data as well.
    Smooth,
    /// A jump-like shape the examples cannot resolve (too few examples or points around it).
    InsufficientResolution,
}

/// The comparison of the two models on one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JumpFit {
    /// Verdict.
    pub verdict: Verdict,
    /// BIC of the line.
    pub bic_smooth: f64,
    /// BIC of the sigmoid.
    pub bic_sigmoid: f64,
    /// The best sigmoid.
    pub sigmoid: Sigmoid,
    /// Whether every point before x0 - 3.9 widths has a 95% interval reaching chance, give or take
    /// [`CHANCE_TOLERANCE`] of the jump's height.
    pub before_at_chance: bool,
    /// Why the verdict is what it is.
    pub reason: String,
}

/// How far above chance (as a fraction of the jump's height, top - chance) a point's 95% interval
/// may start and the point still count as at chance.
pub const CHANCE_TOLERANCE: f64 = 0.01;

/// The Wilson score interval of a proportion `p` observed in `n` trials at normal quantile `z`
/// (1.96 for 95%); (0, 1) without trials.
pub fn wilson(p: f64, n: usize, z: f64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let n = n as f64;
    let denom = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / denom;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// Probabilities are kept this far from 0 and 1 in the likelihood.
const EPS: f64 = 1e-6;

/// Binomial log-likelihood of the points under the curve `mu` (each point is `value` x `n`
/// successes in `n` trials; the constant binomial coefficient is left out).
fn log_likelihood(points: &[MetricPoint], mu: impl Fn(f64) -> f64) -> f64 {
    points
        .iter()
        .map(|p| {
            let m = mu(p.x).clamp(EPS, 1.0 - EPS);
            let v = p.value.clamp(0.0, 1.0);
            p.n.max(1) as f64 * (v * m.ln() + (1.0 - v) * (1.0 - m).ln())
        })
        .sum()
}

/// BIC of a fit with log-likelihood `ll` and `k` parameters on `m` points.
pub(crate) fn bic(ll: f64, m: usize, k: usize) -> f64 {
    -2.0 * ll + k as f64 * (m as f64).ln()
}

/// Weighted least-squares line through the points: (intercept at 0, slope).
fn wls_line(points: &[MetricPoint], w: &[f64]) -> (f64, f64) {
    let (x, y): (Vec<f64>, Vec<f64>) = points.iter().map(|p| (p.x, p.value)).unzip();
    let line = crate::regression::weighted_line(&x, &y, w);
    (line.intercept, line.slope)
}

/// Maximum-likelihood line (identity link, clamped to (0, 1)) by iteratively reweighted least
/// squares; returns its log-likelihood.
fn line_fit(points: &[MetricPoint]) -> f64 {
    let mut w: Vec<f64> = points.iter().map(|p| p.n.max(1) as f64).collect();
    let mut best = f64::NEG_INFINITY;
    for _ in 0..30 {
        let (a, b) = wls_line(points, &w);
        best = best.max(log_likelihood(points, |x| a + b * x));
        w = points
            .iter()
            .map(|p| {
                let m = (a + b * p.x).clamp(0.01, 0.99);
                p.n.max(1) as f64 / (m * (1.0 - m))
            })
            .collect();
    }
    best
}

/// Maximum-likelihood sigmoid from `floor`: a grid over (x0, width), the amplitude by golden-section
/// search (the likelihood is concave in it), capped so the top is at most 1. Returns the sigmoid
/// and its log-likelihood.
pub(crate) fn sigmoid_fit(points: &[MetricPoint], floor: f64) -> (Sigmoid, f64) {
    let (lo, hi) = points
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
            (a.min(p.x), b.max(p.x))
        });
    let span = (hi - lo).max(1e-9);
    let mut best = (
        Sigmoid {
            floor,
            top: floor,
            x0: lo,
            width: span,
        },
        f64::NEG_INFINITY,
    );
    for i in 0..=80 {
        let x0 = lo - 0.1 * span + 1.2 * span * i as f64 / 80.0;
        for j in 0..=40 {
            let width = span * 10f64.powf(-2.5 + 2.5 * j as f64 / 40.0);
            let shape = |x: f64| 1.0 / (1.0 + (-(x - x0) / width).exp());
            let ll = |amp: f64| log_likelihood(points, |x| floor + amp * shape(x));
            let (mut a, mut b) = (0.0, (1.0 - floor).max(0.0));
            let g = (5f64.sqrt() - 1.0) / 2.0;
            for _ in 0..40 {
                let (c, d) = (b - g * (b - a), a + g * (b - a));
                if ll(c) < ll(d) {
                    a = c;
                } else {
                    b = d;
                }
            }
            let amp = (a + b) / 2.0;
            let value = ll(amp);
            if value > best.1 {
                best = (
                    Sigmoid {
                        floor,
                        top: floor + amp,
                        x0,
                        width,
                    },
                    value,
                );
            }
        }
    }
    best
}

/// Points further than this many widths from x0 are before (after) the jump: there the fitted
/// sigmoid is within 2% of its floor (top), ln 49 = 3.9 widths away.
const EDGE: f64 = 3.9;

/// For the mirage check, the continuous metric's own sigmoid must be at least this many times
/// wider than the jump's for its rise to count as smooth beside the jump.
pub(crate) const SMOOTHER: f64 = 2.0;

/// How far above chance a metric must get in the data to count as rising at all.
pub const MIN_RISE: f64 = 0.1;

/// Whether the highest of `points` is at least [`MIN_RISE`] above `chance`.
pub fn rises_in_data(points: &[MetricPoint], chance: f64) -> bool {
    points
        .iter()
        .map(|p| p.value)
        .fold(f64::NEG_INFINITY, f64::max)
        - chance
        >= MIN_RISE
}

/// Whether `points` rise smoothly beside `jump`: detected from `floor`, not jump-shaped, or a
/// sigmoid at least `wider` times as wide as the jump's.
pub(crate) fn smooth_beside(
    jump: &JumpFit,
    points: &[MetricPoint],
    floor: f64,
    wider: f64,
) -> bool {
    let own = detect(points, floor);
    !own.jump_shaped(x_span(points)) || own.sigmoid.width >= wider * jump.sigmoid.width
}

/// Share of `predicted` (x, observed, predicted) whose prediction lies inside the 95% interval of
/// the point of `discrete` at the same x, give or take 0.02.
pub(crate) fn share_inside(discrete: &[MetricPoint], predicted: &[(f64, f64, f64)]) -> f64 {
    let inside = discrete
        .iter()
        .filter(|d| {
            predicted.iter().any(|p| {
                let (lo, hi) = wilson(d.value, d.n, 1.96);
                (p.0 - d.x).abs() < 1e-9 && p.2 >= lo - 0.02 && p.2 <= hi + 0.02
            })
        })
        .count();
    inside as f64 / predicted.len().max(1) as f64
}

/// The range of x of the points.
pub(crate) fn x_span(points: &[MetricPoint]) -> f64 {
    points.iter().map(|p| p.x).fold(f64::NEG_INFINITY, f64::max)
        - points.iter().map(|p| p.x).fold(f64::INFINITY, f64::min)
}

impl JumpFit {
    /// Whether the curve has the shape of a jump, whatever its level before: the sigmoid beats
    /// the line by more than 2 in BIC and is narrower than a quarter of the x range `span`.
    pub fn jump_shaped(&self, span: f64) -> bool {
        self.bic_sigmoid < self.bic_smooth - 2.0
            && self.sigmoid.width < span / 4.0
            && self.sigmoid.top > self.sigmoid.floor
    }
}

/// Compares a line with a sigmoid from `chance` on a proportion metric (points sorted or not).
pub fn detect(points: &[MetricPoint], chance: f64) -> JumpFit {
    let ll_line = line_fit(points);
    let (sig, ll_sig) = sigmoid_fit(points, chance);
    let (bic_smooth, bic_sigmoid) = (bic(ll_line, points.len(), 2), bic(ll_sig, points.len(), 3));
    let span = x_span(points);
    let before: Vec<&MetricPoint> = points
        .iter()
        .filter(|p| p.x < sig.x0 - EDGE * sig.width)
        .collect();
    let after: Vec<&MetricPoint> = points
        .iter()
        .filter(|p| p.x > sig.x0 + EDGE * sig.width)
        .collect();
    let near_chance = chance + CHANCE_TOLERANCE * (sig.top - chance).max(0.0);
    let before_at_chance = before
        .iter()
        .all(|p| wilson(p.value, p.n, 1.96).0 <= near_chance);
    let fit = |verdict, reason: String| JumpFit {
        verdict,
        bic_smooth,
        bic_sigmoid,
        sigmoid: sig,
        before_at_chance,
        reason,
    };
    if points.len() < 4 {
        return fit(
            Verdict::InsufficientResolution,
            format!(
                "{} points: too few to compare a line with a sigmoid",
                points.len()
            ),
        );
    }
    let sharp = sig.width < span / 4.0 && sig.top > chance;
    // The levels before and after must be distinguishable with the examples at hand.
    let mean_n = points.iter().map(|p| p.n).sum::<usize>() / points.len();
    let (_, chance_hi) = wilson(chance, mean_n, 1.96);
    let (top_lo, _) = wilson(sig.top.min(1.0), mean_n, 1.96);
    let unresolved = |why: String| {
        fit(
            Verdict::InsufficientResolution,
            format!(
                "jump-like at x = {:.2}, but {why} (top {:.3}, {mean_n} examples per point)",
                sig.x0, sig.top
            ),
        )
    };
    if sharp && bic_sigmoid < bic_smooth && top_lo <= chance_hi {
        return unresolved(format!(
            "{mean_n} examples per point cannot separate chance from the top"
        ));
    }
    if !fit(Verdict::Jump, String::new()).jump_shaped(span) {
        return fit(
            Verdict::Smooth,
            format!(
                "a line explains the curve as well (BIC {bic_smooth:.1} vs sigmoid {bic_sigmoid:.1}, width {:.2} of a {span:.2} range)",
                sig.width
            ),
        );
    }
    if before.len() < 2 || after.is_empty() {
        return unresolved(format!(
            "{} point(s) before it and {} after it",
            before.len(),
            after.len()
        ));
    }
    if !before_at_chance {
        return fit(
            Verdict::Smooth,
            format!(
                "the metric is already above chance before x = {:.2}: a rise, not a jump from chance",
                sig.x0
            ),
        );
    }
    fit(
        Verdict::Jump,
        format!(
            "jump at x = {:.2} (width {:.2}) from chance {chance:.3} to {:.3}; BIC {bic_sigmoid:.1} vs line {bic_smooth:.1}",
            sig.x0, sig.width, sig.top
        ),
    )
}

/// The mirage check of a jump.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MirageCheck {
    /// "metric-induced" or "not explained by the metric".
    pub label: String,
    /// Whether the continuous metric has no jump-shaped rise of its own.
    pub continuous_smooth: bool,
    /// Share of points where per-token accuracy ^ answer length lies in the discrete metric's 95%
    /// interval.
    pub reproduced_share: f64,
    /// Per point: (x, observed, token_accuracy ^ length).
    pub predicted: Vec<(f64, f64, f64)>,
}

/// Checks whether a discrete metric's jump (`jump`, its detection) is explained by its per-token
/// accuracy: `discrete` (exact match) and `token` (per-token accuracy) are on the same models,
/// `length` is the answer length in tokens, `continuous` any continuous metric of the same outputs.
pub fn mirage(
    jump: &JumpFit,
    discrete: &[MetricPoint],
    token: &[MetricPoint],
    continuous: &[MetricPoint],
    length: f64,
) -> MirageCheck {
    let cont_floor = continuous
        .iter()
        .map(|p| p.value)
        .fold(f64::INFINITY, f64::min);
    // Smooth means no jump of its own (a continuous metric has no chance level to start from): not
    // jump-shaped, or a rise at least twice as wide as the discrete metric's.
    let continuous_smooth = smooth_beside(jump, continuous, cont_floor, SMOOTHER);
    let predicted: Vec<(f64, f64, f64)> = discrete
        .iter()
        .filter_map(|d| {
            let t = token.iter().find(|t| (t.x - d.x).abs() < 1e-9)?;
            Some((d.x, d.value, t.value.clamp(0.0, 1.0).powf(length)))
        })
        .collect();
    let reproduced_share = share_inside(discrete, &predicted);
    let label = if continuous_smooth && reproduced_share >= 0.8 {
        "metric-induced"
    } else {
        "not explained by the metric"
    };
    MirageCheck {
        label: label.into(),
        continuous_smooth,
        reproduced_share,
        predicted,
    }
}

/// Twelve points of `f` at x = 10, 10.5, ..., 15.5, each of `n` examples (tests).
#[cfg(test)]
pub(crate) fn curve(f: impl Fn(f64) -> f64, n: usize) -> Vec<MetricPoint> {
    (0..12)
        .map(|i| {
            let x = 10.0 + 0.5 * i as f64;
            MetricPoint { x, value: f(x), n }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_true_step_is_found_at_the_right_place() {
        let step = curve(|x| if x < 13.2 { 0.0 } else { 0.9 }, 500);
        let f = detect(&step, 0.0);
        assert_eq!(f.verdict, Verdict::Jump, "{}", f.reason);
        assert!((f.sigmoid.x0 - 13.0).abs() < 0.4, "x0 = {}", f.sigmoid.x0);
        assert!(f.before_at_chance);
    }

    #[test]
    fn a_few_lucky_answers_before_the_step_still_count_as_chance() {
        // 1-3 right answers in 600 before a jump to 0.95 (exact chance 1e-6): near zero, a jump.
        let step = curve(|x| if x < 13.2 { 0.003 } else { 0.95 }, 600);
        let f = detect(&step, 1e-6);
        assert_eq!(f.verdict, Verdict::Jump, "{}", f.reason);
        // 10% before the step is a rise from a level well above chance, not a jump from chance.
        let step = curve(|x| if x < 13.2 { 0.1 } else { 0.95 }, 600);
        let f = detect(&step, 1e-6);
        assert!(!f.before_at_chance, "{}", f.reason);
        assert_ne!(f.verdict, Verdict::Jump, "{}", f.reason);
    }

    #[test]
    fn a_measured_jump_with_a_point_on_the_way_up_is_a_jump() {
        // Exact match on 3-digit addition against log10 N (lab's sweep, 600 examples per size).
        let ys = [0.002, 0.002, 0.005, 0.003, 0.208, 0.452, 0.972, 0.952];
        let xs = [3.62, 4.19, 4.43, 4.61, 4.78, 4.94, 5.07, 5.30];
        let pts: Vec<MetricPoint> = xs
            .iter()
            .zip(ys)
            .map(|(&x, value)| MetricPoint { x, value, n: 600 })
            .collect();
        let f = detect(&pts, 20f64.powf(-4.5));
        assert_eq!(f.verdict, Verdict::Jump, "{}", f.reason);
        assert!((4.7..5.0).contains(&f.sigmoid.x0), "{:?}", f.sigmoid);
    }

    #[test]
    fn a_wide_sigmoid_is_not_a_jump() {
        let wide = curve(|x| 0.9 / (1.0 + (-(x - 12.75) / 1.5).exp()), 600);
        let f = detect(&wide, 0.0);
        assert_ne!(f.verdict, Verdict::Jump, "{}", f.reason);
    }

    #[test]
    fn a_smooth_curve_is_not_flagged() {
        let smooth = curve(|x| 0.05 + 0.07 * (x - 10.0), 500);
        let f = detect(&smooth, 0.0);
        assert_eq!(f.verdict, Verdict::Smooth, "{}", f.reason);
    }

    #[test]
    fn too_few_examples_is_insufficient_resolution() {
        // A jump to 0.3 measured on 5 examples per point cannot be told from chance.
        let step = curve(|x| if x < 13.2 { 0.0 } else { 0.3 }, 5);
        let f = detect(&step, 0.0);
        assert_eq!(f.verdict, Verdict::InsufficientResolution, "{}", f.reason);
    }

    #[test]
    fn per_token_accuracy_to_the_length_is_metric_induced() {
        // Token accuracy rises smoothly; exact match on 8-token answers is p^8: a sharp rise.
        let p = |x: f64| 0.5 + 0.087 * (x - 10.0);
        let token = curve(p, 2000);
        let exact = curve(|x| p(x).powi(8), 2000);
        let f = detect(&exact, 0.0);
        assert_ne!(f.verdict, Verdict::Smooth, "{}", f.reason);
        let m = mirage(&f, &exact, &token, &token, 8.0);
        assert_eq!(m.label, "metric-induced", "{m:?}");
        assert!(m.continuous_smooth);
        // A jump the token accuracy does not predict is not explained by the metric.
        let jump = curve(|x| if x < 13.2 { 0.0 } else { 0.9 }, 2000);
        let jf = detect(&jump, 0.0);
        let m = mirage(&jf, &jump, &token, &token, 8.0);
        assert_eq!(m.label, "not explained by the metric", "{m:?}");
        // A continuous metric that jumps from its own floor (not from chance) is not smooth.
        let cont = curve(|x| if x < 13.2 { 0.3 } else { 0.95 }, 2000);
        let m = mirage(&jf, &jump, &token, &cont, 8.0);
        assert!(!m.continuous_smooth, "{m:?}");
    }
}

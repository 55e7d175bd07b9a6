//! Resolving the "flat" part of an emergence curve (Hu et al. 2024, PassUntil): success rates far
//! below what greedy exact match on a few hundred examples can see, estimated by sampling until a
//! number of successes, tell whether the metric is really flat before a jump or already rising on
//! a log scale.
//!
//! The test regresses ln(rate) on x (log10 compute or N) by weighted least squares, each point
//! weighted by the inverse of its delta-method variance, (1 - p) / successes, and calls the curve
//! rising when the slope's 95% interval lies above 0.
//!
//! It also predicts where the sampled rate reaches 50% with Hu et al.'s task scaling law,
//! -ln(rate) = c 10^(-alpha x): ln(-ln rate) is a line in x, fitted to the models whose sampled
//! rate is at most [`FIT_BELOW`] (the region PassUntil exists to resolve, before any jump) and
//! solved for rate 0.5, with Fieller's 95% interval (the x where the line's pointwise band holds
//! ln(ln 2); unbounded above when the slope is not resolved). Where larger models were sampled too
//! (`below: 1.0`), the rate's own crossing checks the prediction.

use serde::{Deserialize, Serialize};

/// One model's sampled success rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RatePoint {
    /// log10 of compute or parameters.
    pub x: f64,
    /// Exact answers among the samples.
    pub successes: usize,
    /// Samples drawn.
    pub samples: usize,
}

impl RatePoint {
    /// Successes over samples (0 without samples).
    pub fn rate(&self) -> f64 {
        self.successes as f64 / self.samples.max(1) as f64
    }
}

/// What the test concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trend {
    /// The rate rises with x: progress the greedy metric cannot see.
    Rises,
    /// No rise the rates can show (the slope's interval holds 0, or lies below it).
    Flat,
    /// Fewer than three points with a success.
    InsufficientResolution,
}

/// The trend of sampled success rates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resolution {
    /// Verdict.
    pub trend: Trend,
    /// Slope of ln(rate) per unit of x (a decade), with its 95% interval (NaN without a fit).
    #[serde(deserialize_with = "crate::bootstrap::null_as_nan_triple")]
    pub slope: (f64, f64, f64),
    /// Points with at least one success (the fitted ones).
    pub fitted: usize,
    /// Points without a success (only an upper bound each).
    pub without_success: usize,
    /// Why.
    pub reason: String,
    /// Where the task scaling law fitted to the sampled rates reaches 50% (absent with fewer than
    /// three models whose rate is above 0 and at most [`FIT_BELOW`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crossing: Option<RateCrossing>,
}

/// The x at which the sampled success rate is predicted to reach 50%.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RateCrossing {
    /// The fitted law's x at rate 0.5 (None: the rate's rise with x is not resolved, its slope's
    /// 95% interval holding 0).
    pub predicted: Option<f64>,
    /// Fieller's 95% interval (None at an end: unbounded there).
    pub lower: Option<f64>,
    /// As `lower`.
    pub upper: Option<f64>,
    /// The fitted law's exponent alpha in -ln(rate) = c 10^(-alpha x).
    pub alpha: f64,
    /// Models fitted.
    pub fitted: usize,
    /// Where the sampled rate reaches 50% in the data (interpolated in x between the models
    /// around it; None: no sampled model reaches it).
    pub observed: Option<f64>,
    /// Where greedy exact match reaches 50% (set by the caller that holds those points,
    /// [`crate::subtasks::observed_half`]; None: it never does).
    #[serde(default)]
    pub observed_greedy: Option<f64>,
}

/// The highest sampled rate the task scaling law is fitted to.
pub const FIT_BELOW: f64 = 0.2;

/// Fits ln(-ln rate) = a + b x by weighted least squares (weights the inverse delta-method
/// variance (1 - p) / (successes ln(p)^2)) to the points whose rate is above 0 and at most
/// [`FIT_BELOW`], and solves for rate 0.5.
pub fn predict_half(points: &[RatePoint]) -> Option<RateCrossing> {
    let (mut x, mut y, mut w) = (Vec::new(), Vec::new(), Vec::new());
    for p in points
        .iter()
        .filter(|p| p.successes > 0 && p.rate() <= FIT_BELOW)
    {
        let rate = p.rate();
        x.push(p.x);
        y.push((-rate.ln()).ln());
        w.push(p.successes as f64 * rate.ln().powi(2) / (1.0 - rate));
    }
    if x.len() < 3 {
        return None;
    }
    let line = crate::regression::weighted_line(&x, &y, &w);
    if line.sxx <= 0.0 {
        return None;
    }
    let (b, xbar) = (line.slope, line.mean_x);
    let ybar = line.intercept + b * xbar;
    // ln(-ln 0.5) - the line's value at its weighted mean x.
    let r = std::f64::consts::LN_2.ln() - ybar;
    let z2 = 1.96f64.powi(2);
    // (b d - r)^2 <= z^2 (1 / weight_sum + d^2 / sxx), d = x - xbar: A d^2 - 2 b r d + C <= 0.
    let a = b * b - z2 / line.sxx;
    let c = r * r - z2 / line.weight_sum;
    let disc = (b * r).powi(2) - a * c;
    let (lower, upper) = if a > 0.0 && disc >= 0.0 {
        let (d1, d2) = ((b * r - disc.sqrt()) / a, (b * r + disc.sqrt()) / a);
        (Some(xbar + d1), Some(xbar + d2))
    } else if b < 0.0 {
        // The slope's interval reaches 0: the band holds ln(ln 2) past the larger root (A < 0:
        // (b r - sqrt(disc)) / A), or everywhere.
        let lo = (a < 0.0 && disc >= 0.0).then(|| xbar + (b * r - disc.sqrt()) / a);
        (lo.filter(|v| v.is_finite()), None)
    } else {
        (None, None)
    };
    Some(RateCrossing {
        predicted: (b < 0.0 && a > 0.0).then(|| xbar + r / b),
        lower,
        upper,
        alpha: -b / std::f64::consts::LN_10,
        fitted: x.len(),
        observed: crate::subtasks::observed_half(
            &points
                .iter()
                .map(|p| crate::emergence::MetricPoint {
                    x: p.x,
                    value: p.rate(),
                    n: p.samples,
                })
                .collect::<Vec<_>>(),
        ),
        observed_greedy: None,
    })
}

/// Fits the trend of `points`' rates.
pub fn resolution(points: &[RatePoint]) -> Resolution {
    let fitted: Vec<(f64, f64, f64)> = points
        .iter()
        .filter(|p| p.successes > 0 && p.samples > 0)
        .map(|p| {
            let rate = p.rate();
            let var = (1.0 - rate).max(1e-9) / p.successes as f64;
            (p.x, rate.ln(), 1.0 / var)
        })
        .collect();
    let without_success = points.len() - fitted.len();
    let crossing = predict_half(points);
    let result = |trend, slope, reason: String| Resolution {
        trend,
        slope,
        fitted: fitted.len(),
        without_success,
        reason,
        crossing,
    };
    if fitted.len() < 3 {
        return result(
            Trend::InsufficientResolution,
            (f64::NAN, f64::NAN, f64::NAN),
            format!(
                "{} model(s) with a sampled success: too few for a trend",
                fitted.len()
            ),
        );
    }
    let column = |k: fn(&(f64, f64, f64)) -> f64| fitted.iter().map(k).collect::<Vec<f64>>();
    let (x, y, w) = (column(|f| f.0), column(|f| f.1), column(|f| f.2));
    let line = crate::regression::weighted_line(&x, &y, &w);
    let sxx = line.sxx;
    if sxx <= 0.0 {
        return result(
            Trend::InsufficientResolution,
            (f64::NAN, f64::NAN, f64::NAN),
            "every sampled model is at the same x".into(),
        );
    }
    let slope = line.slope;
    let half = 1.96 / sxx.sqrt();
    let interval = (slope, slope - half, slope + half);
    let per_decade = |s: f64| s.exp();
    if slope - half > 0.0 {
        result(
            Trend::Rises,
            interval,
            format!(
                "the sampled rate rises {:.2}x per decade [{:.2}, {:.2}] over {} models",
                per_decade(slope),
                per_decade(slope - half),
                per_decade(slope + half),
                fitted.len()
            ),
        )
    } else {
        result(
            Trend::Flat,
            interval,
            format!(
                "no rise: the sampled rate changes {:.2}x per decade [{:.2}, {:.2}] over {} models",
                per_decade(slope),
                per_decade(slope - half),
                per_decade(slope + half),
                fitted.len()
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(rate: impl Fn(f64) -> f64, samples: usize) -> Vec<RatePoint> {
        (0..6)
            .map(|i| {
                let x = 4.0 + 0.2 * i as f64;
                let successes = (rate(x) * samples as f64).round() as usize;
                RatePoint {
                    x,
                    successes,
                    samples,
                }
            })
            .collect()
    }

    #[test]
    fn a_rate_rising_tenfold_per_decade_rises() {
        let r = resolution(&points(|x| 1e-4 * 10f64.powf(x - 4.0), 200_000));
        assert_eq!(r.trend, Trend::Rises, "{}", r.reason);
        // ln 10 per unit of x.
        assert!((r.slope.0 - 10f64.ln()).abs() < 0.1, "{:?}", r.slope);
        assert!(r.slope.1 < 10f64.ln() && 10f64.ln() < r.slope.2);
    }

    #[test]
    fn a_constant_rate_is_flat() {
        let r = resolution(&points(|_| 1e-3, 20_000));
        assert_eq!(r.trend, Trend::Flat, "{}", r.reason);
        assert!(r.slope.1 < 0.0 && r.slope.2 > 0.0, "{:?}", r.slope);
    }

    #[test]
    fn the_task_scaling_law_predicts_where_the_rate_reaches_half() {
        // -ln(rate) = c 10^(-alpha x), c = 50, alpha = 0.8: rate 0.5 at
        // x = log10(c / ln 2) / alpha = 2.3225.
        let (c, alpha) = (50.0, 0.8);
        let want = (c / std::f64::consts::LN_2).log10() / alpha;
        let rate = |x: f64| (-c * 10f64.powf(-alpha * x)).exp();
        let pts: Vec<RatePoint> = (0..5)
            .map(|i| {
                let x = 1.0 + 0.15 * i as f64;
                let samples = 2_000_000;
                RatePoint {
                    x,
                    successes: (rate(x) * samples as f64).round() as usize,
                    samples,
                }
            })
            .collect();
        assert!(pts.iter().all(|p| p.successes > 0), "{pts:?}");
        let got = predict_half(&pts).unwrap();
        assert!(
            (got.predicted.unwrap() - want).abs() < 0.01,
            "{got:?} vs {want}"
        );
        assert_eq!(got.observed, None, "no sampled model reaches 50%");
        assert!((got.alpha - alpha).abs() < 0.01, "{got:?}");
        let (lo, hi) = (got.lower.unwrap(), got.upper.unwrap());
        assert!(lo < want && want < hi && hi - lo < 0.2, "{got:?}");
        // The same models sampled 1,000 times fewer: the interval widens around the same answer.
        let few: Vec<RatePoint> = pts
            .iter()
            .map(|p| RatePoint {
                successes: p.successes / 1000,
                samples: p.samples / 1000,
                ..*p
            })
            .collect();
        let wide = predict_half(&few).unwrap();
        let (lo2, hi2) = (wide.lower.unwrap_or(f64::NEG_INFINITY), wide.upper);
        assert!(
            lo2 < want && hi2.is_none_or(|h| h > want && h - lo2 > hi - lo),
            "{wide:?}"
        );
    }

    #[test]
    fn larger_sampled_models_check_the_prediction_and_are_not_fitted() {
        // Rates 0.01-0.1 below, 0.4 and 0.8 above: only the first three are fitted; the rate's
        // own crossing lies between the last two models.
        let rates = [0.01, 0.03, 0.1, 0.4, 0.8];
        let pts: Vec<RatePoint> = rates
            .iter()
            .enumerate()
            .map(|(i, r)| RatePoint {
                x: 4.0 + 0.5 * i as f64,
                successes: (r * 1e5) as usize,
                samples: 100_000,
            })
            .collect();
        let got = predict_half(&pts).unwrap();
        assert_eq!(got.fitted, 3);
        // Interpolated between x = 5.5 (0.4) and 6.0 (0.8): 5.5 + 0.5 * 0.1 / 0.4.
        assert!((got.observed.unwrap() - 5.625).abs() < 1e-9, "{got:?}");
    }

    #[test]
    fn a_flat_rate_predicts_no_crossing() {
        let got = predict_half(&points(|_| 1e-3, 20_000)).unwrap();
        // A constant rate: slope 0 (to rounding), so no predicted x and no upper bound.
        assert_eq!((got.predicted, got.upper), (None, None), "{got:?}");
        assert_eq!(predict_half(&points(|_| 0.0, 20_000)), None);
    }

    #[test]
    fn too_few_successes_is_insufficient() {
        let r = resolution(&points(|x| if x < 4.7 { 0.0 } else { 1e-3 }, 2_000));
        assert_eq!(r.trend, Trend::InsufficientResolution, "{}", r.reason);
        assert_eq!((r.fitted, r.without_success), (2, 4));
    }
}

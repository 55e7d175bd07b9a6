//! Resolving the "flat" part of an emergence curve (Hu et al. 2024, PassUntil): success rates far
//! below what greedy exact match on a few hundred examples can see, estimated by sampling until a
//! number of successes, tell whether the metric is really flat before a jump or already rising on
//! a log scale.
//!
//! The test regresses ln(rate) on x (log10 compute or N) by weighted least squares, each point
//! weighted by the inverse of its delta-method variance, (1 - p) / successes, and calls the curve
//! rising when the slope's 95% interval lies above 0.

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
    pub slope: (f64, f64, f64),
    /// Points with at least one success (the fitted ones).
    pub fitted: usize,
    /// Points without a success (only an upper bound each).
    pub without_success: usize,
    /// Why.
    pub reason: String,
}

/// Fits the trend of `points`' rates.
pub fn resolution(points: &[RatePoint]) -> Resolution {
    let fitted: Vec<(f64, f64, f64)> = points
        .iter()
        .filter(|p| p.successes > 0 && p.samples > 0)
        .map(|p| {
            let rate = p.successes as f64 / p.samples as f64;
            let var = (1.0 - rate).max(1e-9) / p.successes as f64;
            (p.x, rate.ln(), 1.0 / var)
        })
        .collect();
    let without_success = points.len() - fitted.len();
    let result = |trend, slope, reason: String| Resolution {
        trend,
        slope,
        fitted: fitted.len(),
        without_success,
        reason,
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
    fn too_few_successes_is_insufficient() {
        let r = resolution(&points(|x| if x < 4.7 { 0.0 } else { 1e-3 }, 2_000));
        assert_eq!(r.trend, Trend::InsufficientResolution, "{}", r.reason);
        assert_eq!((r.fitted, r.without_success), (2, 4));
    }
}

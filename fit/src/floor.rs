//! A power law with an irreducible floor, y = E + k x^-g: the loss frontier L(C) of approaches 1 and 2
//! and of Kaplan's L(C_min). A pure power law through losses falls to zero as compute grows, so it
//! predicts losses below a corpus's entropy; this form cannot go below E.
//!
//! Fitted by least squares on ln y (the residual every lab fit reports). With E held, (ln k, g) come
//! from Gauss-Newton started at the log-log line through y - E. With E free, E is profiled over
//! [0, min y): every trial E gets its inner (ln k, g) fit, and the best E is refined by golden-section
//! search. Three parameters need at least four points; with fewer the floor is not identified.

use serde::{Deserialize, Serialize};

/// y = floor + coefficient x^-exponent.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FloorPowerLaw {
    /// The irreducible floor E.
    pub floor: f64,
    /// Coefficient k of the reducible part.
    pub coefficient: f64,
    /// Exponent g of the reducible part (y - E falls as x^-g; positive for a falling frontier).
    pub exponent: f64,
    /// Whether E was held rather than fitted.
    pub floor_held: bool,
    /// Root mean square of ln(fitted / observed).
    pub rmse_log: f64,
}

/// Why a floor law could not be fitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FloorFitError {
    /// Fewer points than the law has free parameters plus one.
    TooFewPoints {
        /// Points needed.
        needed: usize,
        /// Points given.
        got: usize,
    },
    /// A held floor at or above an observed value.
    FloorAboveData(String),
    /// The data do not fall with x (no positive exponent fits).
    NotFalling,
}

impl std::fmt::Display for FloorFitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FloorFitError::TooFewPoints { needed, got } => write!(
                f,
                "a fitted floor needs {needed} points, got {got} (hold E with --fix-e)"
            ),
            FloorFitError::FloorAboveData(m) => f.write_str(m),
            FloorFitError::NotFalling => f.write_str("the values do not fall with x"),
        }
    }
}

impl FloorPowerLaw {
    /// The law's value at x.
    pub fn at(&self, x: f64) -> f64 {
        self.floor + self.coefficient * x.powf(-self.exponent)
    }

    /// Fits the law to positive (x, y); `floor` holds E, `None` fits it.
    pub fn fit(x: &[f64], y: &[f64], floor: Option<f64>) -> Result<FloorPowerLaw, FloorFitError> {
        let lx: Vec<f64> = x.iter().map(|v| v.ln()).collect();
        let ly: Vec<f64> = y.iter().map(|v| v.ln()).collect();
        let y_min = y.iter().copied().fold(f64::INFINITY, f64::min);
        match floor {
            Some(e) => {
                if e >= y_min {
                    return Err(FloorFitError::FloorAboveData(format!(
                        "the held floor E = {e:.4} is not below the lowest value {y_min:.4}"
                    )));
                }
                let (sse, lk, g) = inner(&lx, &ly, y, e).ok_or(FloorFitError::NotFalling)?;
                Ok(Self::assemble(e, lk, g, true, sse, x.len()))
            }
            None => {
                if x.len() < 4 {
                    return Err(FloorFitError::TooFewPoints {
                        needed: 4,
                        got: x.len(),
                    });
                }
                let sse_at = |e: f64| inner(&lx, &ly, y, e).map_or(f64::INFINITY, |r| r.0);
                let hi = y_min * (1.0 - 1e-9);
                const GRID: usize = 200;
                let (best, _) = (0..GRID)
                    .map(|i| hi * i as f64 / GRID as f64)
                    .map(|e| (e, sse_at(e)))
                    .fold(
                        (0.0, f64::INFINITY),
                        |acc, (e, s)| {
                            if s < acc.1 {
                                (e, s)
                            } else {
                                acc
                            }
                        },
                    );
                let step = hi / GRID as f64;
                let e = golden(&sse_at, (best - step).max(0.0), (best + step).min(hi), 60);
                let (sse, lk, g) = inner(&lx, &ly, y, e).ok_or(FloorFitError::NotFalling)?;
                Ok(Self::assemble(e, lk, g, false, sse, x.len()))
            }
        }
    }

    fn assemble(e: f64, lk: f64, g: f64, held: bool, sse: f64, n: usize) -> FloorPowerLaw {
        FloorPowerLaw {
            floor: e,
            coefficient: lk.exp(),
            exponent: g,
            floor_held: held,
            rmse_log: (sse / n as f64).sqrt(),
        }
    }
}

/// The best (sum of squared ln residuals, ln k, g) at floor `e`: Gauss-Newton on ln(e + k x^-g)
/// from the log-log line through the points above `e`. `None` when no falling law fits.
fn inner(lx: &[f64], ly: &[f64], y: &[f64], e: f64) -> Option<(f64, f64, f64)> {
    let (sx, sy): (Vec<f64>, Vec<f64>) = lx
        .iter()
        .zip(y)
        .filter(|(_, &v)| v > e)
        .map(|(&a, &v)| (a, (v - e).ln()))
        .unzip();
    let line = crate::regression::Line::fit(&sx, &sy)?;
    let (mut lk, mut g) = (line.intercept, -line.slope);
    if g <= 0.0 {
        return None;
    }
    let sse = |lk: f64, g: f64| -> f64 {
        lx.iter()
            .zip(ly)
            .map(|(&a, &b)| ((e + (lk - g * a).exp()).ln() - b).powi(2))
            .sum()
    };
    let mut cur = sse(lk, g);
    for _ in 0..100 {
        // Normal equations of the linearised residuals in (ln k, g).
        let (mut a11, mut a12, mut a22, mut b1, mut b2) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for (&a, &b) in lx.iter().zip(ly) {
            let u = (lk - g * a).exp();
            let m = e + u;
            let r = m.ln() - b;
            let j1 = u / m;
            let j2 = -a * u / m;
            a11 += j1 * j1;
            a12 += j1 * j2;
            a22 += j2 * j2;
            b1 += j1 * r;
            b2 += j2 * r;
        }
        let det = a11 * a22 - a12 * a12;
        if det.abs() <= 1e-300 {
            break;
        }
        let d1 = (a22 * b1 - a12 * b2) / det;
        let d2 = (a11 * b2 - a12 * b1) / det;
        let mut t = 1.0;
        let mut improved = false;
        while t > 1e-6 {
            let (nk, ng) = (lk - t * d1, g - t * d2);
            let s = sse(nk, ng);
            if s.is_finite() && s <= cur {
                improved = cur - s > 1e-15 * cur.max(1e-300);
                (lk, g, cur) = (nk, ng, s);
                break;
            }
            t *= 0.5;
        }
        if !improved {
            break;
        }
    }
    (g > 0.0 && cur.is_finite()).then_some((cur, lk, g))
}

/// Golden-section minimum of `f` on [lo, hi].
fn golden(f: &dyn Fn(f64) -> f64, mut lo: f64, mut hi: f64, iters: usize) -> f64 {
    let r = (5f64.sqrt() - 1.0) / 2.0;
    let (mut a, mut b) = (hi - r * (hi - lo), lo + r * (hi - lo));
    let (mut fa, mut fb) = (f(a), f(b));
    for _ in 0..iters {
        if fa < fb {
            hi = b;
            (b, fb) = (a, fa);
            a = hi - r * (hi - lo);
            fa = f(a);
        } else {
            lo = a;
            (a, fa) = (b, fb);
            b = lo + r * (hi - lo);
            fb = f(b);
        }
    }
    if fa < fb {
        a
    } else {
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn law_points(e: f64, k: f64, g: f64) -> (Vec<f64>, Vec<f64>) {
        let x: Vec<f64> = (0..12).map(|i| 1e10 * 2f64.powi(i)).collect();
        let y = x.iter().map(|c| e + k * c.powf(-g)).collect();
        (x, y)
    }

    #[test]
    fn recovers_a_free_floor_from_exact_points() {
        let (x, y) = law_points(1.142, 300.0, 0.25);
        let f = FloorPowerLaw::fit(&x, &y, None).unwrap();
        assert!((f.floor - 1.142).abs() < 1e-6, "E = {}", f.floor);
        assert!((f.exponent - 0.25).abs() < 1e-6, "g = {}", f.exponent);
        assert!(
            (f.coefficient / 300.0 - 1.0).abs() < 1e-4,
            "k = {}",
            f.coefficient
        );
        assert!(f.rmse_log < 1e-8 && !f.floor_held);
        // Far beyond the data it approaches the floor and never crosses it.
        assert!(f.at(1e30) > 1.142 && f.at(1e30) < 1.143);
    }

    #[test]
    fn held_floor_gives_the_log_log_line_of_the_excess() {
        // y - 2 = 5 x^-0.5 exactly: with E held at 2, k and g are those of the excess.
        let x = [1.0, 4.0, 16.0];
        let y: Vec<f64> = x.iter().map(|v: &f64| 2.0 + 5.0 / v.sqrt()).collect();
        let f = FloorPowerLaw::fit(&x, &y, Some(2.0)).unwrap();
        assert!((f.exponent - 0.5).abs() < 1e-9 && (f.coefficient - 5.0).abs() < 1e-8);
        assert!(f.floor_held && f.floor == 2.0);
        // Hand value: at x = 100, 2 + 5/10.
        assert!((f.at(100.0) - 2.5).abs() < 1e-9);
    }

    #[test]
    fn zero_floor_is_the_pure_power_law() {
        let x = [1e18, 1e19, 1e20, 1e21];
        let y: Vec<f64> = x.iter().map(|c: &f64| 40.0 * c.powf(-0.05)).collect();
        let f = FloorPowerLaw::fit(&x, &y, Some(0.0)).unwrap();
        assert!((f.exponent - 0.05).abs() < 1e-9 && (f.coefficient / 40.0 - 1.0).abs() < 1e-8);
    }

    #[test]
    fn refuses_what_it_cannot_fit() {
        let (x, y) = law_points(1.0, 10.0, 0.3);
        assert_eq!(
            FloorPowerLaw::fit(&x[..3], &y[..3], None).unwrap_err(),
            FloorFitError::TooFewPoints { needed: 4, got: 3 }
        );
        let err = FloorPowerLaw::fit(&x, &y, Some(5.0)).unwrap_err();
        assert!(matches!(err, FloorFitError::FloorAboveData(_)), "{err}");
        let rising: Vec<f64> = x.iter().map(|v| v.ln()).collect();
        assert_eq!(
            FloorPowerLaw::fit(&x, &rising, Some(0.0)).unwrap_err(),
            FloorFitError::NotFalling
        );
    }

    #[test]
    fn noisy_points_keep_the_floor_below_the_data() {
        let (x, mut y) = law_points(1.5, 50.0, 0.2);
        for (i, v) in y.iter_mut().enumerate() {
            *v *= 1.0 + 0.003 * if i % 2 == 0 { 1.0 } else { -1.0 };
        }
        let f = FloorPowerLaw::fit(&x, &y, None).unwrap();
        let lowest = y.iter().copied().fold(f64::INFINITY, f64::min);
        assert!(f.floor >= 0.0 && f.floor < lowest, "E = {}", f.floor);
        assert!((f.floor - 1.5).abs() < 0.3, "E = {}", f.floor);
    }
}

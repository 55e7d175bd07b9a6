//! Closed-form least squares: straight lines (power laws in log-log space) and parabolas.

use serde::{Deserialize, Serialize};

/// y = intercept + slope * x, fitted by ordinary least squares.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Line {
    /// Intercept.
    pub intercept: f64,
    /// Slope.
    pub slope: f64,
    /// Coefficient of determination.
    pub r2: f64,
}

impl Line {
    /// Least-squares line through (x, y); `None` with fewer than 2 points or no spread in x.
    pub fn fit(x: &[f64], y: &[f64]) -> Option<Line> {
        let n = x.len() as f64;
        if x.len() < 2 || x.len() != y.len() {
            return None;
        }
        let mx = x.iter().sum::<f64>() / n;
        let my = y.iter().sum::<f64>() / n;
        let sxx: f64 = x.iter().map(|v| (v - mx).powi(2)).sum();
        let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
        let syy: f64 = y.iter().map(|v| (v - my).powi(2)).sum();
        if sxx <= f64::EPSILON * n * mx.abs().max(1.0) {
            return None;
        }
        let slope = sxy / sxx;
        let intercept = my - slope * mx;
        let sse: f64 = x
            .iter()
            .zip(y)
            .map(|(a, b)| (b - intercept - slope * a).powi(2))
            .sum();
        let r2 = if syy > 0.0 { 1.0 - sse / syy } else { 1.0 };
        Some(Line {
            intercept,
            slope,
            r2,
        })
    }

    /// The line's value at x.
    pub fn at(&self, x: f64) -> f64 {
        self.intercept + self.slope * x
    }
}

/// y = intercept + slope * x, fitted by weighted least squares.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WeightedLine {
    /// Intercept.
    pub intercept: f64,
    /// Slope (0 without spread in x).
    pub slope: f64,
    /// The weighted sum of squares of x about its weighted mean: 1 / var(slope) when the weights
    /// are inverse variances; 0 without spread in x.
    pub sxx: f64,
    /// The weighted mean of x, where the line's value has variance 1 / `weight_sum` (inverse
    /// variance weights) and is uncorrelated with the slope.
    pub mean_x: f64,
    /// The sum of the weights.
    pub weight_sum: f64,
}

/// Weighted least-squares line through (x, y) with weights `w`; without spread in x the slope is
/// 0 and the intercept the weighted mean of y.
pub fn weighted_line(x: &[f64], y: &[f64], w: &[f64]) -> WeightedLine {
    let sw: f64 = w.iter().sum::<f64>().max(1e-300);
    let mx = x.iter().zip(w).map(|(x, w)| w * x).sum::<f64>() / sw;
    let my = y.iter().zip(w).map(|(y, w)| w * y).sum::<f64>() / sw;
    let sxx: f64 = x.iter().zip(w).map(|(x, w)| w * (x - mx).powi(2)).sum();
    let sxy: f64 = x
        .iter()
        .zip(y)
        .zip(w)
        .map(|((x, y), w)| w * (x - mx) * (y - my))
        .sum();
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    WeightedLine {
        intercept: my - slope * mx,
        slope,
        sxx,
        mean_x: mx,
        weight_sum: sw,
    }
}

/// y = k * x^exponent, fitted as a line in log-log space.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PowerLaw {
    /// Coefficient k.
    pub coefficient: f64,
    /// Exponent.
    pub exponent: f64,
    /// R^2 of the log-log fit.
    pub r2: f64,
}

impl PowerLaw {
    /// Fits y = k x^a on positive data; `None` when the log-log line cannot be fitted.
    pub fn fit(x: &[f64], y: &[f64]) -> Option<PowerLaw> {
        let lx: Vec<f64> = x.iter().map(|v| v.ln()).collect();
        let ly: Vec<f64> = y.iter().map(|v| v.ln()).collect();
        let line = Line::fit(&lx, &ly)?;
        Some(PowerLaw {
            coefficient: line.intercept.exp(),
            exponent: line.slope,
            r2: line.r2,
        })
    }

    /// k * x^a.
    pub fn at(&self, x: f64) -> f64 {
        self.coefficient * x.powf(self.exponent)
    }
}

/// y = c0 + c1 x + c2 x^2, fitted by least squares.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Parabola {
    /// Coefficients [c0, c1, c2].
    pub coef: [f64; 3],
}

impl Parabola {
    /// Least-squares parabola; `None` with fewer than 3 points or a singular system.
    pub fn fit(x: &[f64], y: &[f64]) -> Option<Parabola> {
        if x.len() < 3 || x.len() != y.len() {
            return None;
        }
        // Centre x for conditioning, then shift the coefficients back.
        let m = x.iter().sum::<f64>() / x.len() as f64;
        let mut s = [0.0f64; 5];
        let mut t = [0.0f64; 3];
        for (&xi, &yi) in x.iter().zip(y) {
            let u = xi - m;
            let mut p = 1.0;
            for (k, sk) in s.iter_mut().enumerate() {
                *sk += p;
                if k < 3 {
                    t[k] += p * yi;
                }
                p *= u;
            }
        }
        let a = [[s[0], s[1], s[2]], [s[1], s[2], s[3]], [s[2], s[3], s[4]]];
        let c = solve3(a, t)?;
        // y = c0 + c1 (x-m) + c2 (x-m)^2
        let coef = [c[0] - c[1] * m + c[2] * m * m, c[1] - 2.0 * c[2] * m, c[2]];
        Some(Parabola { coef })
    }

    /// The parabola's value at x.
    pub fn at(&self, x: f64) -> f64 {
        self.coef[0] + self.coef[1] * x + self.coef[2] * x * x
    }

    /// The vertex x (a minimum when c2 > 0).
    pub fn vertex(&self) -> f64 {
        -self.coef[1] / (2.0 * self.coef[2])
    }
}

/// Least squares `min |X b - y|` by Householder QR (no normal equations, so a design with
/// columns of very different scale keeps its precision): `rows[i]` is row i of X. Returns the
/// coefficients and the residual sum of squares; `None` when X has fewer rows than columns or is
/// rank-deficient.
pub fn least_squares(rows: &[Vec<f64>], y: &[f64]) -> Option<(Vec<f64>, f64)> {
    let (m, k) = (rows.len(), rows.first()?.len());
    if m < k || y.len() != m || rows.iter().any(|r| r.len() != k) {
        return None;
    }
    // Column-major copy of X and the right-hand side, reduced in place.
    let mut a: Vec<Vec<f64>> = (0..k)
        .map(|j| rows.iter().map(|r| r[j]).collect())
        .collect();
    let mut b = y.to_vec();
    let scale = a.iter().flatten().fold(0.0f64, |acc, v| acc.max(v.abs()));
    for j in 0..k {
        let norm = a[j][j..].iter().map(|v| v * v).sum::<f64>().sqrt();
        if norm <= 1e-12 * scale.max(f64::MIN_POSITIVE) {
            return None;
        }
        let alpha = if a[j][j] > 0.0 { -norm } else { norm };
        let mut v: Vec<f64> = a[j][j..].to_vec();
        v[0] -= alpha;
        let vv: f64 = v.iter().map(|x| x * x).sum();
        if vv > 0.0 {
            for col in a.iter_mut().skip(j) {
                let f = 2.0 * v.iter().zip(&col[j..]).map(|(p, q)| p * q).sum::<f64>() / vv;
                col[j..].iter_mut().zip(&v).for_each(|(c, p)| *c -= f * p);
            }
            let f = 2.0 * v.iter().zip(&b[j..]).map(|(p, q)| p * q).sum::<f64>() / vv;
            b[j..].iter_mut().zip(&v).for_each(|(c, p)| *c -= f * p);
        }
    }
    let mut coef = vec![0.0; k];
    for j in (0..k).rev() {
        let s: f64 = (j + 1..k).map(|c| a[c][j] * coef[c]).sum();
        coef[j] = (b[j] - s) / a[j][j];
    }
    let sse = b[k..].iter().map(|v| v * v).sum();
    Some((coef, sse))
}

/// Solves a 3x3 linear system by Cramer's rule; `None` when it is (numerically) singular.
pub(crate) fn solve3(a: [[f64; 3]; 3], b: [f64; 3]) -> Option<[f64; 3]> {
    let det = |m: [[f64; 3]; 3]| {
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
            - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    };
    let d = det(a);
    let scale = a.iter().flatten().fold(0.0f64, |acc, v| acc.max(v.abs()));
    if d.abs() <= 1e-12 * scale.powi(3) {
        return None;
    }
    let mut out = [0.0; 3];
    for (col, o) in out.iter_mut().enumerate() {
        let mut m = a;
        for row in 0..3 {
            m[row][col] = b[row];
        }
        *o = det(m) / d;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn least_squares_by_hand() {
        // y = 1 + 2 x exactly, plus a point off the line by 1: the fit and its residuals by hand.
        let rows: Vec<Vec<f64>> = [0.0, 1.0, 2.0].iter().map(|&x| vec![1.0, x]).collect();
        let (c, sse) = least_squares(&rows, &[1.0, 3.0, 5.0]).unwrap();
        assert!(
            (c[0] - 1.0).abs() < 1e-14 && (c[1] - 2.0).abs() < 1e-14,
            "{c:?}"
        );
        assert!(sse < 1e-28);
        let (c, sse) = least_squares(&rows, &[1.0, 4.0, 5.0]).unwrap();
        // Normal equations: 3 b0 + 3 b1 = 10, 3 b0 + 5 b1 = 14 -> b1 = 2, b0 = 4/3; SSE 2/3.
        assert!(
            (c[0] - 4.0 / 3.0).abs() < 1e-14 && (c[1] - 2.0).abs() < 1e-14,
            "{c:?}"
        );
        assert!((sse - 2.0 / 3.0).abs() < 1e-14, "{sse}");
        // Rank-deficient and underdetermined designs are refused.
        let twins: Vec<Vec<f64>> = [0.0, 1.0, 2.0].iter().map(|&x| vec![x, 2.0 * x]).collect();
        assert!(least_squares(&twins, &[0.0, 1.0, 2.0]).is_none());
        assert!(least_squares(&rows[..1], &[1.0]).is_none());
    }

    #[test]
    fn line_exact() {
        let l = Line::fit(&[0.0, 1.0, 2.0], &[1.0, 3.0, 5.0]).unwrap();
        assert!((l.slope - 2.0).abs() < 1e-12 && (l.intercept - 1.0).abs() < 1e-12);
        assert!((l.r2 - 1.0).abs() < 1e-12);
        assert!(Line::fit(&[1.0, 1.0], &[1.0, 2.0]).is_none());
    }

    #[test]
    fn power_law_exact() {
        let x = [1e18, 1e19, 1e20, 1e21];
        let y: Vec<f64> = x.iter().map(|c: &f64| 0.1 * c.powf(0.5)).collect();
        let p = PowerLaw::fit(&x, &y).unwrap();
        assert!((p.exponent - 0.5).abs() < 1e-9 && (p.coefficient / 0.1 - 1.0).abs() < 1e-7);
    }

    #[test]
    fn parabola_recovers_vertex_far_from_origin() {
        // Vertex at x = 20 (log N of about 5e8), as in isoFLOP profiles.
        let x: Vec<f64> = (0..7).map(|i| 18.0 + i as f64 * 0.7).collect();
        let y: Vec<f64> = x.iter().map(|v| 2.0 + 0.3 * (v - 20.0).powi(2)).collect();
        let p = Parabola::fit(&x, &y).unwrap();
        assert!((p.vertex() - 20.0).abs() < 1e-8, "{}", p.vertex());
        assert!((p.at(20.0) - 2.0).abs() < 1e-9);
    }
}

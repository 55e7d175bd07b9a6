//! Learning-rate calibration: the best learning rate of each model size from a short LR sweep, and a
//! power-law rule lr*(N) = c (N / N0)^p through them, or lr*(N, D) = c (N / N0)^p (D / D0)^q when
//! each size was scanned at several token counts (what `lab tune` fits and a sweep's `rules` use).
//!
//! Each size's optimum is the vertex of a parabola in ln(lr) through the best grid point and its two
//! neighbours (losses near an optimum are close to quadratic in ln lr); an optimum at the edge of
//! the grid is reported as such and left out of the rule, since the grid does not bracket it.

use crate::regression::{least_squares, solve3, Line, Parabola};
use serde::{Deserialize, Serialize};

/// One size's LR sweep: final losses at each learning rate (None: diverged or failed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LrScan {
    /// What the size is called in tables ("model.n_layer=2 model.d_model=32 ...").
    pub label: String,
    /// Parameter count the rule is a function of.
    pub n: f64,
    /// Training tokens (the `D` of sweep rules), when known.
    #[serde(default)]
    pub d: Option<f64>,
    /// (learning rate, final loss) pairs.
    pub points: Vec<(f64, Option<f64>)>,
}

/// Where a size's best learning rate lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimumKind {
    /// Vertex of the parabola through the best point and its neighbours.
    Bracketed,
    /// The smallest learning rate of the grid was best: the optimum may be lower.
    BelowGrid,
    /// The largest learning rate of the grid was best: the optimum may be higher.
    AboveGrid,
    /// Fewer than two finite losses.
    Undetermined,
}

/// A size's best learning rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LrOptimum {
    /// The size's label.
    pub label: String,
    /// Its parameter count.
    pub n: f64,
    /// Its training tokens, when known.
    #[serde(default)]
    pub d: Option<f64>,
    /// Best learning rate (the vertex when bracketed, else the best grid point).
    pub lr: f64,
    /// Loss there (the parabola's value when bracketed, else the best observed).
    pub loss: f64,
    /// How it was found.
    pub kind: OptimumKind,
    /// Loss at the grid point nearest the rule's prediction minus the best loss: what following the
    /// rule costs this size (filled in by [`calibrate`]).
    pub rule_regret: Option<f64>,
}

/// Which variables a rule is a power law in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleForm {
    /// lr*(N): one scan per size (at one budget each), so N alone is identified.
    Size,
    /// lr*(N, D): sizes scanned at several token counts, so the two exponents are separable.
    SizeAndTokens,
}

/// The token term of an lr*(N, D) rule: (D / d0)^exponent.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TokenTerm {
    /// Reference token count (the geometric mean, rounded to two significant digits).
    pub d0: f64,
    /// Exponent q.
    pub exponent: f64,
    /// Standard error of q (None with exactly three optima).
    pub exponent_se: Option<f64>,
}

/// lr*(N) = coefficient (N / n0)^exponent, times (D / d0)^q when the rule has a token term.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LrRule {
    /// Learning rate at N = n0.
    pub coefficient: f64,
    /// Reference size (the geometric mean of the sizes, rounded to two significant digits).
    pub n0: f64,
    /// Exponent p.
    pub exponent: f64,
    /// Standard error of the exponent (None with two sizes).
    pub exponent_se: Option<f64>,
    /// Optima (sizes, or size-token pairs) the rule was fitted through.
    pub sizes: usize,
    /// The token term of an lr*(N, D) rule.
    #[serde(default)]
    pub tokens: Option<TokenTerm>,
}

impl LrRule {
    /// The rule's learning rate at `n` parameters and `d` tokens (`d` is ignored by a rule in N
    /// alone; a rule in N and D needs it).
    pub fn at(&self, n: f64, d: Option<f64>) -> f64 {
        let size = self.coefficient * (n / self.n0).powf(self.exponent);
        match (self.tokens, d) {
            (Some(t), Some(d)) => size * (d / t.d0).powf(t.exponent),
            (Some(_), None) => f64::NAN,
            (None, _) => size,
        }
    }

    /// The rule as a sweep `rules` expression in N (and D).
    pub fn expression(&self) -> String {
        let size = format!(
            "{} * math::pow(N / {}, {:.3})",
            sig3(self.coefficient),
            sig3(self.n0),
            self.exponent
        );
        match self.tokens {
            Some(t) => format!("{size} * math::pow(D / {}, {:.3})", sig3(t.d0), t.exponent),
            None => size,
        }
    }
}

/// A number with three significant digits, in the notation a sweep expression accepts.
fn sig3(v: f64) -> String {
    format!("{v:.2e}")
}

/// The calibration: every size's optimum and the rule through the bracketed ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LrCalibration {
    /// Per size, in input order.
    pub optima: Vec<LrOptimum>,
    /// The rule, when at least two sizes have a bracketed optimum.
    pub rule: Option<LrRule>,
    /// How the rule's level was set from the scans' losses (with the rule).
    #[serde(default)]
    pub margin: Option<RuleMargin>,
}

/// The rule's level: the fit through the optima moved by the factor at which following it costs
/// the scans least. Losses rise more steeply above the best learning rate than below it (a run
/// past the edge spikes; one below it trains a little slower), and each optimum is one noisy scan,
/// so the rule through the optima is not where following it costs least; the factor is chosen on
/// the measured losses, interpolated in ln(lr) between grid points.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RuleMargin {
    /// The factor applied to the fit through the optima (already in the rule's coefficient).
    pub factor: f64,
    /// Mean over the bracketed scans of the loss at the rule's rate minus the scan's best loss.
    pub mean_regret: f64,
    /// The largest such regret.
    pub max_regret: f64,
    /// The mean regret of the fit through the optima, before the factor.
    pub mean_regret_through_optima: f64,
}

/// A scan's loss at `lr`, interpolated linearly in ln(lr) between its finite points (the edge
/// value beyond them), minus its best finite loss; `None` without finite points.
pub fn interpolated_regret(scan: &LrScan, lr: f64) -> Option<f64> {
    let mut pts: Vec<(f64, f64)> = scan
        .points
        .iter()
        .filter_map(|&(l, v)| v.filter(|v| v.is_finite() && l > 0.0).map(|v| (l.ln(), v)))
        .collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    let best = pts.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let (first, last) = (*pts.first()?, *pts.last()?);
    let x = lr.ln();
    let at = if x <= first.0 {
        first.1
    } else if x >= last.0 {
        last.1
    } else {
        let i = pts.iter().position(|p| p.0 >= x).expect("inside the grid");
        let (a, b) = (pts[i - 1], pts[i]);
        a.1 + (b.1 - a.1) * (x - a.0) / (b.0 - a.0)
    };
    Some(at - best)
}

/// Factors tried for the rule's level: 0.5 to 2 in steps of 5% in ln.
fn margin_factors() -> impl Iterator<Item = f64> {
    (-14..=14).map(|k| (0.05 * k as f64).exp())
}

/// Moves `rule` to the level of least mean interpolated regret over `scans` (ties go to the factor
/// nearest 1), returning the moved rule and the margin.
fn set_level(rule: LrRule, scans: &[&LrScan]) -> (LrRule, Option<RuleMargin>) {
    let regrets = |r: &LrRule| -> Vec<f64> {
        scans
            .iter()
            .filter_map(|s| interpolated_regret(s, r.at(s.n, s.d)))
            .collect()
    };
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let scaled = |f: f64| LrRule {
        coefficient: rule.coefficient * f,
        ..rule
    };
    let base = regrets(&rule);
    if base.is_empty() {
        return (rule, None);
    }
    let mut best: Option<(f64, f64)> = None;
    for f in margin_factors() {
        let m = mean(&regrets(&scaled(f)));
        let better = match best {
            None => true,
            Some((bf, bm)) => m < bm - 1e-12 || (m <= bm + 1e-12 && f.ln().abs() < bf.ln().abs()),
        };
        if better {
            best = Some((f, m));
        }
    }
    let (factor, mean_regret) = best.expect("factors tried");
    let moved = scaled(factor);
    let max_regret = regrets(&moved).into_iter().fold(0.0, f64::max);
    (
        moved,
        Some(RuleMargin {
            factor,
            mean_regret,
            max_regret,
            mean_regret_through_optima: mean(&base),
        }),
    )
}

/// The best learning rate of one scan. A diverged or failed point counts as worse than any finite
/// one: the best finite point next to it is bracketed, at the grid point itself (no parabola
/// through an infinite loss).
pub fn optimum(scan: &LrScan) -> LrOptimum {
    let mut pts: Vec<(f64, Option<f64>)> = scan
        .points
        .iter()
        .filter(|(lr, _)| *lr > 0.0)
        .map(|&(lr, l)| (lr, l.filter(|v| v.is_finite())))
        .collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    let result = |lr: f64, loss: f64, kind| LrOptimum {
        label: scan.label.clone(),
        n: scan.n,
        d: scan.d,
        lr,
        loss,
        kind,
        rule_regret: None,
    };
    let finite: Vec<usize> = (0..pts.len()).filter(|&i| pts[i].1.is_some()).collect();
    let loss = |i: usize| pts[i].1.unwrap_or(f64::INFINITY);
    let Some(best) = finite
        .iter()
        .copied()
        .min_by(|&a, &b| loss(a).total_cmp(&loss(b)))
    else {
        return result(f64::NAN, f64::NAN, OptimumKind::Undetermined);
    };
    let (lr, l) = (pts[best].0, loss(best));
    if finite.len() < 2 {
        return result(lr, l, OptimumKind::Undetermined);
    }
    if best == 0 {
        return result(lr, l, OptimumKind::BelowGrid);
    }
    if best == pts.len() - 1 {
        return result(lr, l, OptimumKind::AboveGrid);
    }
    let window = &pts[best - 1..=best + 1];
    if window.iter().any(|p| p.1.is_none()) {
        return result(lr, l, OptimumKind::Bracketed);
    }
    let x: Vec<f64> = window.iter().map(|p| p.0.ln()).collect();
    let y: Vec<f64> = window
        .iter()
        .map(|p| p.1.unwrap_or(f64::INFINITY))
        .collect();
    match Parabola::fit(&x, &y) {
        // The best point is lower than both neighbours, so the parabola opens upwards and its
        // vertex lies between them.
        Some(p) if p.coef[2] > 0.0 => {
            let v = p.vertex().clamp(x[0], x[2]);
            result(v.exp(), p.at(v), OptimumKind::Bracketed)
        }
        _ => result(lr, l, OptimumKind::Bracketed),
    }
}

/// Every scan's optimum and the power-law rule of `form` through the bracketed optima (least
/// squares in log-log space), moved to the level where following it costs those scans least
/// ([`RuleMargin`]), with each scan's regret under the rule.
pub fn calibrate(scans: &[LrScan], form: RuleForm) -> LrCalibration {
    let mut optima: Vec<LrOptimum> = scans.iter().map(optimum).collect();
    let used: Vec<&LrOptimum> = optima
        .iter()
        .filter(|o| o.kind == OptimumKind::Bracketed && o.n > 0.0)
        .collect();
    let fitted = match form {
        RuleForm::Size => size_rule(&used),
        RuleForm::SizeAndTokens => size_and_tokens_rule(&used),
    };
    let bracketed: Vec<&LrScan> = scans
        .iter()
        .zip(&optima)
        .filter(|(_, o)| o.kind == OptimumKind::Bracketed && o.n > 0.0)
        .map(|(s, _)| s)
        .collect();
    let (rule, margin) = match fitted {
        Some(r) => {
            let (r, m) = set_level(r, &bracketed);
            (Some(r), m)
        }
        None => (None, None),
    };
    if let Some(rule) = &rule {
        for (o, scan) in optima.iter_mut().zip(scans) {
            let target = rule.at(scan.n, scan.d).ln();
            o.rule_regret = scan
                .points
                .iter()
                .filter_map(|&(lr, l)| l.filter(|v| v.is_finite()).map(|v| (lr, v)))
                .min_by(|a, b| {
                    (a.0.ln() - target)
                        .abs()
                        .total_cmp(&(b.0.ln() - target).abs())
                })
                .map(|(_, l)| l - o.loss);
        }
    }
    LrCalibration {
        optima,
        rule,
        margin,
    }
}

/// lr*(N) through the optima: a line in (ln N, ln lr).
fn size_rule(used: &[&LrOptimum]) -> Option<LrRule> {
    let x: Vec<f64> = used.iter().map(|o| o.n.ln()).collect();
    let y: Vec<f64> = used.iter().map(|o| o.lr.ln()).collect();
    Line::fit(&x, &y).map(|line| {
        let mean = x.iter().sum::<f64>() / x.len() as f64;
        let n0 = round_sig(mean.exp(), 2);
        let exponent_se = (x.len() > 2).then(|| {
            let sse: f64 = x
                .iter()
                .zip(&y)
                .map(|(a, b)| (b - line.at(*a)).powi(2))
                .sum();
            let sxx: f64 = x.iter().map(|a| (a - mean).powi(2)).sum();
            (sse / (x.len() - 2) as f64 / sxx).sqrt()
        });
        LrRule {
            coefficient: line.at(n0.ln()).exp(),
            n0,
            exponent: line.slope,
            exponent_se,
            sizes: x.len(),
            tokens: None,
        }
    })
}

/// lr*(N, D) through the optima: a plane in (ln N, ln D, ln lr), centred at the rounded geometric
/// means so the coefficient is the rule's value there. `None` without three optima whose sizes and
/// token counts vary independently (every optimum needs its D).
fn size_and_tokens_rule(used: &[&LrOptimum]) -> Option<LrRule> {
    let nd: Vec<(f64, f64, f64)> = used
        .iter()
        .map(|o| Some((o.n.ln(), o.d.filter(|d| *d > 0.0)?.ln(), o.lr.ln())))
        .collect::<Option<_>>()?;
    let m = nd.len();
    let mean = |f: fn(&(f64, f64, f64)) -> f64| nd.iter().map(f).sum::<f64>() / m as f64;
    let n0 = round_sig(mean(|p| p.0).exp(), 2);
    let d0 = round_sig(mean(|p| p.1).exp(), 2);
    let rows: Vec<Vec<f64>> = nd
        .iter()
        .map(|p| vec![1.0, p.0 - n0.ln(), p.1 - d0.ln()])
        .collect();
    let y: Vec<f64> = nd.iter().map(|p| p.2).collect();
    let (coef, sse) = least_squares(&rows, &y)?;
    // Standard errors from sigma^2 (X'X)^-1, with m - 3 degrees of freedom.
    let se = (m > 3)
        .then(|| {
            let mut xtx = [[0.0; 3]; 3];
            for r in &rows {
                for i in 0..3 {
                    for j in 0..3 {
                        xtx[i][j] += r[i] * r[j];
                    }
                }
            }
            let sigma2 = sse / (m - 3) as f64;
            let diag = |k: usize| {
                let mut unit = [0.0; 3];
                unit[k] = 1.0;
                solve3(xtx, unit).map(|col| (sigma2 * col[k]).max(0.0).sqrt())
            };
            Some((diag(1)?, diag(2)?))
        })
        .flatten();
    Some(LrRule {
        coefficient: coef[0].exp(),
        n0,
        exponent: coef[1],
        exponent_se: se.map(|s| s.0),
        sizes: m,
        tokens: Some(TokenTerm {
            d0,
            exponent: coef[2],
            exponent_se: se.map(|s| s.1),
        }),
    })
}

/// `v` rounded to `digits` significant digits.
fn round_sig(v: f64, digits: i32) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let scale = 10f64.powi(digits - 1 - v.abs().log10().floor() as i32);
    (v * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A size whose loss is quadratic in ln lr with its minimum at `best`.
    fn scan(n: f64, best: f64, grid: &[f64]) -> LrScan {
        LrScan {
            label: format!("n={n}"),
            n,
            d: None,
            points: grid
                .iter()
                .map(|&lr| (lr, Some(2.0 + 0.05 * (lr / best).ln().powi(2))))
                .collect(),
        }
    }

    const GRID: [f64; 5] = [0.001, 0.002, 0.004, 0.008, 0.016];

    #[test]
    fn a_quadratic_optimum_is_found_exactly() {
        let o = optimum(&scan(1e4, 0.005, &GRID));
        assert_eq!(o.kind, OptimumKind::Bracketed);
        assert!((o.lr / 0.005 - 1.0).abs() < 1e-9, "{}", o.lr);
        assert!((o.loss - 2.0).abs() < 1e-9);
    }

    #[test]
    fn an_optimum_off_the_grid_is_flagged_not_guessed() {
        let below = optimum(&scan(1e4, 0.0002, &GRID));
        assert_eq!(below.kind, OptimumKind::BelowGrid);
        assert_eq!(below.lr, 0.001);
        let above = optimum(&scan(1e4, 0.1, &GRID));
        assert_eq!(above.kind, OptimumKind::AboveGrid);
        assert_eq!(above.lr, 0.016);
    }

    #[test]
    fn diverged_points_bound_the_optimum_from_above() {
        // Best finite point 0.004 (true optimum 0.003); 0.008 and 0.016 diverged: the optimum is
        // bracketed, at the grid point, since no parabola passes through a diverged run.
        let mut s = scan(1e4, 0.003, &GRID);
        s.points[4].1 = None;
        s.points[3].1 = Some(f64::NAN);
        let o = optimum(&s);
        assert_eq!(o.kind, OptimumKind::Bracketed);
        assert_eq!(o.lr, 0.004);
        // A diverged point away from the optimum does not change the vertex.
        let mut far = scan(1e4, 0.003, &GRID);
        far.points[4].1 = None;
        let o = optimum(&far);
        assert_eq!(o.kind, OptimumKind::Bracketed);
        assert!((o.lr / 0.003 - 1.0).abs() < 1e-9);
        let mut dead = scan(1e4, 0.003, &GRID);
        for p in &mut dead.points[1..] {
            p.1 = None;
        }
        assert_eq!(optimum(&dead).kind, OptimumKind::Undetermined);
    }

    #[test]
    fn the_rule_recovers_a_power_law_and_ignores_unbracketed_sizes() {
        // lr* = 0.004 (N / 2e4)^-0.4 on four sizes, plus one size whose optimum is off the grid.
        let truth = |n: f64| 0.004 * (n / 2e4f64).powf(-0.4);
        let sizes = [5e3, 1e4, 4e4, 8e4];
        let mut scans: Vec<LrScan> = sizes.iter().map(|&n| scan(n, truth(n), &GRID)).collect();
        scans.push(scan(1e6, 1e-5, &GRID));
        let cal = calibrate(&scans, RuleForm::Size);
        let rule = cal.rule.expect("rule");
        assert_eq!(rule.sizes, 4);
        assert!((rule.exponent + 0.4).abs() < 1e-9, "{}", rule.exponent);
        assert!(rule.exponent_se.unwrap() < 1e-9);
        // n0 is the geometric mean of the sizes, to two digits: (5e3 1e4 4e4 8e4)^(1/4) = 2e4.
        assert_eq!(rule.n0, 2.0e4);
        for n in sizes {
            assert!((rule.at(n, None) / truth(n) - 1.0).abs() < 1e-9);
        }
        assert_eq!(cal.optima[4].kind, OptimumKind::BelowGrid);
        // Regret: the grid point nearest the rule's lr, against the best loss.
        let o = &cal.optima[0];
        let nearest = GRID
            .iter()
            .min_by(|a, b| {
                (a.ln() - truth(5e3).ln())
                    .abs()
                    .total_cmp(&(b.ln() - truth(5e3).ln()).abs())
            })
            .unwrap();
        let expected = 0.05 * (nearest / truth(5e3)).ln().powi(2);
        assert!((o.rule_regret.unwrap() - expected).abs() < 1e-9);
    }

    #[test]
    fn the_size_and_token_rule_separates_the_two_exponents() {
        // lr* = 0.004 (N / 2e4)^-0.5 (D / 1e6)^-0.3 on an isoFLOP-like design: each size at the
        // token counts its budgets give (N and D correlated, but not collinear).
        let truth = |n: f64, d: f64| 0.004 * (n / 2e4f64).powf(-0.5) * (d / 1e6f64).powf(-0.3);
        let grid: Vec<f64> = (0..9).map(|i| 2.5e-4 * 2f64.powi(i)).collect();
        let mut scans = Vec::new();
        for n in [5e3, 1e4, 2e4, 4e4, 8e4] {
            for c in [3e11, 1e12, 3e12] {
                let d: f64 = c / (6.0 * n);
                if !(50.0..=2_000.0).contains(&(d / n)) {
                    continue;
                }
                let mut s = scan(n, truth(n, d), &grid);
                s.d = Some(d);
                scans.push(s);
            }
        }
        let cal = calibrate(&scans, RuleForm::SizeAndTokens);
        let rule = cal.rule.expect("rule");
        let t = rule.tokens.expect("token term");
        assert_eq!(rule.sizes, scans.len());
        assert!((rule.exponent + 0.5).abs() < 1e-9, "{}", rule.exponent);
        assert!((t.exponent + 0.3).abs() < 1e-9, "{}", t.exponent);
        assert!(rule.exponent_se.unwrap() < 1e-9 && t.exponent_se.unwrap() < 1e-9);
        for s in &scans {
            assert!((rule.at(s.n, s.d) / truth(s.n, s.d.unwrap()) - 1.0).abs() < 1e-9);
        }
        // The rule in N alone, fitted on the same optima, absorbs part of the token exponent.
        let size_only = calibrate(&scans, RuleForm::Size).rule.expect("rule");
        assert!(size_only.tokens.is_none());
        assert!(
            (size_only.exponent + 0.5).abs() > 0.05,
            "{}",
            size_only.exponent
        );
        // One token count per size: N and D are not separable when they are collinear.
        let collinear: Vec<LrScan> = [5e3, 1e4, 2e4, 4e4]
            .iter()
            .map(|&n| {
                let d = 100.0 * n;
                let mut s = scan(n, truth(n, d), &grid);
                s.d = Some(d);
                s
            })
            .collect();
        assert!(calibrate(&collinear, RuleForm::SizeAndTokens)
            .rule
            .is_none());
        // Optima without a token count give no rule in N and D.
        let unknown: Vec<LrScan> = scans
            .iter()
            .cloned()
            .map(|s| LrScan { d: None, ..s })
            .collect();
        assert!(calibrate(&unknown, RuleForm::SizeAndTokens).rule.is_none());
    }

    #[test]
    fn a_cliff_above_noisy_optima_moves_the_rule_below_them() {
        // Each size's true optimum lies 1.4x above or below a power law (one scan's noise), and
        // the loss rises 40x more steeply above the optimum than below it. The fit through the
        // optima follows the power law, so half the sizes run 1.4x past their edge; the level
        // that costs least is about 1/1.4 of it.
        let truth = |n: f64| 0.004 * (n / 2e4f64).powf(-0.4);
        let grid: Vec<f64> = (0..13).map(|k| 0.001 * 2f64.powf(k as f64 / 2.0)).collect();
        let scans: Vec<LrScan> = [5e3, 1e4, 2e4, 4e4, 8e4, 1.6e5]
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                let opt = truth(n) * if i % 2 == 0 { 1.4 } else { 1.0 / 1.4 };
                let loss = |lr: f64| {
                    let x = (lr / opt).ln();
                    2.0 + if x > 0.0 { 0.2 } else { 0.005 } * x * x
                };
                LrScan {
                    label: format!("n={n}"),
                    n,
                    d: None,
                    points: grid.iter().map(|&lr| (lr, Some(loss(lr)))).collect(),
                }
            })
            .collect();
        let cal = calibrate(&scans, RuleForm::Size);
        let m = cal.margin.expect("margin");
        assert!((0.6..0.85).contains(&m.factor), "{m:?}");
        assert!(m.mean_regret < m.mean_regret_through_optima / 2.5, "{m:?}");
        assert!(m.max_regret >= m.mean_regret);
        // The coefficient carries the factor; the exponent is the fit's.
        let r = cal.rule.unwrap();
        assert!(
            (r.at(2e4, None) / truth(2e4) - m.factor).abs() < 0.15,
            "{r:?}"
        );
        // The interpolation itself: halfway (in ln lr) between two grid points of a scan.
        let s = &scans[0];
        let mid = (grid[3] * grid[4]).sqrt();
        let best = s
            .points
            .iter()
            .map(|p| p.1.unwrap())
            .fold(f64::INFINITY, f64::min);
        let expected = (s.points[3].1.unwrap() + s.points[4].1.unwrap()) / 2.0 - best;
        assert!((interpolated_regret(s, mid).unwrap() - expected).abs() < 1e-12);
        assert_eq!(
            interpolated_regret(s, 1e-9),
            Some(s.points[0].1.unwrap() - best)
        );
    }

    #[test]
    fn the_expression_evaluates_to_the_rule() {
        let rule = LrRule {
            coefficient: 0.0123,
            n0: 2.1e4,
            exponent: -0.4321,
            exponent_se: None,
            sizes: 3,
            tokens: None,
        };
        assert_eq!(rule.expression(), "1.23e-2 * math::pow(N / 2.10e4, -0.432)");
        let with_d = LrRule {
            tokens: Some(TokenTerm {
                d0: 3.4e6,
                exponent: -0.2468,
                exponent_se: None,
            }),
            ..rule
        };
        assert_eq!(
            with_d.expression(),
            "1.23e-2 * math::pow(N / 2.10e4, -0.432) * math::pow(D / 3.40e6, -0.247)"
        );
        // 0.0123 (4.2e4 / 2.1e4)^-0.4321 (6.8e5 / 3.4e6)^-0.2468, by hand: 0.0123 x 0.741182 x 1.487667.
        let v = with_d.at(4.2e4, Some(6.8e5));
        assert!((v - 0.0123 * 0.741_182 * 1.487_667).abs() < 1e-6, "{v}");
        assert!(with_d.at(4.2e4, None).is_nan());
        assert_eq!(round_sig(23456.0, 2), 23000.0);
        assert_eq!(round_sig(0.0012345, 2), 0.0012);
    }
}

//! Observations (N, D, C, loss) and their validation and grouping.

use crate::error::{FitError, FitResult};
use serde::{Deserialize, Serialize};

/// One measured point: a model of `n` parameters trained on `d` tokens with compute `c`, reaching `loss`.
///
/// `run` identifies the training run the point belongs to (points of one training curve share it);
/// approach 1 needs it, the other fits ignore it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Obs {
    /// Parameters (total, non-embedding or active: the caller chooses and records which).
    pub n: f64,
    /// Training tokens.
    pub d: f64,
    /// Training compute in FLOPs.
    pub c: f64,
    /// Loss (nats per token).
    pub loss: f64,
    /// Training-run identifier (one per curve).
    pub run: u32,
}

impl Obs {
    /// A point with D derived as C / (6 N) (the convention of the Chinchilla paper and Epoch's replication).
    pub fn from_n_c(n: f64, c: f64, loss: f64) -> Self {
        Obs {
            n,
            d: c / (6.0 * n),
            c,
            loss,
            run: 0,
        }
    }

    /// A point with C = 6 N D.
    pub fn from_n_d(n: f64, d: f64, loss: f64) -> Self {
        Obs {
            n,
            d,
            c: 6.0 * n * d,
            loss,
            run: 0,
        }
    }
}

/// Checks every value is positive and finite and that there are at least `needed` points.
pub fn validate(points: &[Obs], law: &'static str, needed: usize) -> FitResult<()> {
    if points.len() < needed {
        return Err(FitError::TooFewPoints {
            law,
            needed,
            got: points.len(),
        });
    }
    for (row, p) in points.iter().enumerate() {
        for (column, value) in [("n", p.n), ("d", p.d), ("c", p.c), ("loss", p.loss)] {
            if !(value.is_finite() && value > 0.0) {
                return Err(FitError::BadValue { row, column, value });
            }
        }
    }
    Ok(())
}

/// Groups points into compute budgets: sorted by C, a new budget starts where C grows by more than
/// `ratio` over the previous point. Returns the indices of each budget, smallest budget first.
pub fn group_budgets(points: &[Obs], ratio: f64) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.sort_by(|&i, &j| points[i].c.total_cmp(&points[j].c));
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut prev = f64::NAN;
    for i in order {
        let c = points[i].c;
        match groups.last_mut() {
            Some(g) if c <= prev * ratio => g.push(i),
            _ => groups.push(vec![i]),
        }
        prev = c;
    }
    groups
}

/// Geometric mean of C over a group of points: the budget's nominal compute.
pub fn budget_compute(points: &[Obs], group: &[usize]) -> f64 {
    let s: f64 = group.iter().map(|&i| points[i].c.ln()).sum();
    (s / group.len() as f64).exp()
}

/// Number of distinct values of N in a group (relative tolerance 1e-6).
pub fn distinct_sizes(points: &[Obs], group: &[usize]) -> usize {
    let mut ns: Vec<f64> = group.iter().map(|&i| points[i].n).collect();
    ns.sort_by(f64::total_cmp);
    ns.dedup_by(|a, b| (*a - *b).abs() <= 1e-6 * b.abs());
    ns.len()
}

/// Points on the lower-left Pareto frontier of (C, loss): sorted by C, each point has a lower loss
/// than every point of smaller compute.
pub fn pareto_frontier(points: &[Obs]) -> Vec<Obs> {
    let mut sorted = points.to_vec();
    sorted.sort_by(|a, b| a.c.total_cmp(&b.c));
    let mut best = f64::INFINITY;
    sorted
        .into_iter()
        .filter(|p| {
            let keep = p.loss < best;
            if keep {
                best = p.loss;
            }
            keep
        })
        .collect()
}

/// Reads (N, C, loss) points from a simple CSV text (header row, comma separated, no quoting), with
/// D = C / (6N). For examples and tests on published tables; lab's CLI reads tables with polars.
pub fn points_from_csv(
    text: &str,
    n_col: &str,
    c_col: &str,
    loss_col: &str,
) -> Result<Vec<Obs>, String> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines.next().ok_or("empty CSV")?.split(',').collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .ok_or(format!("no column '{name}'"))
    };
    let (n, c, l) = (col(n_col)?, col(c_col)?, col(loss_col)?);
    lines
        .enumerate()
        .map(|(i, line)| {
            let f: Vec<&str> = line.split(',').collect();
            let num = |k: usize| -> Result<f64, String> {
                f.get(k)
                    .and_then(|v| v.trim().parse().ok())
                    .ok_or(format!("row {}: column {k} is not a number", i + 1))
            };
            let mut p = Obs::from_n_c(num(n)?, num(c)?, num(l)?);
            p.run = i as u32;
            Ok(p)
        })
        .collect()
}

/// The points without the `k` highest losses, in their original order.
pub fn drop_highest_loss(points: Vec<Obs>, k: usize) -> Vec<Obs> {
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.sort_by(|&a, &b| points[b].loss.total_cmp(&points[a].loss));
    let dropped: std::collections::HashSet<usize> = order.into_iter().take(k).collect();
    points
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !dropped.contains(i))
        .map(|(_, p)| p)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_split_on_gaps() {
        let pts: Vec<Obs> = [1e18, 1.05e18, 0.98e18, 4e18, 4.1e18, 1.6e19]
            .iter()
            .map(|&c| Obs::from_n_c(1e8, c, 3.0))
            .collect();
        let g = group_budgets(&pts, 1.25);
        assert_eq!(g.len(), 3);
        assert_eq!(g[0].len(), 3);
        assert_eq!(g[1].len(), 2);
        assert!((budget_compute(&pts, &g[2]) - 1.6e19).abs() < 1e6);
    }

    #[test]
    fn validation_names_row_and_column() {
        let mut pts = vec![Obs::from_n_d(1e8, 1e9, 3.0); 3];
        pts[2].loss = f64::NAN;
        let err = validate(&pts, "test", 2).unwrap_err();
        assert!(
            matches!(
                err,
                FitError::BadValue {
                    row: 2,
                    column: "loss",
                    ..
                }
            ),
            "{err}"
        );
        let err = validate(&pts[..1], "test", 2).unwrap_err();
        assert_eq!(
            err,
            FitError::TooFewPoints {
                law: "test",
                needed: 2,
                got: 1
            }
        );
    }

    #[test]
    fn pareto_keeps_improving_points() {
        let pts = vec![
            Obs::from_n_c(1.0, 1.0, 5.0),
            Obs::from_n_c(1.0, 2.0, 6.0),
            Obs::from_n_c(1.0, 3.0, 4.0),
            Obs::from_n_c(1.0, 4.0, 4.5),
        ];
        let f = pareto_frontier(&pts);
        assert_eq!(f.iter().map(|p| p.loss).collect::<Vec<_>>(), vec![5.0, 4.0]);
    }
}

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

/// The scatter between runs that repeat one configuration (seeds).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ReplicateNoise {
    /// Runs read.
    pub runs: usize,
    /// Configurations they pool into.
    pub configurations: usize,
    /// Configurations with two or more runs.
    pub repeated: usize,
    /// One run's scatter: the pooled within-configuration standard deviation of ln L.
    pub sd_ln_loss: f64,
}

/// Runs that repeat a configuration, pooled into one point each.
#[derive(Debug, Clone, PartialEq)]
pub struct Pooled {
    /// One final point per configuration (the mean loss of its runs); `run` is the configuration.
    pub finals: Vec<Obs>,
    /// Each configuration's curve: the mean loss at the compute values every run of it evaluated.
    pub curves: Option<Vec<Obs>>,
    /// The scatter between repeated runs; `None` when no configuration repeats.
    pub noise: Option<ReplicateNoise>,
    /// How many runs each pooled point (by its `run`) averages.
    pub runs_per_point: Vec<usize>,
}

/// Pools the runs that repeat one configuration: `config[r]` is the configuration of run `r` (the
/// `run` field of `finals` and `curves`, numbered from 0). A mean of k seeds carries 1/sqrt(k) of
/// one run's scatter, and the envelope of approach 1 no longer picks the luckiest seed.
pub fn pool_replicates(finals: &[Obs], curves: Option<&[Obs]>, config: &[usize]) -> Pooled {
    use std::collections::{BTreeMap, HashMap};
    // Each configuration's runs, in order of first appearance: group g becomes point g.
    let mut point: HashMap<usize, usize> = HashMap::new();
    let mut groups: Vec<Vec<&Obs>> = Vec::new();
    for p in finals {
        let g = *point.entry(config[p.run as usize]).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[g].push(p);
    }
    let point_of_run = |run: u32| config.get(run as usize).and_then(|k| point.get(k)).copied();
    let pooled_finals: Vec<Obs> = groups
        .iter()
        .enumerate()
        .map(|(g, m)| Obs {
            loss: m.iter().map(|p| p.loss).sum::<f64>() / m.len() as f64,
            run: g as u32,
            ..*m[0]
        })
        .collect();
    let repeated: Vec<&Vec<&Obs>> = groups.iter().filter(|m| m.len() > 1).collect();
    let noise = (!repeated.is_empty()).then(|| {
        let (mut ss, mut dof) = (0.0, 0usize);
        for m in &repeated {
            let logs: Vec<f64> = m.iter().map(|p| p.loss.ln()).collect();
            let mean = logs.iter().sum::<f64>() / logs.len() as f64;
            ss += logs.iter().map(|l| (l - mean).powi(2)).sum::<f64>();
            dof += logs.len() - 1;
        }
        ReplicateNoise {
            runs: finals.len(),
            configurations: groups.len(),
            repeated: repeated.len(),
            sd_ln_loss: (ss / dof as f64).sqrt(),
        }
    });
    let curves = curves.map(|curves| {
        // (point, compute) -> (a point there, summed loss, runs that evaluated it)
        let mut at: BTreeMap<(usize, u64), (Obs, f64, usize)> = BTreeMap::new();
        for p in curves {
            let Some(g) = point_of_run(p.run) else {
                continue;
            };
            let run = g as u32;
            let e = at
                .entry((g, p.c.to_bits()))
                .or_insert((Obs { run, ..*p }, 0.0, 0));
            e.1 += p.loss;
            e.2 += 1;
        }
        at.into_iter()
            .filter(|((g, _), (_, _, count))| *count == groups[*g].len())
            .map(|(_, (p, sum, count))| Obs {
                loss: sum / count as f64,
                ..p
            })
            .collect()
    });
    Pooled {
        runs_per_point: groups.iter().map(Vec::len).collect(),
        finals: pooled_finals,
        curves,
        noise,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_runs_pool_into_means_with_their_scatter() {
        let run = |n: f64, loss: f64, run: u32| Obs {
            n,
            d: 1e6,
            c: 6e6 * n,
            loss,
            run,
        };
        // Runs 0 and 2 repeat configuration 7, run 1 is alone (configuration 3).
        let finals = vec![run(1e3, 2.0, 0), run(2e3, 1.8, 1), run(1e3, 2.2, 2)];
        // (compute, n, loss, run)
        let curves: Vec<Obs> = [
            (1.0, 1e3, 3.0, 0),
            (2.0, 1e3, 2.0, 0),
            (1.0, 1e3, 3.4, 2),
            (2.0, 1e3, 2.2, 2),
            (3.0, 1e3, 2.1, 2),
            (1.0, 2e3, 2.5, 1),
        ]
        .iter()
        .map(|&(c, n, loss, r)| Obs {
            c,
            ..run(n, loss, r)
        })
        .collect();
        let p = pool_replicates(&finals, Some(&curves), &[7, 3, 7]);
        assert_eq!(p.finals.len(), 2);
        assert_eq!(p.runs_per_point, vec![2, 1]);
        assert_eq!((p.finals[0].run, p.finals[0].n), (0, 1e3));
        assert!((p.finals[0].loss - 2.1).abs() < 1e-12);
        assert_eq!((p.finals[1].run, p.finals[1].loss), (1, 1.8));
        // One repeated pair: sd of ln L = |ln 2.2 - ln 2.0| / sqrt 2.
        let noise = p.noise.unwrap();
        assert_eq!(
            (noise.runs, noise.configurations, noise.repeated),
            (3, 2, 1)
        );
        let want = (2.2f64.ln() - 2.0f64.ln()) / 2f64.sqrt();
        assert!((noise.sd_ln_loss - want).abs() < 1e-12);
        // Curves: means where both seeds evaluated (c = 1, 2), not where one did (c = 3).
        let c = p.curves.unwrap();
        let mine: Vec<(u32, f64, f64)> = c.iter().map(|o| (o.run, o.c, o.loss)).collect();
        assert_eq!(mine.len(), 3, "{mine:?}");
        let has = |run: u32, c: f64, loss: f64| {
            mine.iter()
                .any(|m| m.0 == run && m.1 == c && (m.2 - loss).abs() < 1e-12)
        };
        assert!(
            has(0, 1.0, 3.2) && has(0, 2.0, 2.1) && has(1, 1.0, 2.5),
            "{mine:?}"
        );
        // Nothing repeated: the points as they were, no scatter.
        let alone = pool_replicates(&finals, None, &[0, 1, 2]);
        assert_eq!(alone.finals, finals);
        assert!(alone.noise.is_none() && alone.curves.is_none());
    }

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

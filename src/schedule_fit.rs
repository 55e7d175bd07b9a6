//! `lab fit --schedule-fit FILTER`: Tissue et al.'s schedule-aware law (`fit::schedule_law`) on the
//! training curves of a results folder. For every model shape, the law is fitted on the curves of
//! the runs that match the filter (e.g. `schedule=wsd`) and predicts the curve of every other
//! finished run of that shape from its schedule alone; the errors say whether one schedule's curve
//! can stand for another's. Writes `<out>/schedule.{json,md}`.

use crate::collect::find_runs;
use crate::config::RunConfig;
use crate::error::{LabError, LabResult};
use crate::table::{done_runs_mask, numbers, read_frame, texts};
use crate::train::schedule::{lr_at, warmup_end};
use fit::schedule_law::{self, Curve, LambdaChoice, ScheduleFit};
use fit::Estimate;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;

/// A run's curve: its schedule and (step, validation loss) after its warmup; or the mean curve of
/// the runs that repeat one configuration with different seeds.
struct RunCurve {
    /// The run's id (`id+id` for seeds pooled).
    id: String,
    cfg: RunConfig,
    curve: Curve,
}

/// A predicted run: how well the law fitted elsewhere foretells its curve.
#[derive(Debug, Clone, Serialize)]
pub struct Prediction {
    /// Run id.
    pub id: String,
    /// Its schedule.
    pub schedule: String,
    /// Observed final validation loss.
    pub final_loss: f64,
    /// Predicted final loss, with the bootstrap interval.
    pub predicted_final: Estimate,
    /// predicted / observed - 1 at the last evaluation.
    pub final_rel_error: f64,
    /// Mean |predicted / observed - 1| over the evaluations after warmup.
    pub curve_mean_abs_rel_error: f64,
    /// (step, observed, predicted) at each evaluation after warmup.
    pub curve: Vec<(u64, f64, f64)>,
}

/// The fit of one shape.
#[derive(Debug, Clone, Serialize)]
pub struct ShapeFit {
    /// The shape (`n_layer`, `d_model`, `n_head`) and its non-embedding parameters.
    pub shape: String,
    /// Runs fitted on.
    pub fitted_on: Vec<String>,
    /// The law.
    pub fit: ScheduleFit,
    /// Every other finished run of the shape.
    pub predictions: Vec<Prediction>,
}

/// The content of schedule.json.
#[derive(Debug, Clone, Serialize)]
pub struct ScheduleFile {
    /// The filter that chose the fitted runs.
    pub filter: String,
    /// Whether the runs repeating one configuration with different seeds were pooled into their
    /// mean curve (fitted on and predicted as one).
    pub seeds_pooled: bool,
    /// The momentum of the annealing area: held at a value, or fitted per shape.
    pub lambda: LambdaChoice,
    /// One fit per shape with fitted runs.
    pub shapes: Vec<ShapeFit>,
}

/// Reads every finished run's curve (after warmup) and schedule; `fitted[i]` says whether run i
/// matches the filter.
fn read_curves(dir: &Path, filter: &str) -> LabResult<(Vec<RunCurve>, Vec<bool>)> {
    let runs_path = dir.join("runs.parquet");
    let runs = read_frame(&runs_path)?;
    let done = done_runs_mask(&runs, &[], &runs_path)?;
    let matched = done_runs_mask(&runs, &[filter.to_string()], &runs_path)?;
    let ids = texts(&runs, "id", &runs_path)?;
    let wanted: HashMap<String, bool> = (0..runs.height())
        .filter(|&i| done[i])
        .filter_map(|i| Some((ids[i].clone()?, matched[i])))
        .collect();
    let curves_path = dir.join("curves.parquet");
    let cdf = read_frame(&curves_path)?;
    let cid = texts(&cdf, "id", &curves_path)?;
    let step = numbers(&cdf, "step", &curves_path)?;
    let val = numbers(&cdf, "val_loss", &curves_path)?;
    let mut by_id: HashMap<&str, Vec<(u64, f64)>> = HashMap::new();
    for i in 0..cdf.height() {
        if let (Some(id), Some(s), Some(l)) = (&cid[i], step[i], val[i]) {
            by_id.entry(id.as_str()).or_default().push((s as u64, l));
        }
    }
    let mut curves = Vec::new();
    let mut fitted = Vec::new();
    for r in find_runs(dir)? {
        let (Some(&m), Some(cfg)) = (wanted.get(&r.id), r.cfg) else {
            continue;
        };
        let steps = cfg.steps();
        let lrs: Vec<f64> = (0..steps).map(|s| lr_at(&cfg.train, s, steps)).collect();
        let after = warmup_end(&cfg.train, steps);
        let mut evals: Vec<(usize, f64)> = by_id
            .get(r.id.as_str())
            .map(|v| {
                v.iter()
                    .filter(|&&(s, _)| s > after && s <= steps)
                    .map(|&(s, l)| (s as usize, l))
                    .collect()
            })
            .unwrap_or_default();
        evals.sort_by_key(|p| p.0);
        evals.dedup_by_key(|p| p.0);
        if evals.is_empty() {
            continue;
        }
        curves.push(RunCurve {
            id: r.id,
            cfg,
            curve: Curve { lrs, evals },
        });
        fitted.push(m);
    }
    Ok((curves, fitted))
}

/// Pools the curves of runs that differ only in their seed (and sweep name; and were chosen alike
/// by the filter)
/// into one: the mean loss at each evaluation step every seed has. A mean of k seeds carries
/// 1/sqrt(k) of one run's scatter, which is what a 1% prediction has to be judged against.
fn pool_seeds(curves: Vec<RunCurve>, fitted: Vec<bool>) -> (Vec<RunCurve>, Vec<bool>) {
    let unseeded = |c: &RunConfig| {
        let mut c = c.clone();
        c.train.seed = 0;
        c.name.clear();
        c
    };
    let mut groups: Vec<(RunConfig, bool, Vec<RunCurve>)> = Vec::new();
    for (c, m) in curves.into_iter().zip(fitted) {
        let key = unseeded(&c.cfg);
        match groups.iter_mut().find(|g| g.1 == m && g.0 == key) {
            Some(g) => g.2.push(c),
            None => groups.push((key, m, vec![c])),
        }
    }
    groups
        .into_iter()
        .filter_map(|(_, m, mut runs)| {
            if runs.len() == 1 {
                return runs.pop().map(|r| (r, m));
            }
            let k = runs.len();
            let mut sums: BTreeMap<usize, (f64, usize)> = BTreeMap::new();
            for r in &runs {
                for &(s, l) in &r.curve.evals {
                    let e = sums.entry(s).or_insert((0.0, 0));
                    e.0 += l;
                    e.1 += 1;
                }
            }
            let evals: Vec<(usize, f64)> = sums
                .into_iter()
                .filter(|(_, (_, n))| *n == k)
                .map(|(s, (sum, _))| (s, sum / k as f64))
                .collect();
            if evals.is_empty() {
                return None;
            }
            let id = runs
                .iter()
                .map(|r| r.id.as_str())
                .collect::<Vec<_>>()
                .join("+");
            let first = runs.swap_remove(0);
            Some((
                RunCurve {
                    id,
                    cfg: first.cfg,
                    curve: Curve {
                        lrs: first.curve.lrs,
                        evals,
                    },
                },
                m,
            ))
        })
        .unzip()
}

/// Parses `--schedule-lambda`: a momentum in [0, 1), or `fit`.
pub fn parse_lambda(s: &str) -> Result<LambdaChoice, String> {
    if s.trim() == "fit" {
        return Ok(LambdaChoice::Fitted);
    }
    match s.trim().parse::<f64>() {
        Ok(l) if (0.0..1.0).contains(&l) => Ok(LambdaChoice::Fixed(l)),
        _ => Err(format!(
            "expected a momentum in [0, 1) (Tissue et al.: 0.999) or `fit`, got `{s}`"
        )),
    }
}

/// Fits the law per shape on the runs matching `filter` (annealing momentum `lambda`) and predicts
/// the others; `pool` pools the runs that differ only in their seed into their mean curve.
pub fn analyse(
    dir: &Path,
    filter: &str,
    lambda: LambdaChoice,
    pool: bool,
    replicates: usize,
    seed: u64,
) -> LabResult<ScheduleFile> {
    let (curves, fitted) = read_curves(dir, filter)?;
    let (curves, fitted) = if pool {
        pool_seeds(curves, fitted)
    } else {
        (curves, fitted)
    };
    let mut shapes: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, c) in curves.iter().enumerate() {
        let m = &c.cfg.model;
        let n = models::account(m).params_nonembedding;
        let key = format!(
            "n_layer {} d_model {} n_head {} (N = {n})",
            m.n_layer, m.d_model, m.n_head
        );
        shapes.entry(key).or_default().push(i);
    }
    let mut out = Vec::new();
    for (shape, members) in shapes {
        let (fit_on, others): (Vec<usize>, Vec<usize>) =
            members.into_iter().partition(|&i| fitted[i]);
        if fit_on.is_empty() {
            continue;
        }
        let seen: Vec<Curve> = fit_on.iter().map(|&i| curves[i].curve.clone()).collect();
        let fit = schedule_law::fit(&seen, lambda, replicates, 0.95, seed)
            .map_err(|e| LabError::input(dir, None, format!("{shape}: {e}")))?;
        let predictions = others.iter().map(|&i| predict(&curves[i], &fit)).collect();
        out.push(ShapeFit {
            shape,
            fitted_on: fit_on.iter().map(|&i| curves[i].id.clone()).collect(),
            fit,
            predictions,
        });
    }
    if out.is_empty() {
        return Err(LabError::input(
            dir,
            None,
            format!("--schedule-fit {filter}: no finished run matches"),
        ));
    }
    Ok(ScheduleFile {
        filter: filter.to_string(),
        seeds_pooled: pool,
        lambda,
        shapes: out,
    })
}

fn predict(run: &RunCurve, fit: &ScheduleFit) -> Prediction {
    let curve: Vec<(u64, f64, f64)> = run
        .curve
        .evals
        .iter()
        .zip(fit.law.predict(&run.curve))
        .map(|(&(step, obs), pred)| (step as u64, obs, pred))
        .collect();
    let &(last_step, last_obs, last_pred) = curve.last().expect("curves are not empty");
    // Each replicate predicts the last evaluation with its own lambda.
    let last = Curve {
        lrs: run.curve.lrs.clone(),
        evals: vec![(last_step as usize, last_obs)],
    };
    let samples: Vec<f64> = fit.replicates.iter().map(|l| l.predict(&last)[0]).collect();
    Prediction {
        id: run.id.clone(),
        schedule: format!("{:?}", run.cfg.train.schedule).to_lowercase(),
        final_loss: last_obs,
        predicted_final: Estimate::from_samples(last_pred, &samples, 0.95),
        final_rel_error: last_pred / last_obs - 1.0,
        curve_mean_abs_rel_error: curve.iter().map(|c| (c.2 / c.1 - 1.0).abs()).sum::<f64>()
            / curve.len() as f64,
        curve,
    }
}

/// The analysis as markdown.
pub fn markdown(f: &ScheduleFile) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Schedule-aware law (Tissue et al. 2024): L = L0 + A S1^-alpha - C S2, lambda {}\n\nFitted per shape on the runs with `{}`; every other finished run of the shape is predicted from its schedule alone (evaluations after warmup).{}\n",
        match f.lambda {
            LambdaChoice::Fixed(l) => format!("held at {l}"),
            LambdaChoice::Fitted => "fitted per shape".into(),
        },
        f.filter,
        if f.seeds_pooled {
            " Runs that differ only in their seed are pooled into their mean curve (`a+b` names the runs pooled)."
        } else {
            ""
        }
    );
    for sh in &f.shapes {
        let e = |x: &Estimate| crate::fitreport::with_interval(x);
        let _ = writeln!(
            s,
            "## {}\n\nFitted on {} ({} points, RMS relative residual {:.2}%): L0 = {}, A = {}, alpha = {}, C = {}{}.\n",
            sh.shape,
            sh.fitted_on.join(", "),
            sh.fit.points,
            100.0 * sh.fit.rms_rel_error,
            e(&sh.fit.l0),
            e(&sh.fit.a),
            e(&sh.fit.alpha),
            e(&sh.fit.c),
            if sh.fit.lambda_fitted {
                format!(
                    ", lambda = {} (a memory of {:.0} steps)",
                    e(&sh.fit.lambda),
                    1.0 / (1.0 - sh.fit.law.lambda)
                )
            } else {
                String::new()
            }
        );
        for w in &sh.fit.at_bound {
            let _ = writeln!(s, "**Not identified:** {w}.\n");
        }
        if sh.predictions.is_empty() {
            let _ = writeln!(s, "No other finished run of this shape to predict.\n");
            continue;
        }
        let _ = writeln!(
            s,
            "| run | schedule | final loss | predicted | error | mean curve error |\n|---|---|---|---|---|---|"
        );
        for p in &sh.predictions {
            let _ = writeln!(
                s,
                "| {} | {} | {:.4} | {} | {:+.2}% | {:.2}% |",
                p.id,
                p.schedule,
                p.final_loss,
                e(&p.predicted_final),
                100.0 * p.final_rel_error,
                100.0 * p.curve_mean_abs_rel_error
            );
        }
        let _ = writeln!(s);
    }
    s
}

/// Writes schedule.json and schedule.md into `out`.
pub fn write(out: &Path, f: &ScheduleFile) -> LabResult<()> {
    crate::results::write_report(out, "schedule", f, &markdown(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(id: &str, seed: u64, lr: f64, evals: &[(usize, f64)]) -> RunCurve {
        let yaml = format!(
            "name: t{seed}\nmodel: {{n_layer: 2, d_model: 16, n_head: 2, vocab: 64, seq_len: 32}}\ntrain: {{tokens: 1000, lr: {lr}, seed: {seed}}}\n"
        );
        RunCurve {
            id: id.into(),
            cfg: serde_yaml::from_str(&yaml).unwrap(),
            curve: Curve {
                lrs: vec![lr; 4],
                evals: evals.to_vec(),
            },
        }
    }

    #[test]
    fn seeds_pool_into_the_mean_at_shared_steps() {
        let curves = vec![
            run("a0", 0, 0.01, &[(1, 3.0), (2, 2.0), (3, 1.0)]),
            run("b0", 0, 0.02, &[(2, 5.0)]),
            run("a1", 1, 0.01, &[(2, 2.5), (3, 2.0)]),
            // Same configuration and seed 2, but chosen by the filter: kept apart.
            run("a2", 2, 0.01, &[(2, 9.0)]),
        ];
        let (pooled, fitted) = pool_seeds(curves, vec![false, false, false, true]);
        let ids: Vec<&str> = pooled.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["a0+a1", "b0", "a2"]);
        assert_eq!(fitted, [false, false, true]);
        // Step 1 is dropped (seed 1 did not evaluate it); steps 2 and 3 are means.
        assert_eq!(pooled[0].curve.evals, [(2, 2.25), (3, 1.5)]);
        assert_eq!(pooled[1].curve.evals, [(2, 5.0)]);
    }
}

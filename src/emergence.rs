//! Emergence analysis of a results folder: each task's metrics at every run's last evaluation,
//! against log10 compute or log10 N, with jump detection and the mirage check (fit::emergence);
//! and exact match at every evaluation against the validation loss, with the test of whether
//! model sizes collapse onto one curve of the loss (fit::loss_axis).

use crate::error::{LabError, LabResult};
use crate::table::{read_frame, strings};
use fit::emergence::{detect, mirage, rises_in_data, JumpFit, MetricPoint, MirageCheck, Verdict};
use fit::loss_axis::{loss_axis, LossAxis, LossPoint};
use fit::resolution::{resolution, RatePoint, Resolution};
use fit::subtasks::{
    observed_half, predict_crossing, subtask_check, CrossingPrediction, SubtaskCheck,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;

/// The x axis of the analysis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum EmergenceX {
    /// log10 of the training compute.
    Compute,
    /// log10 of the non-embedding parameters.
    Params,
}

/// The analysis of one task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskEmergence {
    /// Task name.
    pub task: String,
    /// Exact match per run.
    pub exact_match: Vec<MetricPoint>,
    /// Per-token accuracy per run.
    pub token_accuracy: Vec<MetricPoint>,
    /// Geometric-mean probability of the answer tokens, exp(log p / length): continuous.
    pub answer_prob: Vec<MetricPoint>,
    /// Mean answer length (tokens).
    pub answer_length: f64,
    /// Chance of an exact match.
    pub chance: f64,
    /// Jump detection on exact match.
    pub jump: JumpFit,
    /// Jump detection on the continuous metric (absent for a composite's steps, which record
    /// exact match only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continuous: Option<JumpFit>,
    /// The mirage check (when exact match is not smooth).
    pub mirage: Option<MirageCheck>,
    /// Exact match at every evaluation against the validation loss, sizes tested for collapse
    /// (absent when the folder has no curves).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_axis: Option<LossAxis>,
    /// Exact match at every evaluation against the task's own loss (the answer's negative
    /// log-probability per token), sizes tested for collapse (absent without that metric).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_loss_axis: Option<LossAxis>,
    /// The sub-task check of a composite task's rise, a jump or a steep rise (tasks
    /// `<task>.step<i>` are its steps; absent for other tasks, or when exact match never gets
    /// [`fit::emergence::MIN_RISE`] above chance).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtasks: Option<SubtaskCheck>,
    /// Where the composite crosses 50%, predicted from its steps on the models below the jump,
    /// against where it does (with `subtasks`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crossing: Option<CrossingPrediction>,
    /// The trend of PassUntil's sampled success rates where greedy exact match was below its bar
    /// (absent without `tasks.pass_until`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<Resolution>,
}

/// The content of emergence.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmergenceFile {
    /// What x is.
    pub x: EmergenceX,
    /// Per task.
    pub tasks: Vec<TaskEmergence>,
}

/// Pools runs at the same x (seeds of one size): the example-weighted mean over their examples.
fn pool_seeds(mut pts: Vec<MetricPoint>) -> Vec<MetricPoint> {
    pts.sort_by(|a, b| a.x.total_cmp(&b.x));
    let mut out: Vec<MetricPoint> = Vec::new();
    for p in pts {
        match out.last_mut() {
            Some(q) if (q.x - p.x).abs() < 1e-9 => {
                let n = q.n + p.n;
                q.value = (q.value * q.n as f64 + p.value * p.n as f64) / n.max(1) as f64;
                q.n = n;
            }
            _ => out.push(p),
        }
    }
    out
}

/// Reads the last evaluation of every done run and analyses every task; seeds of one size are
/// pooled.
pub fn analyse(dir: &Path, x: EmergenceX) -> LabResult<EmergenceFile> {
    let evals_path = dir.join("evals.parquet");
    let runs_path = dir.join("runs.parquet");
    if !evals_path.exists() || !runs_path.exists() {
        return Err(LabError::input(
            dir,
            None,
            "no evals.parquet/runs.parquet: run `lab collect` on a sweep whose runs have a `tasks` section",
        ));
    }
    let runs = read_frame(&runs_path)?;
    let ids = strings(&runs, "id", &runs_path)?;
    let status = strings(&runs, "status", &runs_path)?;
    let n = crate::table::numbers(&runs, "params_nonembedding", &runs_path)?;
    let done: HashMap<&str, Option<f64>> = ids
        .iter()
        .zip(&status)
        .zip(&n)
        .filter(|((_, s), _)| s.as_str() == "done")
        .map(|((id, _), n)| (id.as_str(), *n))
        .collect();
    let ev = read_frame(&evals_path)?;
    let (eid, task, metric) = (
        strings(&ev, "id", &evals_path)?,
        strings(&ev, "task", &evals_path)?,
        strings(&ev, "metric", &evals_path)?,
    );
    let num = |c| crate::table::numbers(&ev, c, &evals_path);
    let (step, compute, value, count) = (
        num("step")?,
        num("compute")?,
        num("value")?,
        num("n_examples")?,
    );
    // The last step of each run.
    let mut last: HashMap<&str, f64> = HashMap::new();
    for (i, id) in eid.iter().enumerate() {
        let s = step[i].unwrap_or(0.0);
        let e = last.entry(id.as_str()).or_insert(s);
        *e = e.max(s);
    }
    // task -> metric -> points
    type Points = BTreeMap<String, BTreeMap<String, Vec<MetricPoint>>>;
    let mut by_task: Points = BTreeMap::new();
    for i in 0..eid.len() {
        let id = eid[i].as_str();
        let Some(params) = done.get(id) else { continue };
        if step[i] != last.get(id).copied() {
            continue;
        }
        let xv = match x {
            EmergenceX::Compute => compute[i],
            EmergenceX::Params => *params,
        };
        let (Some(xv), Some(v)) = (xv, value[i]) else {
            continue;
        };
        by_task
            .entry(task[i].clone())
            .or_default()
            .entry(metric[i].clone())
            .or_default()
            .push(MetricPoint {
                x: xv.log10(),
                value: v,
                n: count[i].unwrap_or(0.0) as usize,
            });
    }
    if by_task.is_empty() {
        return Err(LabError::input(
            &evals_path,
            None,
            "no task metrics of done runs",
        ));
    }
    let val_loss = validation_losses(dir)?;
    // task -> exact match at every evaluation of a done run, with the run's loss there.
    // The task's own loss at each evaluation: (answer log-probability, answer length).
    type Evaluation<'a> = (&'a str, &'a str, u64);
    let mut answer: HashMap<Evaluation, (Option<f64>, Option<f64>)> = HashMap::new();
    for i in 0..eid.len() {
        let (Some(s), Some(v)) = (step[i], value[i]) else {
            continue;
        };
        let e = answer
            .entry((task[i].as_str(), eid[i].as_str(), s as u64))
            .or_default();
        match metric[i].as_str() {
            "answer_logprob" => e.0 = Some(v),
            "answer_length" => e.1 = Some(v),
            _ => {}
        }
    }
    let mut on_loss: BTreeMap<String, Vec<LossPoint>> = BTreeMap::new();
    let mut on_task_loss: BTreeMap<String, Vec<LossPoint>> = BTreeMap::new();
    for i in 0..eid.len() {
        let id = eid[i].as_str();
        let (Some(Some(params)), Some(s), Some(v)) = (done.get(id), step[i], value[i]) else {
            continue;
        };
        if metric[i] != "exact_match" {
            continue;
        }
        let point = |loss| LossPoint {
            loss,
            value: v,
            n: count[i].unwrap_or(0.0) as usize,
            size: *params,
        };
        if let Some(&loss) = val_loss.get(&(id.to_string(), s as u64)) {
            on_loss
                .entry(task[i].clone())
                .or_default()
                .push(point(loss));
        }
        if let Some((Some(logprob), Some(length))) = answer.get(&(task[i].as_str(), id, s as u64)) {
            if *length > 0.0 {
                on_task_loss
                    .entry(task[i].clone())
                    .or_default()
                    .push(point(-logprob / length));
            }
        }
    }
    let mut tasks = Vec::new();
    for (name, mut metrics) in by_task {
        for pts in metrics.values_mut() {
            *pts = pool_seeds(std::mem::take(pts));
        }
        let take = |m: &str| metrics.get(m).cloned().unwrap_or_default();
        let mean = |m: &str| {
            let p = take(m);
            p.iter().map(|p| p.value).sum::<f64>() / p.len().max(1) as f64
        };
        let (exact, token) = (take("exact_match"), take("token_accuracy"));
        let length = mean("answer_length").max(1.0);
        let chance = mean("chance");
        let answer_prob: Vec<MetricPoint> = take("answer_logprob")
            .iter()
            .map(|p| MetricPoint {
                value: (p.value / length).exp(),
                ..*p
            })
            .collect();
        let jump = detect(&exact, chance);
        let floor = answer_prob
            .iter()
            .map(|p| p.value)
            .fold(f64::INFINITY, f64::min);
        let continuous = (!answer_prob.is_empty()).then(|| detect(&answer_prob, floor));
        let mirage = (jump.verdict != Verdict::Smooth && !token.is_empty())
            .then(|| mirage(&jump, &exact, &token, &answer_prob, length));
        let task_loss_axis = on_task_loss.get(&name).map(|pts| loss_axis(pts, chance));
        let loss_axis = on_loss.get(&name).map(|pts| loss_axis(pts, chance));
        let sampled: Vec<RatePoint> = take("pass_until")
            .iter()
            .map(|p| RatePoint {
                x: p.x,
                successes: (p.value * p.n as f64).round() as usize,
                samples: p.n,
            })
            .collect();
        let resolution = (!sampled.is_empty()).then(|| {
            let mut r = resolution(&sampled);
            if let Some(c) = &mut r.crossing {
                c.observed_greedy = observed_half(&exact);
            }
            r
        });
        tasks.push(TaskEmergence {
            task: name,
            exact_match: exact,
            token_accuracy: token,
            answer_prob,
            answer_length: length,
            chance,
            jump,
            continuous,
            mirage,
            loss_axis,
            task_loss_axis,
            resolution,
            subtasks: None,
            crossing: None,
        });
    }
    let checks: Vec<Option<(SubtaskCheck, CrossingPrediction)>> = tasks
        .iter()
        .map(|t| {
            let steps = steps_of(&tasks, &t.task);
            (!steps.is_empty() && rises_in_data(&t.exact_match, t.chance)).then(|| {
                (
                    subtask_check(&t.jump, &t.exact_match, &steps),
                    predict_crossing(&t.jump, &t.exact_match, &steps),
                )
            })
        })
        .collect();
    for (t, check) in tasks.iter_mut().zip(checks) {
        (t.subtasks, t.crossing) = check.unzip();
    }
    Ok(EmergenceFile { x, tasks })
}

/// The exact match of each step of composite task `name` (tasks `<name>.step1`, `.step2`, ...;
/// empty for a task without steps).
pub fn steps_of(tasks: &[TaskEmergence], name: &str) -> Vec<Vec<MetricPoint>> {
    (1..)
        .map_while(|i| {
            let step = format!("{name}.step{i}");
            tasks
                .iter()
                .find(|s| s.task == step)
                .map(|s| s.exact_match.clone())
        })
        .collect()
}

/// Every run's validation loss at each evaluated step, from curves.parquet (empty without one).
fn validation_losses(dir: &Path) -> LabResult<HashMap<(String, u64), f64>> {
    let path = dir.join("curves.parquet");
    if !path.exists() {
        return Ok(HashMap::new());
    }
    let df = read_frame(&path)?;
    let ids = strings(&df, "id", &path)?;
    let steps = crate::table::numbers(&df, "step", &path)?;
    let losses = crate::table::numbers(&df, "val_loss", &path)?;
    Ok(ids
        .into_iter()
        .zip(steps)
        .zip(losses)
        .filter_map(|((id, s), l)| Some(((id, s? as u64), l?)))
        .collect())
}

/// A verdict as words: its serde name with spaces ("insufficient resolution").
fn words(v: impl Serialize) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
        .replace('_', " ")
}

/// The table of one loss axis: exact match at every evaluation against `what`, one curve of that
/// loss for every size against one per size, by BIC (nothing when no task has the axis).
fn loss_table(
    s: &mut String,
    tasks: &[TaskEmergence],
    what: &str,
    axis: impl Fn(&TaskEmergence) -> Option<&LossAxis>,
) {
    let rows: Vec<_> = tasks
        .iter()
        .filter_map(|t| axis(t).map(|a| (t, a)))
        .collect();
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "\nExact match at every evaluation against {what}: one curve of the loss for every size (a size-independent loss threshold) against one curve per size, by BIC.\n"
    );
    let _ = writeln!(
        s,
        "| task | evaluations | verdict | threshold (nats) | per-size midpoints | why |\n|---|---|---|---|---|---|"
    );
    for (t, a) in rows {
        let mids: Vec<String> = a
            .thresholds
            .iter()
            .map(|(size, m, n)| format!("N {size:.0}: {m:.3} ({n})"))
            .collect();
        let points: usize = a.thresholds.iter().map(|t| t.2).sum();
        let _ = writeln!(
            s,
            "| {} | {points} | {} | {:.3} | {} | {} |",
            t.task,
            words(a.verdict),
            a.threshold,
            mids.join(", "),
            a.reason
        );
    }
}

/// A markdown summary.
pub fn markdown(f: &EmergenceFile) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Emergence\n");
    let _ = writeln!(
        s,
        "Exact match at every run's last evaluation against log10 {}; a jump needs a sigmoid from chance to beat a line by BIC, be narrow, start at chance and be resolvable.\n",
        match f.x {
            EmergenceX::Compute => "compute",
            EmergenceX::Params => "N",
        }
    );
    let _ = writeln!(s, "| task | runs | verdict | transition x0 | width | mirage check | why |\n|---|---|---|---|---|---|---|");
    for t in &f.tasks {
        let verdict = words(t.jump.verdict);
        let (x0, w) = match t.jump.verdict {
            Verdict::Smooth => ("-".to_string(), "-".to_string()),
            _ => (
                format!("{:.2}", t.jump.sigmoid.x0),
                format!("{:.2}", t.jump.sigmoid.width),
            ),
        };
        let mirage = t.mirage.as_ref().map_or("-".to_string(), |m| {
            format!(
                "{} (p^L inside the interval at {:.0}% of runs; the continuous metric {})",
                m.label,
                100.0 * m.reproduced_share,
                if m.continuous_smooth {
                    "rises smoothly"
                } else {
                    "jumps too"
                }
            )
        });
        let _ = writeln!(
            s,
            "| {} | {} | {verdict} | {x0} | {w} | {mirage} | {} |",
            t.task,
            t.exact_match.len(),
            t.jump.reason
        );
    }
    loss_table(
        &mut s,
        &f.tasks,
        "the validation loss (Du et al. 2024)",
        |t| t.loss_axis.as_ref(),
    );
    loss_table(
        &mut s,
        &f.tasks,
        "the task's own loss (the answer's negative log-probability per token)",
        |t| t.task_loss_axis.as_ref(),
    );
    for t in &f.tasks {
        if let Some(c) = &t.subtasks {
            let _ = writeln!(
                s,
                "\nSub-tasks of {}: {} (its exact match: {} by the detector; the product of its steps' accuracies inside the exact-match interval at {:.0}% of the models; the steps {}).",
                t.task,
                c.label,
                words(t.jump.verdict),
                100.0 * c.reproduced_share,
                if c.steps_smooth {
                    "rise smoothly"
                } else {
                    "jump too"
                }
            );
        }
        if let Some(p) = &t.crossing {
            let x = |v: Option<f64>| v.map_or("none".to_string(), |v| format!("{v:.2}"));
            let _ = writeln!(
                s,
                "Crossing 50%, predicted from its steps on the {} models below the jump: x = {}; observed {} (error {} decades).",
                p.fitted_on,
                x(p.predicted),
                x(p.observed),
                x(p.error)
            );
        }
    }
    let sampled: Vec<_> = f
        .tasks
        .iter()
        .filter_map(|t| t.resolution.as_ref().map(|r| (t, r)))
        .collect();
    if !sampled.is_empty() {
        let _ = writeln!(
            s,
            "\nPassUntil (Hu et al. 2024): success rates sampled at temperature 1 where greedy exact match is near zero, and whether they rise with log10 x (slope of ln rate, 95% interval); where the task scaling law -ln(rate) = c 10^(-alpha x), fitted to the models sampled at rates up to {}, reaches 50% (Fieller's 95% interval), against where the sampled rate and greedy exact match do.\n",
            fit::resolution::FIT_BELOW
        );
        let _ = writeln!(
            s,
            "| task | models sampled | with a success | trend | why | 50% predicted | 50% observed (sampled; greedy) |\n|---|---|---|---|---|---|---|"
        );
        let x = |v: Option<f64>, none: &str| v.map_or(none.to_string(), |v| format!("{v:.2}"));
        for (t, r) in sampled {
            let trend = words(r.trend);
            let (predicted, observed) = match &r.crossing {
                Some(c) => (
                    format!(
                        "{} [{}, {}] (alpha {:.2})",
                        x(c.predicted, "not resolved"),
                        x(c.lower, "-inf"),
                        x(c.upper, "inf"),
                        c.alpha
                    ),
                    format!(
                        "{}; {}",
                        x(c.observed, "not reached"),
                        x(c.observed_greedy, "not reached")
                    ),
                ),
                None => ("too few rates in (0, 1)".into(), "-".into()),
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {trend} | {} | {predicted} | {observed} |",
                t.task,
                r.fitted + r.without_success,
                r.fitted,
                r.reason
            );
        }
    }
    s
}

/// Writes emergence.json and emergence.md into `out`.
pub fn write(out: &Path, f: &EmergenceFile) -> LabResult<()> {
    crate::results::write_report(out, "emergence", f, &markdown(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_of_one_size_are_pooled_by_examples() {
        let p = |x: f64, value: f64, n: usize| MetricPoint { x, value, n };
        let pooled = pool_seeds(vec![p(5.0, 0.5, 100), p(4.0, 0.1, 10), p(5.0, 1.0, 300)]);
        assert_eq!(pooled.len(), 2);
        assert_eq!(pooled[0], p(4.0, 0.1, 10));
        assert_eq!(pooled[1].n, 400);
        assert!((pooled[1].value - 0.875).abs() < 1e-12);
    }
}

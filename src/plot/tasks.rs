//! Figure 7: task metrics against compute (or N): exact match with its 95% interval beside per-token
//! accuracy and a continuous metric on the same outputs, per-token accuracy raised to the answer
//! length, chance, and the detected jump (transition point and width) with its mirage verdict; on a
//! composite task's panel, the product of its steps' exact match (the sub-task explanation).

use super::canvas::{self, chart, layout, DrawResult, Figure, Glyph, Legend, Look, Shape};
use super::source::Source;
use super::style::{self, Axis, Units, INK};
use crate::emergence::{analyse, steps_of, EmergenceFile, EmergenceX, TaskEmergence};
use fit::emergence::Verdict;
use fit::subtasks::step_product;
use plotters::coord::Shift;
use plotters::prelude::*;

/// Prepared data of the task-metrics figure.
pub struct Tasks {
    title: String,
    x_label: String,
    units: Units,
    tasks: Vec<TaskEmergence>,
}

/// Builds the figure from `fit/emergence.json` when present, else analyses evals.parquet against
/// compute; says why when there are no task evaluations.
pub fn build(src: &Source) -> Result<Tasks, String> {
    let saved = src.dir.join("fit").join("emergence.json");
    let file: EmergenceFile = match std::fs::read_to_string(&saved) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| format!("{}: {e}", saved.display()))?,
        Err(_) => {
            if !src.dir.join("evals.parquet").exists() {
                return Err(
                    "no task evaluations (evals.parquet): runs need a `tasks` section".into(),
                );
            }
            analyse(&src.dir, EmergenceX::Compute).map_err(|_| {
                "no task evaluations of done runs (runs need a `tasks` section)".to_string()
            })?
        }
    };
    if file.tasks.is_empty() {
        return Err("no task evaluations of done runs".into());
    }
    let (x_label, units) = match file.x {
        EmergenceX::Compute => (src.c_label(), Units::Sci),
        EmergenceX::Params => (src.n_label(), Units::Si),
    };
    Ok(Tasks {
        title: format!("{}: task metrics and emergence", src.name),
        x_label,
        units,
        tasks: file.tasks,
    })
}

const EXACT: Look = Look::solid(style::CATEGORICAL[0], 4);
const TOKEN: Look = Look::solid(style::CATEGORICAL[1], 4);
const CONTINUOUS: Look = Look::solid(style::CATEGORICAL[2], 4);
const PRODUCT: Look = Look::solid(style::CATEGORICAL[3], 4);

fn verdict_text(t: &TaskEmergence) -> String {
    let v = match t.jump.verdict {
        Verdict::Jump => "jump",
        Verdict::Smooth => "smooth",
        Verdict::InsufficientResolution => "insufficient resolution",
    };
    match &t.mirage {
        Some(m) if t.jump.verdict == Verdict::Jump => format!("{}: {v}, {}", t.task, m.label),
        _ => format!("{}: {v}", t.task),
    }
}

impl Figure for Tasks {
    fn size(&self) -> (u32, u32) {
        canvas::grid_size(self.tasks.len())
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let (plot, side) = layout(root, &self.title)?;
        let panels = canvas::grid(&plot, self.tasks.len());
        for (area, t) in panels.iter().zip(&self.tasks) {
            let xs = t.exact_match.iter().map(|p| 10f64.powf(p.x));
            let x = Axis::covering(&self.x_label, xs, true, self.units);
            let y = Axis::proportion("metric (proportion)");
            let mut ch = chart(area, &verdict_text(t), &x, &y)?;
            if t.jump.verdict != Verdict::Smooth {
                let s = t.jump.sigmoid;
                let (a, b) = (
                    10f64.powf(s.x0 - 2.0 * s.width),
                    10f64.powf(s.x0 + 2.0 * s.width),
                );
                canvas::band(&mut ch, &x, &y, &[a, b], &[y.lo, y.lo], &[y.hi, y.hi], INK)?;
                let at = 10f64.powf(s.x0);
                canvas::line(
                    &mut ch,
                    &x,
                    &y,
                    &[(at, y.lo), (at, y.hi)],
                    Look::dashed(INK, 1),
                )?;
                let curve: Vec<(f64, f64)> = (0..=60)
                    .map(|i| {
                        let tx =
                            x.range().start + (x.range().end - x.range().start) * i as f64 / 60.0;
                        (x.from(tx), s.at(tx))
                    })
                    .collect();
                canvas::line(&mut ch, &x, &y, &curve, Look::solid(EXACT.color, 1))?;
            }
            canvas::line(
                &mut ch,
                &x,
                &y,
                &[(x.lo, t.chance), (x.hi, t.chance)],
                Look::dashed(style::CATEGORICAL[6], 1),
            )?;
            for p in &t.exact_match {
                let (lo, hi) = fit::emergence::wilson(p.value, p.n, 1.96);
                let at = 10f64.powf(p.x);
                canvas::line(
                    &mut ch,
                    &x,
                    &y,
                    &[(at, lo), (at, hi)],
                    Look::solid(EXACT.color, 1),
                )?;
            }
            let pts = |v: &[fit::emergence::MetricPoint]| -> Vec<(f64, f64)> {
                v.iter().map(|p| (10f64.powf(p.x), p.value)).collect()
            };
            canvas::markers(&mut ch, &x, &y, &pts(&t.exact_match), Shape::Circle, EXACT)?;
            canvas::markers(
                &mut ch,
                &x,
                &y,
                &pts(&t.token_accuracy),
                Shape::Square,
                TOKEN,
            )?;
            canvas::markers(
                &mut ch,
                &x,
                &y,
                &pts(&t.answer_prob),
                Shape::Triangle,
                CONTINUOUS,
            )?;
            let powered: Vec<(f64, f64)> = t
                .token_accuracy
                .iter()
                .map(|p| {
                    (
                        10f64.powf(p.x),
                        p.value.clamp(0.0, 1.0).powf(t.answer_length),
                    )
                })
                .collect();
            canvas::line(&mut ch, &x, &y, &powered, Look::dashed(TOKEN.color, 2))?;
            let steps = steps_of(&self.tasks, &t.task);
            if !steps.is_empty() {
                let product: Vec<(f64, f64)> = t
                    .exact_match
                    .iter()
                    .filter_map(|p| Some((10f64.powf(p.x), step_product(&steps, p.x)?)))
                    .collect();
                canvas::line(&mut ch, &x, &y, &product, PRODUCT)?;
                canvas::markers(&mut ch, &x, &y, &product, Shape::Diamond, PRODUCT)?;
            }
        }
        let mut legend = Legend::default();
        legend.add("metrics (same outputs)", Glyph::Heading);
        legend.add(
            "exact match (greedy) with 95% interval",
            Glyph::Marker(Shape::Circle, EXACT),
        );
        legend.add(
            "per-token accuracy (teacher forced)",
            Glyph::Marker(Shape::Square, TOKEN),
        );
        legend.add(
            "answer probability per token (continuous)",
            Glyph::Marker(Shape::Triangle, CONTINUOUS),
        );
        legend.add(
            "per-token accuracy ^ answer length",
            Glyph::Line(Look::dashed(TOKEN.color, 2)),
        );
        if self
            .tasks
            .iter()
            .any(|t| !steps_of(&self.tasks, &t.task).is_empty())
        {
            legend.add(
                "product of the steps' exact match (composite tasks; steps: <task>.step<i>)",
                Glyph::Marker(Shape::Diamond, PRODUCT),
            );
        }
        legend.add(
            "chance of an exact match",
            Glyph::Line(Look::dashed(style::CATEGORICAL[6], 1)),
        );
        legend.add("jump: sigmoid, x0 and x0 +- 2 width", Glyph::Band(INK));
        legend.note(
            "A jump needs a sigmoid from chance to beat a line by BIC, be narrow, start at chance \
             and be resolvable with the examples. Metric-induced: per-token accuracy ^ length \
             reproduces it and the continuous metric rises smoothly.",
        );
        legend.draw(&side)
    }
}

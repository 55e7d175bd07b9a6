//! Figure 8: the loss axis of emergence (Du et al. 2024): each task's exact match at every
//! evaluation of every run against the task's own loss (the answer's negative log-probability per
//! token; the validation loss where the task's loss was not recorded), coloured by model size, with
//! the one curve fitted to every size and the test's verdict: do the sizes collapse onto it?

use super::canvas::{self, chart, layout, DrawResult, Figure, Glyph, Legend, Look, Shape};
use super::source::Source;
use super::style::{self, si_label, Axis, Units, INK};
use crate::emergence::{EmergenceFile, TaskEmergence};
use fit::loss_axis::{Collapse, LossAxis};
use plotters::coord::Shift;
use plotters::prelude::*;

/// One panel: a task's loss-axis test and what its x axis is.
struct Panel {
    task: String,
    chance: f64,
    axis: LossAxis,
    x_label: &'static str,
}

/// Prepared data of the loss-axis figure.
pub struct TasksLoss {
    title: String,
    panels: Vec<Panel>,
    sizes: Vec<f64>,
}

/// The task's own loss axis where it was recorded, else the validation-loss axis; None without
/// points on either.
fn panel(t: &TaskEmergence) -> Option<Panel> {
    let own = t
        .task_loss_axis
        .as_ref()
        .map(|a| (a, "task loss (nats per answer token)"));
    let val = t
        .loss_axis
        .as_ref()
        .map(|a| (a, "validation loss (nats per token)"));
    let (axis, x_label) = own
        .into_iter()
        .chain(val)
        .find(|(a, _)| !a.points.is_empty())?;
    Some(Panel {
        task: t.task.clone(),
        chance: t.chance,
        axis: axis.clone(),
        x_label,
    })
}

/// Builds the figure from `fit/emergence.json` (written by `lab fit --emergence` and `lab sweep`):
/// None without that file (a sweep without tasks: the figure does not apply), an error saying why
/// when it holds nothing to draw.
pub fn build(src: &Source) -> Result<Option<TasksLoss>, String> {
    let saved = src.dir.join("fit").join("emergence.json");
    let Ok(text) = std::fs::read_to_string(&saved) else {
        return Ok(None);
    };
    let file: EmergenceFile =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", saved.display()))?;
    let panels: Vec<Panel> = file.tasks.iter().filter_map(panel).collect();
    if panels.is_empty() {
        return Err(
            "no loss-axis points in fit/emergence.json (runs need curves and tasks)".into(),
        );
    }
    let mut sizes: Vec<f64> = panels
        .iter()
        .flat_map(|p| p.axis.points.iter().map(|q| q.size))
        .collect();
    sizes.sort_by(f64::total_cmp);
    sizes.dedup();
    Ok(Some(TasksLoss {
        title: format!("{}: task metrics against loss", src.name),
        panels,
        sizes,
    }))
}

fn verdict(a: &LossAxis) -> String {
    match a.verdict {
        Collapse::Collapses => format!("collapses, threshold {:.3}", a.threshold),
        Collapse::DoesNotCollapse => "does not collapse".into(),
        Collapse::InsufficientResolution => "insufficient resolution".into(),
    }
}

impl TasksLoss {
    fn look(&self, size: f64) -> Look {
        let i = self.sizes.iter().position(|s| *s == size).unwrap_or(0);
        Look::solid(style::sequential(i, self.sizes.len()), 4)
    }
}

impl Figure for TasksLoss {
    fn size(&self) -> (u32, u32) {
        canvas::grid_size(self.panels.len())
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let (plot, side) = layout(root, &self.title)?;
        let areas = canvas::grid(&plot, self.panels.len());
        for (area, p) in areas.iter().zip(&self.panels) {
            let x = Axis::covering(
                p.x_label,
                p.axis.points.iter().map(|q| q.loss),
                false,
                Units::Plain,
            );
            let y = Axis::proportion("exact match");
            let mut ch = chart(area, &format!("{}: {}", p.task, verdict(&p.axis)), &x, &y)?;
            if p.axis.width.is_finite() && p.axis.threshold.is_finite() {
                let curve: Vec<(f64, f64)> = (0..=80)
                    .map(|i| {
                        let l = x.lo + (x.hi - x.lo) * i as f64 / 80.0;
                        (l, p.axis.shared_at(l, p.chance))
                    })
                    .collect();
                canvas::line(&mut ch, &x, &y, &curve, Look::solid(INK, 2))?;
            }
            for &s in &self.sizes {
                let pts: Vec<(f64, f64)> = p
                    .axis
                    .points
                    .iter()
                    .filter(|q| q.size == s)
                    .map(|q| (q.loss, q.value))
                    .collect();
                canvas::markers(&mut ch, &x, &y, &pts, Shape::Circle, self.look(s))?;
            }
        }
        let mut legend = Legend::default();
        legend.add("model size (parameters)", Glyph::Heading);
        for &s in &self.sizes {
            legend.add(si_label(s), Glyph::Marker(Shape::Circle, self.look(s)));
        }
        legend.add("one curve for every size", Glyph::Line(Look::solid(INK, 2)));
        legend.note(
            "Each point is one evaluation of one run. The sizes collapse when one sigmoid of the \
             loss fits them better (BIC) than one per size: the ability appears below a loss \
             threshold, whatever the size.",
        );
        legend.draw(&side)
    }
}

//! The fit-quality figure of a law fitted on a table (data-constrained, routed, joint MoE): the
//! law's predicted against the observed loss of every run, and the residuals against the variable
//! the law adds to Chinchilla's (epochs, experts; compute for the joint MoE law), with runs coloured
//! by model size.
//! Written beside the law's report by `lab fit`.

use super::canvas::{self, chart, layout, DrawResult, Figure, Glyph, Legend, Look, Shape};
use super::style::{self, si_label, size, Axis, Units};
use plotters::coord::Shift;
use plotters::prelude::*;

/// One run: its model size, the law's variable, and predicted and observed loss.
#[derive(Debug, Clone, Copy)]
pub struct LawPoint {
    /// Model size (colours the runs).
    pub n: f64,
    /// The variable of the residual panel.
    pub x: f64,
    /// The law's loss.
    pub predicted: f64,
    /// The run's loss.
    pub observed: f64,
}

/// Prepared data of the figure.
pub struct LawFitFigure {
    /// Title.
    pub title: String,
    /// Label of the residual panel's x axis (logarithmic).
    pub x_label: String,
    /// The runs.
    pub points: Vec<LawPoint>,
    /// Notes under the legend.
    pub notes: Vec<String>,
}

impl Figure for LawFitFigure {
    fn size(&self) -> (u32, u32) {
        size::ROW
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let (plot, side) = layout(root, &self.title)?;
        let panels = plot.split_evenly((1, 2));
        let mut sizes: Vec<f64> = self.points.iter().map(|p| p.n).collect();
        sizes.sort_by(f64::total_cmp);
        sizes.dedup();
        let look = |n: f64| {
            let i = sizes.iter().position(|&s| s == n).unwrap_or(0);
            Look::solid(style::sequential(i, sizes.len()), 4)
        };
        let losses = self.points.iter().flat_map(|p| [p.predicted, p.observed]);
        let l = Axis::covering(
            "observed loss (nats/token)",
            losses.clone(),
            true,
            Units::Plain,
        );
        let lp = Axis::covering("predicted loss (nats/token)", losses, true, Units::Plain);
        let mut ch = chart(&panels[0], "predicted against observed", &l, &lp)?;
        canvas::line(
            &mut ch,
            &l,
            &lp,
            &[(l.lo, l.lo), (l.hi, l.hi)],
            Look::dashed(style::INK, 1),
        )?;
        // The runs of each size as (x, y) of a panel.
        let of_size = |n: f64, xy: &dyn Fn(&LawPoint) -> (f64, f64)| -> Vec<(f64, f64)> {
            self.points.iter().filter(|p| p.n == n).map(xy).collect()
        };
        for &n in &sizes {
            let pts = of_size(n, &|p| (p.observed, p.predicted));
            canvas::markers(&mut ch, &l, &lp, &pts, Shape::Circle, look(n))?;
        }
        let residual = |p: &LawPoint| (p.predicted / p.observed).ln();
        let x = Axis::covering(
            &self.x_label,
            self.points.iter().map(|p| p.x),
            true,
            Units::Plain,
        );
        let r = Axis::covering(
            "residual ln(predicted / observed)",
            self.points.iter().map(residual).chain([0.0]),
            false,
            Units::Plain,
        );
        let mut ch = chart(&panels[1], "residuals", &x, &r)?;
        canvas::line(
            &mut ch,
            &x,
            &r,
            &[(x.lo, 0.0), (x.hi, 0.0)],
            Look::dashed(style::INK, 1),
        )?;
        for &n in &sizes {
            let pts = of_size(n, &|p| (p.x, residual(p)));
            canvas::markers(&mut ch, &x, &r, &pts, Shape::Circle, look(n))?;
        }
        let mut legend = Legend::default();
        legend.add("model size N", Glyph::Heading);
        // At most a dozen sizes listed; the colour scale runs from the smallest to the largest.
        let step = sizes.len().div_ceil(12).max(1);
        for (i, &n) in sizes.iter().enumerate() {
            if i % step == 0 || i + 1 == sizes.len() {
                legend.add(si_label(n), Glyph::Marker(Shape::Circle, look(n)));
            }
        }
        legend.add(
            "y = x / zero residual",
            Glyph::Line(Look::dashed(style::INK, 1)),
        );
        for n in &self.notes {
            legend.note(n.clone());
        }
        legend.draw(&side)
    }
}

/// Writes a law's report as `<out>/<stem>.{json,md}` and its figure as `<out>/<stem>.{png,svg}`.
pub fn write_with_figure<T: serde::Serialize>(
    out: &std::path::Path,
    stem: &str,
    (value, markdown): (&T, &str),
    figure: &LawFitFigure,
) -> crate::error::LabResult<()> {
    use super::canvas::Format;
    crate::results::write_report(out, stem, value, markdown)?;
    canvas::render(figure, &out.join(stem), &[Format::Png, Format::Svg]).map(|_| ())
}

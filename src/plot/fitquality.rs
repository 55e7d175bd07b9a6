//! Figure 4: approach-3 fit quality: predicted against observed loss, and the log residuals against
//! N and D, with the points the extrapolation check held out marked.

use super::canvas::{self, chart, layout, DrawResult, Figure, Glyph, Legend, Look, Points, Shape};
use super::source::Source;
use super::style::{self, size, Axis, Units, INK};
use fit::report::Approach;
use plotters::coord::Shift;
use plotters::prelude::*;

/// Prepared data of the fit-quality figure.
pub struct FitQuality {
    title: String,
    n_label: String,
    /// n, d, c, observed, predicted.
    points: Vec<[f64; 5]>,
    /// Points above this compute were held out by the extrapolation check.
    threshold_c: Option<f64>,
    notes: Vec<String>,
}

/// Builds the figure, or says why it cannot be drawn.
pub fn build(src: &Source) -> Result<FitQuality, String> {
    let r = src.report(Approach::Approach3)?;
    let res = r
        .residuals
        .as_ref()
        .ok_or("the approach-3 report has no residuals")?;
    if res.points.is_empty() {
        return Err("the approach-3 fit has no points".into());
    }
    let mut notes = vec![format!(
        "Residuals of ln L: RMSE {:.4}, max |r| {:.4} over {} points.",
        res.rmse_log,
        res.max_abs_log,
        res.points.len()
    )];
    if let Some(e) = r.details.get("fixed_e").and_then(|v| v.as_f64()) {
        notes.push(format!("E held at the entropy floor {e:.4}."));
    }
    let threshold_c = r.extrapolation.as_ref().map(|x| {
        if let Some(m) = x.loss_mape {
            notes.push(format!(
                "Triangles: runs above C = {}, held out by the extrapolation check; a fit \
                 without them predicts their loss with {:.2}% mean error.",
                style::sci_label(x.threshold_c),
                100.0 * m
            ));
        }
        x.threshold_c
    });
    Ok(FitQuality {
        title: format!(
            "{}: approach-3 fit L(N, D) = E + A/N^alpha + B/D^beta",
            src.name
        ),
        n_label: src.n_label(),
        points: res.points.clone(),
        threshold_c,
        notes,
    })
}

impl FitQuality {
    fn split(&self, f: impl Fn(&[f64; 5]) -> (f64, f64)) -> (Points, Points) {
        let held = |p: &[f64; 5]| self.threshold_c.is_some_and(|t| p[2] > t);
        (
            self.points.iter().filter(|p| !held(p)).map(&f).collect(),
            self.points.iter().filter(|p| held(p)).map(&f).collect(),
        )
    }
}

const FITTED: Look = Look::solid(style::CATEGORICAL[0], 4);
const HELD: Look = Look::solid(style::CATEGORICAL[1], 5);

impl Figure for FitQuality {
    fn size(&self) -> (u32, u32) {
        size::ROW
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let (plot, side) = layout(root, &self.title)?;
        let panels = plot.split_evenly((1, 3));
        // Predicted against observed, same scale on both axes.
        let all = self.points.iter().flat_map(|p| [p[3], p[4]]);
        let lx = Axis::covering("observed loss", all.clone(), false, Units::Plain);
        let ly = Axis {
            label: "predicted loss".into(),
            ..lx.clone()
        };
        let mut ch = chart(&panels[0], "predicted vs observed", &lx, &ly)?;
        canvas::line(
            &mut ch,
            &lx,
            &ly,
            &[(lx.lo, lx.lo), (lx.hi, lx.hi)],
            Look::dashed(INK, 1),
        )?;
        let (fitted, held) = self.split(|p| (p[3], p[4]));
        canvas::markers(&mut ch, &lx, &ly, &fitted, Shape::Circle, FITTED)?;
        canvas::markers(&mut ch, &lx, &ly, &held, Shape::Triangle, HELD)?;
        // Residuals against N and D.
        let r = |p: &[f64; 5]| (p[4] / p[3]).ln();
        let ry = Axis::covering(
            "residual ln(predicted / observed)",
            self.points.iter().map(r).chain([0.0]),
            false,
            Units::Plain,
        );
        for (area, (col, label, units, sub)) in panels[1..].iter().zip([
            (0usize, self.n_label.as_str(), Units::Si, "residual vs N"),
            (1usize, "tokens D", Units::Si, "residual vs D"),
        ]) {
            let x = Axis::covering(label, self.points.iter().map(|p| p[col]), true, units);
            let mut ch = chart(area, sub, &x, &ry)?;
            canvas::line(
                &mut ch,
                &x,
                &ry,
                &[(x.lo, 0.0), (x.hi, 0.0)],
                Look::dashed(INK, 1),
            )?;
            let (fitted, held) = self.split(|p| (p[col], r(p)));
            canvas::markers(&mut ch, &x, &ry, &fitted, Shape::Circle, FITTED)?;
            canvas::markers(&mut ch, &x, &ry, &held, Shape::Triangle, HELD)?;
        }
        let mut legend = Legend::default();
        legend.add("runs", Glyph::Heading);
        legend.add("in the fit", Glyph::Marker(Shape::Circle, FITTED));
        if self.threshold_c.is_some() {
            legend.add(
                "held out by the extrapolation check",
                Glyph::Marker(Shape::Triangle, HELD),
            );
        }
        legend.add("perfect fit", Glyph::Line(Look::dashed(INK, 1)));
        for n in &self.notes {
            legend.note(n.clone());
        }
        legend.draw(&side)
    }
}

//! Figure 5: Kaplan views: L(N) through the best loss of each size, L(D) through the best loss at
//! each token count, and L(C_min) through the compute frontier, each with its power-law fit.

use super::canvas::{self, chart, layout, DrawResult, Figure, Glyph, Legend, Look, Shape};
use super::source::Source;
use super::style::{self, size, Axis, Units};
use fit::data::pareto_frontier;
use fit::kaplan::best_per;
use fit::report::Approach;
use plotters::coord::Shift;
use plotters::prelude::*;

/// One view: observed points and the fitted (scale, exponent) of L(x) = (scale / x)^exponent.
struct View {
    subtitle: String,
    x_label: String,
    units: Units,
    points: Vec<(f64, f64)>,
    scale: f64,
    alpha: f64,
}

/// Prepared data of the Kaplan figure.
pub struct KaplanViews {
    title: String,
    views: Vec<View>,
    notes: Vec<String>,
}

/// Builds the figure, or says why it cannot be drawn.
pub fn build(src: &Source) -> Result<KaplanViews, String> {
    let r = src.report(Approach::Kaplan)?;
    let data = src.data()?;
    let p = |k: &str| {
        r.parameters
            .get(k)
            .map(|e| e.value)
            .ok_or(format!("the Kaplan report lacks {k}"))
    };
    let (ns, ln) = best_per(&data.finals, |o| o.n);
    let (ds, ld) = best_per(&data.finals, |o| o.d);
    let front = pareto_frontier(&data.finals);
    let view = |sub: &str, x: String, units, xs: Vec<f64>, ls: Vec<f64>, s: &str, a: &str| {
        Ok::<View, String>(View {
            subtitle: format!("{sub}: alpha = {:.3}", p(a)?),
            x_label: x,
            units,
            points: xs.into_iter().zip(ls).collect(),
            scale: p(s)?,
            alpha: p(a)?,
        })
    };
    let views = vec![
        view(
            "L(N), best loss per size",
            src.n_label(),
            Units::Si,
            ns,
            ln,
            "N_c",
            "alpha_N",
        )?,
        view(
            "L(D), best loss per token count",
            "tokens D".into(),
            Units::Si,
            ds,
            ld,
            "D_c",
            "alpha_D",
        )?,
        view(
            "L(C_min), compute frontier",
            src.c_label(),
            Units::Sci,
            front.iter().map(|o| o.c).collect(),
            front.iter().map(|o| o.loss).collect(),
            "C_c",
            "alpha_C",
        )?,
    ];
    let mut notes = vec![format!(
        "Implied N_opt ~ C^{:.3} (alpha_C / alpha_N).",
        r.a.value
    )];
    if let Some(jn) = r.parameters.get("joint_alpha_N") {
        notes.push(format!(
            "Joint L(N, D): alpha_N = {:.3}, alpha_D = {:.3}.",
            jn.value,
            r.parameters
                .get("joint_alpha_D")
                .map_or(f64::NAN, |e| e.value)
        ));
    }
    Ok(KaplanViews {
        title: format!("{}: Kaplan power laws L(x) = (x_c / x)^alpha", src.name),
        views,
        notes,
    })
}

impl Figure for KaplanViews {
    fn size(&self) -> (u32, u32) {
        size::ROW
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let (plot, side) = layout(root, &self.title)?;
        let panels = plot.split_evenly((1, self.views.len()));
        let dots = Look::solid(style::CATEGORICAL[0], 4);
        let fitted = Look::solid(style::CATEGORICAL[1], 2);
        for (area, v) in panels.iter().zip(&self.views) {
            let x = Axis::covering(&v.x_label, v.points.iter().map(|p| p.0), true, v.units);
            let y = Axis::covering(
                "loss (nats/token)",
                v.points.iter().map(|p| p.1),
                true,
                Units::Plain,
            );
            let mut ch = chart(area, &v.subtitle, &x, &y)?;
            let line: Vec<(f64, f64)> = (0..=40)
                .map(|i| {
                    let t = x.range().start + (x.range().end - x.range().start) * i as f64 / 40.0;
                    let xv = x.from(t);
                    (xv, (v.scale / xv).powf(v.alpha))
                })
                .collect();
            canvas::line(&mut ch, &x, &y, &line, fitted)?;
            canvas::markers(&mut ch, &x, &y, &v.points, Shape::Circle, dots)?;
        }
        let mut legend = Legend::default();
        legend.add("Kaplan views", Glyph::Heading);
        legend.add("observed best loss", Glyph::Marker(Shape::Circle, dots));
        legend.add("power-law fit", Glyph::Line(fitted));
        for n in &self.notes {
            legend.note(n.clone());
        }
        legend.draw(&side)
    }
}

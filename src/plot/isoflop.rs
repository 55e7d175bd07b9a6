//! Figure 2: isoFLOP profiles, final loss against N per compute budget, with the approach-2
//! parabolas and their minima.

use super::canvas::{self, chart, layout, DrawResult, Figure, Glyph, Legend, Look, Shape};
use super::curves::plural;
use super::source::Source;
use super::style::{self, size, Axis, Units};
use fit::approach2::IsoflopProfile;
use fit::data::{budget_compute, group_budgets};
use fit::report::Approach;
use plotters::coord::Shift;
use plotters::prelude::*;

/// One budget: its runs and, when fitted, its profile.
struct Budget {
    c: f64,
    points: Vec<(f64, f64)>,
    profile: Option<IsoflopProfile>,
}

/// Prepared data of the isoFLOP figure.
pub struct Isoflop {
    title: String,
    n_label: String,
    budgets: Vec<Budget>,
    notes: Vec<String>,
}

/// Builds the figure, or says why it cannot be drawn.
pub fn build(src: &Source) -> Result<Isoflop, String> {
    let report = src.report(Approach::Approach2)?;
    let data = src.data()?;
    let fit = src.fit()?;
    let profiles: Vec<IsoflopProfile> = serde_json::from_value(report.details["profiles"].clone())
        .map_err(|e| format!("fit.json has no readable isoFLOP profiles: {e}"))?;
    let ratio = fit.options.approach2.budget_ratio;
    let groups = group_budgets(&data.finals, ratio);
    let mut budgets: Vec<Budget> = groups
        .iter()
        .map(|g| {
            let c = budget_compute(&data.finals, g);
            Budget {
                c,
                points: g
                    .iter()
                    .map(|&i| (data.finals[i].n, data.finals[i].loss))
                    .collect(),
                profile: profiles
                    .iter()
                    .find(|p| (p.c / c).ln().abs() < ratio.ln().max(1e-9))
                    .cloned(),
            }
        })
        .collect();
    // Single runs between budgets are not isoFLOP profiles.
    budgets.retain(|b| b.points.len() >= 2 || b.profile.is_some());
    let mut notes: Vec<String> = Vec::new();
    let unfitted = budgets.iter().filter(|b| b.profile.is_none()).count();
    if unfitted > 0 {
        notes.push(format!(
            "Hollow markers: {unfitted} budget(s) without a fitted profile (too few sizes, or a \
             minimum outside the sampled sizes); see fit.md."
        ));
    }
    notes.push(format!(
        "Exponent a = {} (N_opt ~ C^a) from {} profiles.",
        crate::fitreport::with_interval(&report.a),
        profiles.len()
    ));
    Ok(Isoflop {
        title: format!("{}: isoFLOP profiles (approach 2)", src.name),
        n_label: src.n_label(),
        budgets,
        notes,
    })
}

impl Figure for Isoflop {
    fn size(&self) -> (u32, u32) {
        size::SINGLE
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let (plot, side) = layout(root, &self.title)?;
        let pts = || self.budgets.iter().flat_map(|b| b.points.iter());
        let x = Axis::covering(&self.n_label, pts().map(|p| p.0), true, Units::Si);
        let y = Axis::covering(
            "final validation loss (nats/token)",
            pts().map(|p| p.1),
            false,
            Units::Plain,
        );
        let mut ch = chart(&plot, "", &x, &y)?;
        let mut legend = Legend::default();
        legend.add("compute budget", Glyph::Heading);
        let k = self.budgets.len();
        for (i, b) in self.budgets.iter().enumerate() {
            let color = style::sequential(i, k);
            let look = if b.profile.is_some() {
                Look::solid(color, 5)
            } else {
                Look::dashed(color, 5)
            };
            if let Some(p) = &b.profile {
                let (lo, hi) = (p.n_range.0.ln() - 0.25, p.n_range.1.ln() + 0.25);
                let curve: Vec<(f64, f64)> = (0..=60)
                    .map(|j| {
                        let l = lo + (hi - lo) * j as f64 / 60.0;
                        let [c0, c1, c2] = p.parabola.coef;
                        (l.exp(), c0 + c1 * l + c2 * l * l)
                    })
                    .collect();
                canvas::line(&mut ch, &x, &y, &curve, Look::solid(color, 2))?;
            }
            canvas::markers(&mut ch, &x, &y, &b.points, Shape::Circle, look)?;
            legend.add(
                format!(
                    "C = {} ({})",
                    style::sci_label(b.c),
                    plural(b.points.len(), "run")
                ),
                Glyph::Marker(Shape::Circle, look),
            );
        }
        let minima: Vec<(f64, f64)> = self
            .budgets
            .iter()
            .filter_map(|b| b.profile.as_ref().map(|p| (p.n_opt, p.loss_opt)))
            .collect();
        canvas::line(&mut ch, &x, &y, &minima, Look::dashed(BLACK, 1))?;
        canvas::markers(
            &mut ch,
            &x,
            &y,
            &minima,
            Shape::Diamond,
            Look::solid(BLACK, 5),
        )?;
        legend.add("", Glyph::Heading);
        legend.add(
            "fitted parabola in ln N",
            Glyph::Line(Look::solid(style::INK, 2)),
        );
        legend.add(
            "minimum N_opt(C)",
            Glyph::Marker(Shape::Diamond, Look::solid(BLACK, 5)),
        );
        for n in &self.notes {
            legend.note(n.clone());
        }
        legend.draw(&side)
    }
}

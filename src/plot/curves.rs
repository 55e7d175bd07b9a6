//! Figure 1: training curves, loss against compute (log-log), one line per run coloured by N, with
//! the approach-1 envelope on top.

use super::canvas::{self, chart, layout, DrawResult, Figure, Glyph, Legend, Look, Points};
use super::source::Source;
use super::style::{self, size, Axis, Units, INK};
use fit::approach1::EnvelopePoint;
use fit::report::Approach;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::collections::BTreeMap;

/// Prepared data of the training-curve figure.
pub struct Curves {
    title: String,
    n_label: String,
    c_label: String,
    /// Per distinct N (ascending): the curves of every run of that size, as (C, loss).
    by_size: Vec<(f64, Vec<Points>)>,
    envelope: Vec<(f64, f64)>,
    floor: Option<f64>,
    notes: Vec<String>,
}

/// Builds the figure, or says why it cannot be drawn.
pub fn build(src: &Source) -> Result<Curves, String> {
    let data = src.data()?;
    let curves = data.curves.as_ref().ok_or(
        "no training curves: curves come from a lab results folder (curves.parquet), not a table",
    )?;
    let mut runs: BTreeMap<u32, (f64, Vec<(f64, f64)>)> = BTreeMap::new();
    for p in curves {
        let e = runs.entry(p.run).or_insert((p.n, Vec::new()));
        e.1.push((p.c, p.loss));
    }
    if runs.is_empty() {
        return Err("the training curves are empty".into());
    }
    let mut by_n: BTreeMap<i64, (f64, Vec<Points>)> = BTreeMap::new();
    for (_, (n, mut pts)) in runs {
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let key = (n.ln() * 1e6).round() as i64;
        by_n.entry(key).or_insert((n, Vec::new())).1.push(pts);
    }
    let mut notes = Vec::new();
    let envelope = match src.report(Approach::Approach1) {
        Ok(r) => {
            let env: Vec<EnvelopePoint> =
                serde_json::from_value(r.details["envelope"].clone()).unwrap_or_default();
            env.iter().map(|e| (e.c, e.loss)).collect()
        }
        Err(why) => {
            notes.push(format!("No envelope: {why}"));
            Vec::new()
        }
    };
    Ok(Curves {
        title: format!("{}: validation loss during training", src.name),
        n_label: src.n_label(),
        c_label: src.c_label(),
        by_size: by_n.into_values().collect(),
        envelope,
        floor: data.entropy_floor,
        notes,
    })
}

/// "1 run", "4 runs".
pub fn plural(k: usize, what: &str) -> String {
    if k == 1 {
        format!("1 {what}")
    } else {
        format!("{k} {what}s")
    }
}

impl Figure for Curves {
    fn size(&self) -> (u32, u32) {
        size::SINGLE
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let (plot, side) = layout(root, &self.title)?;
        let all = || self.by_size.iter().flat_map(|(_, rs)| rs.iter().flatten());
        let x = Axis::covering(&self.c_label, all().map(|p| p.0), true, Units::Sci);
        let y = Axis::covering(
            "validation loss (nats/token)",
            all().map(|p| p.1).chain(self.floor),
            true,
            Units::Plain,
        );
        let mut ch = chart(&plot, "", &x, &y)?;
        let mut legend = Legend::default();
        legend.add(self.n_label.clone(), Glyph::Heading);
        let k = self.by_size.len();
        // At most ~14 legend rows for sizes: label every j-th size.
        let every = k.div_ceil(14).max(1);
        for (i, (n, runs)) in self.by_size.iter().enumerate() {
            let look = Look::solid(style::sequential(i, k), 2);
            for r in runs {
                canvas::line(&mut ch, &x, &y, r, look)?;
            }
            if i % every == 0 || i + 1 == k {
                legend.add(
                    format!(
                        "N = {} ({})",
                        style::si_label(*n),
                        plural(runs.len(), "run")
                    ),
                    Glyph::Line(look),
                );
            }
        }
        if !self.envelope.is_empty() {
            let look = Look::solid(BLACK, 3);
            canvas::line(&mut ch, &x, &y, &self.envelope, look)?;
            legend.add("approach-1 envelope", Glyph::Line(look));
        }
        if let Some(f) = self.floor {
            let look = Look::dashed(INK, 1);
            canvas::line(&mut ch, &x, &y, &[(x.lo, f), (x.hi, f)], look)?;
            legend.add(format!("entropy floor {f:.3}"), Glyph::Line(look));
        }
        for n in &self.notes {
            legend.note(n.clone());
        }
        legend.draw(&side)
    }
}

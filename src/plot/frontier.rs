//! Figure 3: the compute-optimal frontier, N_opt(C), D_opt(C) and tokens per parameter from every
//! fitted approach with bootstrap bands, the approach-2 minima as observations, and the published
//! Chinchilla and Kaplan laws as optional reference lines.

use super::canvas::{self, chart, layout, DrawResult, Figure, Glyph, Legend, Look, Shape};
use super::source::Source;
use super::style::{self, size, Axis, Units, INK};
use fit::approach2::IsoflopProfile;
use fit::approach3::ChinchillaLaw;
use fit::kaplan::Kaplan2020Frontier;
use fit::report::{Approach, ApproachReport, Prediction};
use fit::{Allocation, ComputeOptimal, Estimate};
use plotters::coord::Shift;
use plotters::prelude::*;

/// Published laws that can be drawn for reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reference {
    /// Hoffmann et al. 2022, approach 3.
    Chinchilla,
    /// Kaplan et al. 2020 compute-efficient frontier.
    Kaplan,
}

impl Reference {
    /// Parses "chinchilla" or "kaplan".
    pub fn parse(s: &str) -> Option<Reference> {
        match s.trim().to_ascii_lowercase().as_str() {
            "chinchilla" | "hoffmann" => Some(Reference::Chinchilla),
            "kaplan" => Some(Reference::Kaplan),
            _ => None,
        }
    }

    /// Legend label.
    pub fn label(self) -> &'static str {
        match self {
            Reference::Chinchilla => "Chinchilla (Hoffmann 2022, appr. 3)",
            Reference::Kaplan => "Kaplan 2020 frontier",
        }
    }

    fn allocation(self, c: f64) -> Allocation {
        match self {
            Reference::Chinchilla => ChinchillaLaw::hoffmann2022().allocation(c),
            Reference::Kaplan => Kaplan2020Frontier.allocation(c),
        }
    }

    /// Line style.
    pub fn look(self) -> Look {
        match self {
            Reference::Chinchilla => Look::dashed(BLACK, 2),
            Reference::Kaplan => Look::dashed(RGBColor(150, 150, 150), 2),
        }
    }
}

/// Which quantity of a prediction a panel shows.
#[derive(Debug, Clone, Copy)]
pub enum Quantity {
    /// N_opt.
    N,
    /// D_opt.
    D,
    /// D_opt / N_opt.
    TokensPerParam,
    /// Loss at the optimum.
    Loss,
}

impl Quantity {
    /// The estimate this quantity reads from a prediction.
    pub fn of(self, p: &Prediction) -> &Estimate {
        match self {
            Quantity::N => &p.n_opt,
            Quantity::D => &p.d_opt,
            Quantity::TokensPerParam => &p.tokens_per_param,
            Quantity::Loss => &p.loss,
        }
    }

    fn of_allocation(self, a: &Allocation) -> f64 {
        match self {
            Quantity::N => a.n_opt,
            Quantity::D => a.d_opt,
            Quantity::TokensPerParam => a.tokens_per_param(),
            Quantity::Loss => a.loss,
        }
    }

    /// Axis label and tick style.
    pub fn axis(self, n_label: &str) -> (String, Units) {
        match self {
            Quantity::N => (format!("compute-optimal {n_label}"), Units::Si),
            Quantity::D => ("compute-optimal tokens D".into(), Units::Si),
            Quantity::TokensPerParam => ("tokens per parameter D/N".into(), Units::Plain),
            Quantity::Loss => ("loss at the optimum (nats/token)".into(), Units::Plain),
        }
    }
}

/// One fitted frontier with its band.
pub struct Series {
    /// Legend label.
    pub label: String,
    /// Colour.
    pub color: RGBColor,
    /// The frontier.
    pub frontier: Vec<Prediction>,
    /// Whether both exponents lie in (0, 1); an implausible fit is drawn (clipped) but does not
    /// set the axis range.
    pub plausible: bool,
}

impl Series {
    /// A series from a report.
    pub fn of(label: String, color: RGBColor, r: &ApproachReport) -> Series {
        Series {
            label,
            color,
            frontier: r.frontier.clone(),
            plausible: plausible(r),
        }
    }
}

/// Whether a report's exponents a and b both lie in (0, 1), i.e. it is a usable allocation law.
pub fn plausible(r: &ApproachReport) -> bool {
    let inside = |e: &Estimate| e.value > 0.0 && e.value < 1.0;
    inside(&r.a) && inside(&r.b)
}

/// Draws one panel of frontiers: bands, lines, observed points and reference laws.
#[allow(clippy::too_many_arguments)]
pub fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    subtitle: &str,
    c_label: &str,
    n_label: &str,
    q: Quantity,
    series: &[Series],
    observed: &[(f64, f64)],
    refs: &[Reference],
) -> DrawResult {
    let cs = || series.iter().flat_map(|s| s.frontier.iter().map(|p| p.c));
    let x = Axis::covering(c_label, cs(), true, Units::Sci);
    // The y range follows the fits (values, not bands, which can be very wide) and the data.
    let ys = series
        .iter()
        .filter(|s| s.plausible)
        .flat_map(|s| s.frontier.iter().map(|p| q.of(p).value))
        .chain(observed.iter().map(|p| p.1));
    let (label, units) = q.axis(n_label);
    let y = Axis::covering(&label, ys, true, units);
    let mut ch = chart(area, subtitle, &x, &y)?;
    for s in series {
        let xs: Vec<f64> = s.frontier.iter().map(|p| p.c).collect();
        let lo: Vec<f64> = s.frontier.iter().map(|p| q.of(p).lo).collect();
        let hi: Vec<f64> = s.frontier.iter().map(|p| q.of(p).hi).collect();
        canvas::band(&mut ch, &x, &y, &xs, &lo, &hi, s.color)?;
    }
    for r in refs {
        let pts: Vec<(f64, f64)> = (0..=40)
            .map(|i| {
                let c =
                    x.from(x.range().start + (x.range().end - x.range().start) * i as f64 / 40.0);
                (c, q.of_allocation(&r.allocation(c)))
            })
            .collect();
        canvas::line(&mut ch, &x, &y, &pts, r.look())?;
    }
    for s in series {
        let pts: Vec<(f64, f64)> = s.frontier.iter().map(|p| (p.c, q.of(p).value)).collect();
        canvas::line(&mut ch, &x, &y, &pts, Look::solid(s.color, 3))?;
    }
    canvas::markers(
        &mut ch,
        &x,
        &y,
        observed,
        Shape::Diamond,
        Look::solid(INK, 5),
    )?;
    Ok(())
}

/// The colour of an approach, the same in every figure.
pub fn approach_color(a: Approach) -> RGBColor {
    style::category(match a {
        Approach::Approach1 => 0,
        Approach::Approach2 => 1,
        Approach::Approach3 => 2,
        Approach::Kaplan => 3,
    })
}

/// Prepared data of the frontier figure.
pub struct Frontier {
    title: String,
    n_label: String,
    c_label: String,
    series: Vec<Series>,
    minima: Vec<IsoflopProfile>,
    refs: Vec<Reference>,
    level: f64,
    notes: Vec<String>,
}

fn label(r: &ApproachReport) -> String {
    format!("{}: a = {}", r.approach.name(), short_interval(&r.a))
}

/// "0.70 [0.32, 1.30]": an exponent with its interval, for legends.
pub fn short_interval(e: &Estimate) -> String {
    if e.lo.is_finite() {
        format!("{:.2} [{:.2}, {:.2}]", e.value, e.lo, e.hi)
    } else {
        format!("{:.2}", e.value)
    }
}

/// Builds the figure, or says why it cannot be drawn.
pub fn build(src: &Source, refs: &[Reference]) -> Result<Frontier, String> {
    let fit = src.fit()?;
    let series: Vec<Series> = fit
        .reports
        .iter()
        .filter(|r| !r.frontier.is_empty())
        .map(|r| Series::of(label(r), approach_color(r.approach), r))
        .collect();
    if series.is_empty() {
        return Err(if fit.reports.is_empty() {
            "the fit has no approach that succeeded".into()
        } else {
            "fit.json has no frontier (written by an older lab): rerun `lab fit`".into()
        });
    }
    let minima = src
        .report(Approach::Approach2)
        .ok()
        .and_then(|r| serde_json::from_value(r.details["profiles"].clone()).ok())
        .unwrap_or_default();
    let mut notes: Vec<String> = fit
        .failed
        .iter()
        .map(|(a, why)| format!("{} not fitted: {why}", a.name()))
        .collect();
    for s in series.iter().filter(|s| !s.plausible) {
        notes.push(format!(
            "{}: an exponent outside (0, 1), not a usable allocation law on this data; drawn \
             clipped.",
            s.label
        ));
    }
    if !refs.is_empty() {
        notes.push(
            "Reference laws are extrapolated from their own scale and count N their own way \
             (Kaplan: non-embedding)."
                .into(),
        );
    }
    Ok(Frontier {
        title: format!("{}: compute-optimal allocation", src.name),
        n_label: src.n_label(),
        c_label: src.c_label(),
        series,
        minima,
        refs: refs.to_vec(),
        level: fit.options.level,
        notes,
    })
}

impl Figure for Frontier {
    fn size(&self) -> (u32, u32) {
        size::ROW
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let (plot, side) = layout(root, &self.title)?;
        let panels = plot.split_evenly((1, 3));
        let n_obs: Vec<(f64, f64)> = self.minima.iter().map(|p| (p.c, p.n_opt)).collect();
        let d_obs: Vec<(f64, f64)> = self.minima.iter().map(|p| (p.c, p.d_opt)).collect();
        let t_obs: Vec<(f64, f64)> = self
            .minima
            .iter()
            .map(|p| (p.c, p.d_opt / p.n_opt))
            .collect();
        for (area, (q, obs, sub)) in panels.iter().zip([
            (Quantity::N, &n_obs, "N_opt(C)"),
            (Quantity::D, &d_obs, "D_opt(C)"),
            (Quantity::TokensPerParam, &t_obs, "tokens per parameter"),
        ]) {
            panel(
                area,
                sub,
                &self.c_label,
                &self.n_label,
                q,
                &self.series,
                obs,
                &self.refs,
            )?;
        }
        let mut legend = Legend::default();
        legend.add("fit (exponent a)", Glyph::Heading);
        for s in &self.series {
            legend.add(s.label.clone(), Glyph::Line(Look::solid(s.color, 3)));
        }
        legend.add(
            format!("{:.0}% bootstrap band", 100.0 * self.level),
            Glyph::Band(INK),
        );
        if !self.minima.is_empty() {
            legend.add(
                "isoFLOP minima (appr. 2)",
                Glyph::Marker(Shape::Diamond, Look::solid(INK, 5)),
            );
        }
        for r in &self.refs {
            legend.add(r.label(), Glyph::Line(r.look()));
        }
        for n in &self.notes {
            legend.note(n.clone());
        }
        legend.draw(&side)
    }
}

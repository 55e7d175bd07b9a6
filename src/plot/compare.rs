//! Figure 6: variant comparison: the frontiers of several fits (sweeps, or groups of one sweep)
//! overlaid, with the compute multiplier of each variant against the first.

use super::canvas::{layout, render, DrawResult, Figure, Format, Glyph, Legend, Look};
use super::frontier::{panel, plausible, short_interval, Quantity, Reference, Series};
use super::source::Source;
use super::style::{self, size, INK};
use crate::error::{LabError, LabResult};
use crate::results::write_atomic;
use fit::bootstrap::Estimate;
use fit::report::{Approach, Prediction};
use plotters::coord::Shift;
use plotters::prelude::*;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One variant's fitted frontier (serialised into `compare.json` without the frontier).
#[derive(Debug, Clone, Serialize)]
pub struct Variant {
    /// Name (folder or group).
    pub name: String,
    /// The approach compared.
    #[serde(skip)]
    pub approach: Approach,
    /// Results folder (or fit folder) the variant was read from.
    pub dir: PathBuf,
    /// Exponent a of N_opt ~ C^a, with its interval.
    pub a: Estimate,
    /// Its frontier.
    #[serde(skip)]
    pub frontier: Vec<Prediction>,
    /// Both exponents in (0, 1).
    pub plausible: bool,
    /// Baseline compute over the variant's compute for the same loss: 1 for the baseline, None
    /// when the loss lies outside the variant's fitted frontier.
    pub multiplier: Option<f64>,
    /// A conservative interval of the multiplier (see [`multiplier_interval`]); None for the
    /// baseline or where a band does not reach the loss.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multiplier_interval: Option<(f64, f64)>,
}

/// Prepared data of the comparison figure.
pub struct Compare {
    title: String,
    n_label: String,
    c_label: String,
    /// Budget at which multipliers are measured.
    pub at_c: f64,
    /// The baseline's loss there.
    pub at_loss: f64,
    /// The variants, baseline first.
    pub variants: Vec<Variant>,
    refs: Vec<Reference>,
    notes: Vec<String>,
}

/// `compare.json`: the compute multipliers of a comparison.
#[derive(Debug, Serialize)]
pub struct CompareSummary<'a> {
    /// "a vs b (approach)".
    pub title: &'a str,
    /// The approach whose frontiers are compared.
    pub approach: Approach,
    /// Name of the baseline (the first input).
    pub baseline: &'a str,
    /// Budget at which the multipliers are measured (the baseline's largest run).
    pub at_c: f64,
    /// The baseline's frontier loss at `at_c`.
    pub at_loss: f64,
    /// Every variant, baseline first.
    pub variants: &'a [Variant],
}

/// Interpolates y at x on a curve sorted by x, in log x.
fn interpolate_log_x(curve: &[(f64, f64)], x: f64) -> Option<f64> {
    let lx = x.ln();
    curve.windows(2).find_map(|w| {
        let (x0, x1) = (w[0].0.ln(), w[1].0.ln());
        (lx >= x0 && lx <= x1 && x1 > x0)
            .then(|| w[0].1 + (w[1].1 - w[0].1) * (lx - x0) / (x1 - x0))
    })
}

/// The compute at which a frontier's optimal loss reaches `loss` (log-C interpolation on the
/// segment that crosses it).
pub fn compute_for_loss(frontier: &[Prediction], loss: f64) -> Option<f64> {
    compute_on_curve(frontier, loss, |e| e.value)
}

/// The compute at which the curve `at` picks from each frontier point (its loss, or a bound of
/// its band) reaches `loss`, interpolated in log C.
fn compute_on_curve(
    frontier: &[Prediction],
    loss: f64,
    at: impl Fn(&Estimate) -> f64,
) -> Option<f64> {
    frontier.windows(2).find_map(|w| {
        let (l0, l1) = (at(&w[0].loss), at(&w[1].loss));
        let crosses = (l0 - loss) * (l1 - loss) <= 0.0 && l0 != l1;
        crosses.then(|| {
            let t = (loss - l0) / (l1 - l0);
            (w[0].c.ln() + t * (w[1].c.ln() - w[0].c.ln())).exp()
        })
    })
}

/// A conservative interval of a variant's multiplier at the baseline's compute `at_c`: the
/// baseline's loss there ranges over its band `base_loss` (lo, hi), the variant's frontier over
/// its band; the multiplier is largest where the variant's optimistic (low) band meets the
/// baseline's pessimistic (high) loss, smallest the other way round. Both bands are pointwise 95%
/// bootstrap intervals, so the interval covers at least that (it is wider than a joint one).
pub fn multiplier_interval(
    frontier: &[Prediction],
    at_c: f64,
    base_loss: (f64, f64),
) -> Option<(f64, f64)> {
    let fastest = compute_on_curve(frontier, base_loss.1, |e| e.lo)?;
    let slowest = compute_on_curve(frontier, base_loss.0, |e| e.hi)?;
    Some((at_c / slowest, at_c / fastest))
}

fn choose_approach(sources: &[Source], wanted: Option<Approach>) -> Result<Approach, String> {
    let has = |s: &Source, a: Approach| s.report(a).is_ok_and(|r| !r.frontier.is_empty());
    match wanted {
        Some(a) => {
            for s in sources {
                if let Err(why) = s.report(a) {
                    return Err(format!("{}: {why}", s.name));
                }
            }
            Ok(a)
        }
        None => [
            Approach::Approach3,
            Approach::Approach2,
            Approach::Approach1,
            Approach::Kaplan,
        ]
        .into_iter()
        .find(|&a| sources.iter().all(|s| has(s, a)))
        .ok_or_else(|| "no approach was fitted (with a frontier) on every input".into()),
    }
}

/// Builds the comparison of `sources` (the first is the baseline), or says why it cannot.
pub fn build(
    sources: &[Source],
    wanted: Option<Approach>,
    refs: &[Reference],
) -> Result<Compare, String> {
    if sources.len() < 2 {
        return Err("a comparison needs at least two fitted results".into());
    }
    for s in sources {
        s.fit().map_err(|e| format!("{}: {e}", s.name))?;
    }
    let approach = choose_approach(sources, wanted)?;
    let base = sources[0].report(approach)?;
    // Multipliers at the baseline's largest observed budget.
    let at_c = sources[0]
        .data()
        .ok()
        .map(|d| d.finals.iter().map(|p| p.c).fold(0.0, f64::max))
        .filter(|c| *c > 0.0)
        .unwrap_or_else(|| base.frontier.first().map_or(f64::NAN, |p| p.c));
    let band = |f: fn(&Estimate) -> f64| {
        let curve: Vec<(f64, f64)> = base.frontier.iter().map(|p| (p.c, f(&p.loss))).collect();
        interpolate_log_x(&curve, at_c).unwrap_or(f64::NAN)
    };
    let at_loss = band(|e| e.value);
    let base_band = (band(|e| e.lo), band(|e| e.hi));
    let mut variants = Vec::new();
    for (i, s) in sources.iter().enumerate() {
        let r = s.report(approach)?;
        let (multiplier, multiplier_interval) = if i == 0 {
            (Some(1.0), None)
        } else {
            (
                compute_for_loss(&r.frontier, at_loss).map(|c| at_c / c),
                multiplier_interval(&r.frontier, at_c, base_band),
            )
        };
        variants.push(Variant {
            name: s.name.clone(),
            dir: s.dir.clone(),
            approach,
            a: r.a,
            frontier: r.frontier.clone(),
            plausible: plausible(r),
            multiplier,
            multiplier_interval,
        });
    }
    let notes = vec![format!(
        "Compute multiplier: the baseline's compute at C = {} (its largest run) divided by the \
         compute each variant needs for the same loss {:.4}; above 1 means more compute-efficient. \
         Its interval is conservative: the variant's 95% band against the baseline's.",
        style::sci_label(at_c),
        at_loss
    )];
    let names: Vec<&str> = sources.iter().map(|s| s.name.as_str()).collect();
    Ok(Compare {
        title: format!("{} ({})", names.join(" vs "), approach.name()),
        n_label: sources[0].n_label(),
        c_label: sources[0].c_label(),
        at_c,
        at_loss,
        variants,
        refs: refs.to_vec(),
        notes,
    })
}

impl Compare {
    /// A markdown table of the comparison.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# {}\n", self.title);
        let _ = writeln!(
            s,
            "Compute multipliers at C = {} (baseline `{}`, loss {:.4}).\n",
            style::sci_label(self.at_c),
            self.variants[0].name,
            self.at_loss
        );
        let _ = writeln!(
            s,
            "| variant | a (N_opt ~ C^a) | compute multiplier [conservative 95%] |\n|---|---|---|"
        );
        for v in &self.variants {
            let m = match (v.multiplier, std::ptr::eq(v, &self.variants[0])) {
                (_, true) => "1 (baseline)".to_string(),
                (Some(m), _) => match v.multiplier_interval {
                    Some((lo, hi)) => format!("{m:.3}x [{lo:.2}, {hi:.2}]"),
                    None => format!("{m:.3}x [band outside the fitted range]"),
                },
                (None, _) => "outside the fitted range".to_string(),
            };
            let _ = writeln!(s, "| {} | {} | {m} |", v.name, short_interval(&v.a));
        }
        let _ = writeln!(s, "\n![comparison](compare.png)");
        s
    }

    /// The comparison as data (`compare.json`): what the table says, for notebooks and scripts.
    pub fn summary(&self) -> CompareSummary<'_> {
        CompareSummary {
            title: &self.title,
            approach: self.variants[0].approach,
            baseline: &self.variants[0].name,
            at_c: self.at_c,
            at_loss: self.at_loss,
            variants: &self.variants,
        }
    }

    fn series(&self) -> Vec<Series> {
        self.variants
            .iter()
            .enumerate()
            .map(|(i, v)| Series {
                label: v.name.clone(),
                color: style::category(i),
                frontier: v.frontier.clone(),
                plausible: v.plausible,
            })
            .collect()
    }
}

impl Figure for Compare {
    fn size(&self) -> (u32, u32) {
        size::ROW
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let (plot, side) = layout(root, &format!("Frontiers: {}", self.title))?;
        let panels = plot.split_evenly((1, 3));
        let series = self.series();
        for (area, (q, sub, refs)) in panels.iter().zip([
            (Quantity::Loss, "loss at the optimum L(C)", &[][..]),
            (Quantity::N, "N_opt(C)", &self.refs[..]),
            (
                Quantity::TokensPerParam,
                "tokens per parameter",
                &self.refs[..],
            ),
        ]) {
            panel(
                area,
                sub,
                &self.c_label,
                &self.n_label,
                q,
                &series,
                &[],
                refs,
            )?;
        }
        let mut legend = Legend::default();
        legend.add("variant: a; multiplier", Glyph::Heading);
        for (v, s) in self.variants.iter().zip(&series) {
            let m = match (v.multiplier, std::ptr::eq(v, &self.variants[0])) {
                (_, true) => "; baseline".into(),
                (Some(m), _) => format!("; {m:.2}x"),
                (None, _) => "; -".into(),
            };
            legend.add(
                format!("{}: a = {}{m}", v.name, short_interval(&v.a)),
                Glyph::Line(Look::solid(s.color, 3)),
            );
        }
        legend.add("bootstrap band", Glyph::Band(INK));
        for r in &self.refs {
            legend.add(r.label(), Glyph::Line(r.look()));
        }
        for n in &self.notes {
            legend.note(n.clone());
        }
        legend.draw(&side)
    }
}

/// Compares the fits in `inputs` (results or fit folders) and writes the comparison figures,
/// compare.md and compare.json into `out`; returns the comparison and every file written.
pub fn write_comparison(
    inputs: &[PathBuf],
    approach: Option<Approach>,
    references: &[Reference],
    out: &Path,
    formats: &[Format],
) -> LabResult<(Compare, Vec<PathBuf>)> {
    let sources: Vec<Source> = inputs
        .iter()
        .map(|p| Source::load(p))
        .collect::<LabResult<_>>()?;
    let cmp = build(&sources, approach, references)
        .map_err(|why| LabError::input(&inputs[0], None, format!("cannot compare: {why}")))?;
    std::fs::create_dir_all(out)?;
    let mut files = render(&cmp, &out.join("compare"), formats)?;
    write_atomic(&out.join("compare.md"), cmp.markdown().as_bytes())?;
    let json = serde_json::to_string_pretty(&cmp.summary()).map_err(std::io::Error::other)?;
    write_atomic(&out.join("compare.json"), json.as_bytes())?;
    files.extend(["compare.md", "compare.json"].map(|n| out.join(n)));
    Ok((cmp, files))
}

#[cfg(test)]
mod tests {
    use super::*;
    use fit::Estimate;

    fn pred(c: f64, loss: f64) -> Prediction {
        let e = |v| Estimate {
            value: v,
            lo: f64::NAN,
            hi: f64::NAN,
        };
        Prediction {
            c,
            n_opt: e(1.0),
            d_opt: e(1.0),
            tokens_per_param: e(1.0),
            loss: e(loss),
        }
    }

    #[test]
    fn multiplier_of_a_shifted_frontier() {
        // L(C) = 10 C^-0.1. A variant that reaches every loss with half the compute:
        // L'(C) = 10 (2C)^-0.1. At the baseline's C0 = 1e12 it needs C0/2: multiplier 2.
        let cs: Vec<f64> = (0..=30)
            .map(|i| 10f64.powf(10.0 + 0.2 * i as f64))
            .collect();
        let base: Vec<(f64, f64)> = cs.iter().map(|&c| (c, 10.0 * c.powf(-0.1))).collect();
        let variant: Vec<Prediction> = cs
            .iter()
            .map(|&c| pred(c, 10.0 * (2.0 * c).powf(-0.1)))
            .collect();
        let l0 = interpolate_log_x(&base, 1e12).unwrap();
        assert!((l0 - 10.0 * 1e12f64.powf(-0.1)).abs() < 1e-3);
        let c = compute_for_loss(&variant, l0).unwrap();
        assert!((1e12 / c - 2.0).abs() < 0.02, "{}", 1e12 / c);
        // A loss no variant reaches: no multiplier.
        assert!(compute_for_loss(&variant, 0.01).is_none());
    }

    #[test]
    fn multiplier_interval_combines_both_bands() {
        // Variant L'(C) = 10 (2C)^-0.1 with a band of 0.9x to 1.1x its compute shift, i.e. its
        // lo band is L at 2.2 C and its hi band L at 1.8 C; the baseline's loss band at C0 is
        // that of L at C0/1.05 and 1.05 C0.
        let l = |c: f64| 10.0 * c.powf(-0.1);
        let cs: Vec<f64> = (0..=30)
            .map(|i| 10f64.powf(10.0 + 0.2 * i as f64))
            .collect();
        let variant: Vec<Prediction> = cs
            .iter()
            .map(|&c| Prediction {
                loss: Estimate {
                    value: l(2.0 * c),
                    lo: l(2.2 * c),
                    hi: l(1.8 * c),
                },
                ..pred(c, 0.0)
            })
            .collect();
        let c0 = 1e12;
        let (lo, hi) = multiplier_interval(&variant, c0, (l(1.05 * c0), l(c0 / 1.05))).unwrap();
        // Smallest: the variant's hi band (1.8x) against the baseline's low loss (1.05 C0):
        // 1.8 / 1.05; largest: 2.2 x 1.05.
        assert!((lo - 1.8 / 1.05).abs() < 0.02, "{lo}");
        assert!((hi - 2.2 * 1.05).abs() < 0.03, "{hi}");
        // A band that never reaches the loss: no interval.
        assert!(multiplier_interval(&variant, c0, (0.01, 0.02)).is_none());
    }
}

//! `report.md`: a results folder summarised for GitHub: the runs, the compute-optimal predictions
//! with intervals, the figures, and the full fit tables.

use crate::error::LabResult;
use crate::fitreport::{markdown, sci, with_interval};
use crate::plot::source::Source;
use crate::plot::style::{sci_label, si_label};
use crate::plot::PlotSummary;
use crate::results::write_atomic;
use crate::table::{numbers, read_frame, texts};
use polars::prelude::DataType;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Counts and totals of a sweep's runs.
struct RunsSummary {
    by_status: BTreeMap<String, usize>,
    branching: Option<Branching>,
    compute: f64,
    wall_seconds: f64,
    backends: Vec<String>,
}

/// What WSD cooldown branches saved: the compute spent on a branched sweep's finished points
/// (trunks and cooldowns) against what independent runs for the same points would have cost.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Branching {
    /// Finished branches (the (N, D) points).
    pub branches: usize,
    /// Trunks.
    pub trunks: usize,
    /// FLOPs spent: every trunk, plus every branch's cooldown.
    pub spent: f64,
    /// FLOPs the same points cost as independent runs (the sum of their C).
    pub independent: f64,
}

impl Branching {
    /// One line for a summary.
    pub fn line(&self) -> String {
        format!(
            "{} cooldown branches from {} trunks: {} FLOPs spent for points that cost {} as independent runs ({:.2}x fewer FLOPs per point)",
            self.branches,
            self.trunks,
            sci(self.spent),
            sci(self.independent),
            self.independent / self.spent
        )
    }
}

/// The branching figures of a runs table, when it has branches.
pub(crate) fn branching(df: &polars::prelude::DataFrame, path: &Path) -> Option<Branching> {
    let (role, status) = (
        texts(df, "role", path).ok()?,
        texts(df, "status", path).ok()?,
    );
    let spent = numbers(df, "compute_spent", path).ok()?;
    let compute = numbers(df, "compute", path).ok()?;
    let mut b = Branching {
        branches: 0,
        trunks: 0,
        spent: 0.0,
        independent: 0.0,
    };
    for i in 0..df.height() {
        match role[i].as_deref().unwrap_or("") {
            "trunk" => {
                b.trunks += 1;
                b.spent += spent[i].unwrap_or(0.0);
            }
            "branch" if status[i].as_deref() == Some("done") => {
                b.branches += 1;
                b.spent += spent[i].unwrap_or(0.0);
                b.independent += compute[i].unwrap_or(0.0);
            }
            _ => {}
        }
    }
    (b.branches > 0).then_some(b)
}

fn runs_summary(dir: &Path) -> Option<RunsSummary> {
    let path = dir.join("runs.parquet");
    let df = read_frame(&path).ok()?;
    let strings = |name: &str| -> Vec<String> {
        df.column(name)
            .ok()
            .and_then(|c| c.cast(&DataType::String).ok())
            .and_then(|c| {
                c.str()
                    .ok()
                    .map(|s| s.iter().map(|v| v.unwrap_or("").to_string()).collect())
            })
            .unwrap_or_default()
    };
    let sum = |name: &str| -> f64 {
        numbers(&df, name, &path)
            .map(|v| v.into_iter().flatten().filter(|x| x.is_finite()).sum())
            .unwrap_or(f64::NAN)
    };
    let mut by_status = BTreeMap::new();
    for s in strings("status") {
        *by_status.entry(s).or_insert(0) += 1;
    }
    let mut backends = strings("backend");
    backends.sort();
    backends.dedup();
    let spent = sum("compute_spent");
    Some(RunsSummary {
        by_status,
        branching: branching(&df, &path),
        compute: if spent.is_nan() {
            sum("compute")
        } else {
            spent
        },
        wall_seconds: sum("wall_seconds"),
        backends,
    })
}

/// Relative path from the report's folder to a figure, with forward slashes for GitHub.
fn relative(from: &Path, file: &Path) -> String {
    file.strip_prefix(from)
        .unwrap_or(file)
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// The report's markdown.
pub fn render(src: &Source, plots: &PlotSummary) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# {}: scaling-law report\n", src.name);
    let _ = writeln!(
        s,
        "Written by lab {} from `{}`. Regenerate with `lab report {}`.\n",
        env!("CARGO_PKG_VERSION"),
        src.dir.display(),
        src.dir.display()
    );
    let _ = writeln!(s, "## Runs\n");
    match (runs_summary(&src.dir), src.data()) {
        (Some(r), data) => {
            let total: usize = r.by_status.values().sum();
            let statuses: Vec<String> = r
                .by_status
                .iter()
                .map(|(k, v)| format!("{v} {k}"))
                .collect();
            let _ = writeln!(
                s,
                "{total} runs ({}), {} FLOPs of training in {:.1} min of run time on {}.",
                statuses.join(", "),
                sci(r.compute),
                r.wall_seconds / 60.0,
                r.backends.join(", ")
            );
            if let Some(b) = r.branching {
                let _ = writeln!(s, "\n{}.", b.line());
            }
            if let Ok(d) = data {
                range_line(&mut s, d);
            }
        }
        (None, Ok(d)) => {
            let _ = writeln!(
                s,
                "Fitted table `{}`: {} of {} rows used.",
                d.info.path.display(),
                d.info.used,
                d.info.rows
            );
            range_line(&mut s, d);
        }
        (None, Err(why)) => {
            let _ = writeln!(s, "The data could not be read: {why}");
        }
    }
    let _ = writeln!(s);
    match src.fit() {
        Ok(f) => {
            let _ = writeln!(s, "## Compute-optimal allocation\n");
            let level = f.options.level * 100.0;
            let _ = writeln!(
                s,
                "N_opt ~ C^a and D_opt ~ C^b; {level:.0}% bootstrap intervals ({} replicates).\n",
                f.options.bootstrap
            );
            let _ = writeln!(
                s,
                "| approach | points | a | b | held-out loss error |\n|---|---|---|---|---|"
            );
            for r in &f.reports {
                let mut held = r
                    .extrapolation
                    .as_ref()
                    .and_then(|x| x.loss_mape)
                    .map_or("-".to_string(), |m| format!("{:.2}%", 100.0 * m));
                if let Some(m) = r
                    .extrapolation_at_floor
                    .as_ref()
                    .and_then(|h| h.check.loss_mape)
                {
                    held += &format!(" ({:.2}% with E at the known floor)", 100.0 * m);
                }
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {held} |",
                    r.approach.name(),
                    r.points,
                    with_interval(&r.a),
                    with_interval(&r.b)
                );
            }
            for (a, why) in &f.failed {
                let _ = writeln!(s, "| {} | - | not fitted: {why} | | |", a.name());
            }
            let _ = writeln!(s);
        }
        Err(why) => {
            let _ = writeln!(s, "## Fit\n\n{why}\n");
        }
    }
    let _ = writeln!(s, "## Figures\n");
    for (kind, files) in &plots.drawn {
        if let Some(png) = files
            .iter()
            .find(|p| p.extension().is_some_and(|e| e == "png"))
        {
            let _ = writeln!(
                s,
                "**{}.**\n\n![{}]({})\n",
                kind.caption(),
                kind.name(),
                relative(&src.dir, png)
            );
        } else if let Some(f) = files.first() {
            let _ = writeln!(
                s,
                "- [{}]({}): {}",
                kind.name(),
                relative(&src.dir, f),
                kind.caption()
            );
        }
    }
    for (kind, why) in &plots.skipped {
        let _ = writeln!(s, "- {} not drawn: {why}", kind.name());
    }
    if src.dir.join("runs.parquet").exists() {
        let _ = write!(s, "\n{}", crate::analyses::markdown(&src.dir));
    }
    // The emergence analysis, when `lab sweep` or `lab fit --emergence` has run.
    if let Ok(text) = std::fs::read_to_string(src.dir.join("fit").join("emergence.md")) {
        for line in text.lines() {
            let _ = writeln!(s, "{}{line}", if line.starts_with('#') { "#" } else { "" });
        }
        let _ = writeln!(s);
    }
    if let Ok(f) = src.fit() {
        let _ = writeln!(s, "\n## Fits in detail\n");
        // The fit's own markdown, one heading level down.
        for line in markdown(f).lines().skip_while(|l| l.starts_with("# ")) {
            if line.starts_with('#') {
                let _ = writeln!(s, "#{line}");
            } else {
                let _ = writeln!(s, "{line}");
            }
        }
    }
    s
}

fn range_line(s: &mut String, d: &crate::table::FitData) {
    let span = |f: fn(&fit::Obs) -> f64, label: fn(f64) -> String| {
        let v: Vec<f64> = d.finals.iter().map(f).collect();
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        format!("{} to {}", label(lo), label(hi))
    };
    let _ = writeln!(
        s,
        "\nN from {}, D from {}, C from {} FLOPs{}.",
        span(|o| o.n, si_label),
        span(|o| o.d, si_label),
        span(|o| o.c, sci_label),
        d.entropy_floor.map_or(String::new(), |e| format!(
            "; entropy floor of the corpus {e:.4} nats/token"
        ))
    );
}

/// Writes `report.md` into the source's folder and returns its path.
pub fn write(src: &Source, plots: &PlotSummary) -> LabResult<PathBuf> {
    let path = src.dir.join("report.md");
    write_atomic(&path, render(src, plots).as_bytes())?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::FigureKind;

    #[test]
    fn figure_links_are_relative_with_slashes() {
        let dir = Path::new("results/x");
        assert_eq!(
            relative(dir, &dir.join("plots").join("frontier.png")),
            "plots/frontier.png"
        );
    }

    #[test]
    fn every_figure_has_a_caption_and_parses_back() {
        for k in FigureKind::ALL {
            assert!(!k.caption().is_empty());
            assert_eq!(FigureKind::parse(k.name()), Some(k));
        }
    }
}

//! `lab fit TABLE --routed`: Clark et al. 2022's law for routed language models
//! (`fit::routed`) on a table of dense parameters, expert counts and final losses, beside the
//! published constants of its three routers. Writes `<out>/routed.{json,md}`.

use crate::error::{LabError, LabResult};
use crate::fitreport::{sci, with_interval};
use crate::plot::lawfit::{write_with_figure, LawFitFigure, LawPoint};
use crate::table::{filter_mask, numbers, read_frame};
use fit::routed::{self, RoutedFit, RoutedLaw, RoutedObs, Router};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;

/// Which columns hold what, and which rows count.
pub struct RoutedColumns<'a> {
    /// N: the parameters of the dense model the experts copy.
    pub n: &'a str,
    /// Expert count (1 for dense rows).
    pub experts: &'a str,
    /// Final loss.
    pub loss: &'a str,
    /// Row filters (`col=value`, ...).
    pub filters: &'a [String],
}

/// The content of routed.json.
#[derive(Debug, Clone, Serialize)]
pub struct RoutedFile {
    /// The table.
    pub input: String,
    /// The fit.
    pub fit: RoutedFit,
    /// Clark et al.'s S-BASE, RL-R and HASH laws, for comparison.
    pub published: Vec<(String, RoutedLaw)>,
    /// Fitted on the smaller sizes, predicting the largest; `None` when those do not fit.
    pub extrapolation: Option<fit::extrapolate::ExtrapolationError>,
    /// The runs fitted (for the figure).
    #[serde(skip)]
    pub runs: Vec<RoutedObs>,
}

/// Reads the rows that pass the filters.
fn read_runs(path: &Path, cols: &RoutedColumns) -> LabResult<Vec<RoutedObs>> {
    if path.is_dir() {
        return Err(LabError::input(
            path,
            None,
            "--routed fits a table of dense parameters, expert counts and losses (a lab results \
             folder's MoE runs: --krajewski)",
        ));
    }
    let df = read_frame(path)?;
    let mask = filter_mask(&df, cols.filters, path)?;
    let n = numbers(&df, cols.n, path)?;
    let e = numbers(&df, cols.experts, path)?;
    let l = numbers(&df, cols.loss, path)?;
    (0..df.height())
        .filter(|&i| mask[i])
        .map(|i| match (n[i], e[i], l[i]) {
            (Some(n), Some(experts), Some(loss)) => Ok(RoutedObs { n, experts, loss }),
            _ => Err(LabError::input(
                path,
                Some(i + 2),
                format!(
                    "row {}: empty {}, {} or {} (filter such rows out with --filter)",
                    i + 1,
                    cols.n,
                    cols.experts,
                    cols.loss
                ),
            )),
        })
        .collect()
}

/// Fits the law on the table at `path`.
pub fn analyse(
    path: &Path,
    cols: &RoutedColumns,
    (bootstrap, seed, level): (usize, u64, f64),
) -> LabResult<RoutedFile> {
    let runs = read_runs(path, cols)?;
    let fit = routed::fit(&runs, bootstrap, seed, level)
        .map_err(|e| LabError::input(path, None, e.to_string()))?;
    let extrapolation = routed::extrapolation(&runs, level).ok();
    Ok(RoutedFile {
        extrapolation,
        runs,
        input: path.display().to_string(),
        fit,
        published: [
            ("S-BASE", Router::SBase),
            ("RL-R", Router::RlR),
            ("HASH", Router::Hash),
        ]
        .into_iter()
        .map(|(name, r)| (name.to_string(), RoutedLaw::published(r)))
        .collect(),
    })
}

/// The fit as markdown.
pub fn markdown(f: &RoutedFile) -> String {
    let fit = &f.fit;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Routed-LM law (Clark et al. 2022)\n\nlog10 L = a log10 N + b log10 Ê + c log10 N log10 Ê + d, with 1/Ê = 1/(E - 1 + (1/E_start - 1/E_max)^-1) + 1/E_max ({}). {} runs at expert counts {:?}; RMS of log10 L {:.4}; {} bootstrap fits.\n",
        f.input, fit.points, fit.expert_counts, fit.rms_log10, fit.bootstrap_succeeded
    );
    let names: Vec<&str> = f.published.iter().map(|(n, _)| n.as_str()).collect();
    let _ = writeln!(
        s,
        "| parameter | lab | {} |\n|---|---|{}",
        names.join(" | "),
        "---|".repeat(names.len())
    );
    for (i, (name, value)) in fit.law.parameters().into_iter().enumerate() {
        let published: Vec<String> = f
            .published
            .iter()
            .map(|(_, law)| sci(law.parameters()[i].1))
            .collect();
        let lab = fit
            .parameters
            .get(name)
            .map_or_else(|| sci(value), with_interval);
        let _ = writeln!(s, "| {name} | {lab} | {} |", published.join(" | "));
    }
    for u in &fit.unidentified {
        let _ = writeln!(
            s,
            "\n**Not identified:** {u}: the expert counts do not pin it."
        );
    }
    if let Some(x) = &f.extrapolation {
        let _ = writeln!(s, "{}", crate::fitreport::extrapolation_paragraph(x, ""));
    }
    s
}

/// Writes routed.json, routed.md and the fit-quality figure (.png, .svg) into `out`.
pub fn write(out: &Path, f: &RoutedFile) -> LabResult<()> {
    let law = &f.fit.law;
    let figure = LawFitFigure {
        title: "Routed-LM law (Clark et al. 2022)".into(),
        x_label: "experts E (1: dense)".into(),
        points: f
            .runs
            .iter()
            .map(|p| LawPoint {
                n: p.n,
                x: p.experts,
                predicted: law.loss(p.n, p.experts),
                observed: p.loss,
            })
            .collect(),
        notes: vec![format!("RMS of log10 L {:.4}.", f.fit.rms_log10)],
    };
    write_with_figure(out, "routed", (f, &markdown(f)), &figure)
}

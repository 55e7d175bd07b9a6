//! `lab fit TABLE --data-constrained`: Muennighoff et al.'s data-constrained law
//! (`fit::data_constrained`) on a table of parameters, tokens, unique tokens and losses, beside
//! the paper's constants. Writes `<out>/data_constrained.{json,md}`.

use crate::error::{LabError, LabResult};
use crate::fitreport::{sci, with_interval};
use crate::plot::lawfit::{write_with_figure, LawFitFigure, LawPoint};
use crate::table::{done_runs_mask, numbers, read, read_frame, TableSpec};
use fit::data_constrained::{
    self, Base, ConstrainedExtrapolation, ConstrainedObs, DataConstrainedFit, DataConstrainedLaw,
};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;

/// How the law's Chinchilla part (E, A, alpha, B, beta) is had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BaseChoice {
    /// Fitted on the table's single-epoch runs of models their data can use, beta = alpha (the
    /// paper's choice).
    Tied,
    /// Fitted likewise, alpha and beta separately.
    Free,
    /// Held at the paper's values (fitted on C4 runs), as the paper's own second stage does.
    Published,
}

/// The content of data_constrained.json.
#[derive(Debug, Clone, Serialize)]
pub struct ConstrainedFile {
    /// The table.
    pub input: String,
    /// The column of unique tokens.
    pub unique_column: String,
    /// The fit.
    pub fit: DataConstrainedFit,
    /// The paper's law, for comparison.
    pub published: DataConstrainedLaw,
    /// RMSE of ln(predicted / observed) of the paper's law on the same runs.
    pub published_rmse_log: f64,
    /// Fitted on the smaller runs, predicting the largest (and Chinchilla's law, blind to
    /// repetition, on the same split); `None` when the smaller runs do not fit.
    pub extrapolation: Option<ConstrainedExtrapolation>,
    /// The runs fitted (for the figure).
    #[serde(skip)]
    pub runs: Vec<ConstrainedObs>,
}

/// The done runs of a lab results folder (trunks left out, `spec`'s N and filters): N, tokens,
/// the corpus's unique training tokens and the final loss; every run is its own point.
fn read_results_runs(dir: &Path, spec: &TableSpec) -> LabResult<Vec<ConstrainedObs>> {
    let path = dir.join("runs.parquet");
    let df = read_frame(&path)?;
    let none = || {
        LabError::input(
            &path,
            None,
            "--data-constrained: no done run records unique tokens (a text corpus's training split; \
             the synthetic stream never repeats, and runs trained before lab recorded it lack it)",
        )
    };
    if df.column("unique_tokens").is_err() {
        return Err(none());
    }
    let mask = done_runs_mask(&df, &spec.filters, &path)?;
    let unique = numbers(&df, "unique_tokens", &path)?;
    let n = numbers(&df, spec.n_kind.column(), &path)?;
    let d = numbers(&df, "tokens", &path)?;
    let loss = numbers(&df, "final_val_loss", &path)?;
    let runs: Vec<ConstrainedObs> = (0..df.height())
        .filter(|&i| mask[i])
        .filter_map(|i| {
            Some(ConstrainedObs {
                n: n[i]?,
                d: d[i]?,
                unique: unique[i]?,
                loss: loss[i]?,
            })
        })
        .collect();
    if runs.is_empty() {
        return Err(none());
    }
    Ok(runs)
}

/// Reads the runs: from a results folder, or from a table (N, D and the loss as `lab fit` reads
/// any table, and the unique tokens from `unique_column` of the same rows).
fn read_runs(path: &Path, spec: &TableSpec, unique_column: &str) -> LabResult<Vec<ConstrainedObs>> {
    if path.is_dir() {
        return read_results_runs(path, spec);
    }
    let data = read(path, spec)?;
    let unique = numbers(&read_frame(path)?, unique_column, path)?;
    data.finals
        .iter()
        .map(|o| {
            let row = o.run as usize;
            let u = unique[row].ok_or_else(|| {
                LabError::input(
                    path,
                    Some(row + 2),
                    format!("row {}: empty {unique_column}", row + 1),
                )
            })?;
            Ok(ConstrainedObs {
                n: o.n,
                d: o.d,
                unique: u,
                loss: o.loss,
            })
        })
        .collect()
}

/// Fits the law on the table at `path`.
pub fn analyse(
    path: &Path,
    spec: &TableSpec,
    unique_column: &str,
    base: BaseChoice,
    (bootstrap, seed, level): (usize, u64, f64),
) -> LabResult<ConstrainedFile> {
    let runs = read_runs(path, spec, unique_column)?;
    let published = DataConstrainedLaw::published();
    let base = match base {
        BaseChoice::Tied => Base::Tied,
        BaseChoice::Free => Base::Free,
        BaseChoice::Published => Base::Held(published.base),
    };
    let fit = data_constrained::fit(&runs, base, bootstrap, seed, level)
        .map_err(|e| LabError::input(path, None, e.to_string()))?;
    let published_rmse_log = (runs
        .iter()
        .map(|p| (published.loss(p) / p.loss).ln().powi(2))
        .sum::<f64>()
        / runs.len() as f64)
        .sqrt();
    let extrapolation = data_constrained::extrapolation(&runs, base, level).ok();
    Ok(ConstrainedFile {
        extrapolation,
        runs,
        input: path.display().to_string(),
        unique_column: unique_column.to_string(),
        fit,
        published,
        published_rmse_log,
    })
}

/// The fit as markdown.
pub fn markdown(f: &ConstrainedFile) -> String {
    let fit = &f.fit;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Data-constrained law (Muennighoff et al. 2023)\n\nL = E + A / N'^alpha + B / D'^beta on effective parameters N' and data D' ({}; unique tokens from `{}`). {} runs: {} of one epoch with no excess parameters, {} repeated, {} with excess parameters. Chinchilla part: {}. RMSE of ln L {:.4} (the paper's law on the same runs: {:.4}); {} bootstrap fits.\n",
        f.input,
        f.unique_column,
        fit.points,
        fit.plain,
        fit.repeated,
        fit.excess_parameters,
        match fit.base {
            Base::Tied => "fitted, alpha = beta",
            Base::Free => "fitted",
            Base::Held(_) => "held at the paper's",
        },
        fit.rmse_log,
        f.published_rmse_log,
        fit.bootstrap_succeeded
    );
    let _ = writeln!(s, "| parameter | lab | published |\n|---|---|---|");
    for (name, published) in f.published.parameters() {
        let _ = writeln!(
            s,
            "| {name} | {} | {} |",
            with_interval(&fit.parameters[name]),
            sci(published)
        );
    }
    for u in &fit.unidentified {
        let _ = writeln!(s, "\n**Not identified:** {u}.");
    }
    if let Some(x) = &f.extrapolation {
        let blind = x.chinchilla.as_ref().map_or(String::new(), |c| {
            format!(
                "; Chinchilla's law on N and D alone (repeated tokens counted as fresh): {}",
                crate::fitreport::error_with_interval(c)
            )
        });
        let _ = writeln!(
            s,
            "{}",
            crate::fitreport::extrapolation_paragraph(&x.law, &blind)
        );
    }
    s
}

/// Writes data_constrained.json, .md and the fit-quality figure (.png, .svg) into `out`.
pub fn write(out: &Path, f: &ConstrainedFile) -> LabResult<()> {
    let law = &f.fit.law;
    let figure = LawFitFigure {
        title: "Data-constrained law (Muennighoff et al. 2023)".into(),
        x_label: "epochs D / U_D".into(),
        points: f
            .runs
            .iter()
            .map(|p| LawPoint {
                n: p.n,
                x: p.d / p.unique,
                predicted: law.loss(p),
                observed: p.loss,
            })
            .collect(),
        notes: vec![format!("RMSE of ln L {:.4}.", f.fit.rmse_log)],
    };
    write_with_figure(out, "data_constrained", (f, &markdown(f)), &figure)
}

//! The analyses a results folder's design supports, chosen from the design itself: the scaling
//! laws it identifies (fit::design), the emergence analysis when its runs carry tasks, and one fit
//! per architecture with their comparison when an architecture column varies. `lab sweep` runs them
//! and prints one line for each it skips and why; `lab report` lists the same choices.

use crate::emergence::{self, EmergenceX};
use crate::error::LabResult;
use crate::fitreport::{free_e_and_floor, noise_model, run_fits, with_interval, write, FitFile};
use crate::plot::compare::write_comparison;
use crate::table::{read, read_frame, FitData, TableSpec};
use fit::design::Design;
use fit::emergence::Verdict;
use fit::report::{default_predictions, Approach, FitOptions};
use polars::prelude::DataType;
use std::path::{Path, PathBuf};

/// Columns whose values name architectures that are fitted apart and compared (the attention
/// pattern, the feed-forward kind, the knobs of `sweeps/knobs-*.yaml` and the objective).
pub const ARCHITECTURE_COLUMNS: [&str; 9] = [
    "arch",
    "objective",
    "ffn",
    "attention",
    "position",
    "norm",
    "norm_placement",
    "mlp",
    "mtp",
];

/// One analysis.
#[derive(Debug, Clone, PartialEq)]
pub enum Analysis {
    /// A scaling law (a Chinchilla approach or Kaplan's laws).
    Law(Approach),
    /// Jumps in task metrics and their explanation, against compute or N.
    Emergence(EmergenceX),
    /// One fit per value of an architecture column, and their comparison.
    Groups(String),
}

impl Analysis {
    /// Short name, as printed.
    pub fn name(&self) -> String {
        match self {
            Analysis::Law(a) => format!("fit {}", a.name()),
            Analysis::Emergence(_) => "emergence".into(),
            Analysis::Groups(col) => format!("fit by {col}"),
        }
    }
}

/// An analysis with the reason it is skipped, if it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    /// The analysis.
    pub analysis: Analysis,
    /// Why the design does not support it (`None`: it runs).
    pub skipped: Option<String>,
}

/// The analyses of a results folder, from its design (reads runs.parquet, fits nothing).
pub fn choices(dir: &Path) -> LabResult<Vec<Choice>> {
    let data = read(dir, &TableSpec::default())?;
    let mut out = law_choices(&data);
    let evals = dir.join("evals.parquet");
    if evals.exists() && read_frame(&evals)?.height() > 0 {
        let design = Design::of(&data.finals, FitOptions::default().approach2.budget_ratio);
        // With one token count per run (a size sweep), compute is N times a constant: N reads better.
        let x = if design.distinct_d < 3 {
            EmergenceX::Params
        } else {
            EmergenceX::Compute
        };
        out.push(Choice {
            analysis: Analysis::Emergence(x),
            skipped: None,
        });
    }
    for col in ARCHITECTURE_COLUMNS {
        if done_values(dir, col)?.len() > 1 {
            out.push(Choice {
                analysis: Analysis::Groups(col.to_string()),
                skipped: None,
            });
        }
    }
    Ok(out)
}

/// Which scaling laws the design of `data` identifies.
fn law_choices(data: &FitData) -> Vec<Choice> {
    let design = Design::of(&data.finals, FitOptions::default().approach2.budget_ratio);
    Approach::ALL
        .iter()
        .map(|&a| Choice {
            analysis: Analysis::Law(a),
            skipped: match (a, &data.curves) {
                (Approach::Approach1, None) => Some("no training curves (curves.parquet)".into()),
                _ => design.refuses(a),
            },
        })
        .collect()
}

/// The distinct values of `col` among the folder's done runs (none when the column is absent).
fn done_values(dir: &Path, col: &str) -> LabResult<Vec<String>> {
    let path = dir.join("runs.parquet");
    let df = read_frame(&path)?;
    let (Ok(values), Ok(status)) = (df.column(col), df.column("status")) else {
        return Ok(Vec::new());
    };
    let (Ok(values), Ok(status)) = (
        values.cast(&DataType::String),
        status.cast(&DataType::String),
    ) else {
        return Ok(Vec::new());
    };
    let (Ok(values), Ok(status)) = (values.str(), status.str()) else {
        return Ok(Vec::new());
    };
    // In the order of first appearance: runs.parquet follows the sweep's plan, so the first value
    // is the one the YAML lists first, the baseline of the comparison.
    let mut out: Vec<String> = Vec::new();
    for (v, _) in values
        .iter()
        .zip(status.iter())
        .filter(|(_, s)| *s == Some("done"))
    {
        if let Some(v) = v.filter(|v| !out.iter().any(|o| o == v)) {
            out.push(v.to_string());
        }
    }
    Ok(out)
}

/// Fit settings of the analyses: on lab's synthetic corpus approach 3 fits E free (recovering the
/// known floor checks the law); the loss frontiers of approaches 1 and 2 and Kaplan's L(C), a
/// handful of points each, hold E at the floor.
fn options(data: &FitData, bootstrap: usize) -> FitOptions {
    let mut options = FitOptions {
        bootstrap,
        predict: default_predictions(&data.finals),
        ..FitOptions::default()
    };
    options.hold_e(data.entropy_floor);
    options.approach3.fixed_e = None;
    options
}

/// Fits the laws the design of `data` identifies into `out`; returns the printed lines.
fn fit_laws(data: &FitData, bootstrap: usize, out: &Path, label: &str) -> Vec<String> {
    let choices = law_choices(data);
    let mut lines = skipped_lines(&choices, label);
    let wanted: Vec<Approach> = choices
        .iter()
        .filter(|c| c.skipped.is_none())
        .filter_map(|c| match c.analysis {
            Analysis::Law(a) => Some(a),
            _ => None,
        })
        .collect();
    if wanted.is_empty() {
        return lines;
    }
    let mut options = options(data, bootstrap);
    // Without a given sd the model cannot fail: it falls back to resampling with a note.
    let (noise, note) = noise_model(data, &options, None, None).unwrap_or_default();
    options.noise = noise;
    lines.extend(note.map(|n| format!("{label}: {n}")));
    match run_fits(data, &wanted, &options).and_then(|f| {
        write(out, &f)?;
        Ok(f)
    }) {
        Ok(f) => lines.extend(law_lines(&f, label)),
        Err(e) => lines.push(format!("{label}: not fitted: {e}")),
    }
    lines
}

/// One line per skip reason, naming every approach it applies to.
fn skipped_lines(choices: &[Choice], label: &str) -> Vec<String> {
    let mut reasons: Vec<(String, Vec<String>)> = Vec::new();
    for c in choices {
        let (Analysis::Law(a), Some(why)) = (&c.analysis, &c.skipped) else {
            continue;
        };
        match reasons.iter_mut().find(|(w, _)| w == why) {
            Some((_, names)) => names.push(a.name().into()),
            None => reasons.push((why.clone(), vec![a.name().into()])),
        }
    }
    reasons
        .into_iter()
        .map(|(why, names)| format!("{label} {}: skipped: {why}", names.join(", ")))
        .collect()
}

/// The headline of each fitted law, and a line for each that failed.
fn law_lines(f: &FitFile, label: &str) -> Vec<String> {
    let mut lines = Vec::new();
    for r in &f.reports {
        lines.push(format!(
            "{label} {}: a = {} (N_opt ~ C^a)",
            r.approach.name(),
            with_interval(&r.a)
        ));
        if let Some((e, floor)) = free_e_and_floor(f, r) {
            lines.push(format!(
                "{label} {}: E = {} against the corpus's entropy floor {floor:.4}",
                r.approach.name(),
                with_interval(e)
            ));
        }
    }
    for (a, why) in &f.failed {
        lines.push(format!("{label} {}: not fitted: {why}", a.name()));
    }
    lines
}

/// The emergence analysis into `<dir>/fit`, with one verdict line per task.
fn emergence_lines(dir: &Path, x: EmergenceX) -> LabResult<Vec<String>> {
    let f = emergence::analyse(dir, x)?;
    emergence::write(&dir.join("fit"), &f)?;
    let mut lines: Vec<String> = f
        .tasks
        .iter()
        .map(|t| {
            let verdict = match t.jump.verdict {
                Verdict::Jump => format!(
                    "a jump at x = {:.2} (width {:.2})",
                    t.jump.sigmoid.x0, t.jump.sigmoid.width
                ),
                Verdict::Smooth => "smooth, no jump".into(),
                Verdict::InsufficientResolution => "jump-like, not resolved".into(),
            };
            let why = t
                .mirage
                .as_ref()
                .map_or(String::new(), |m| format!(": {}", m.label));
            format!("emergence {}: {verdict}{why}", t.task)
        })
        .collect();
    lines.push(format!(
        "wrote {}",
        dir.join("fit").join("emergence.md").display()
    ));
    Ok(lines)
}

/// One fit per value of `col` into `<dir>/fit/groups/<col>-<value>/`, and their comparison.
fn group_lines(dir: &Path, col: &str, bootstrap: usize) -> LabResult<Vec<String>> {
    let groups = dir.join("fit").join("groups");
    let mut lines = Vec::new();
    let mut fitted: Vec<PathBuf> = Vec::new();
    for v in done_values(dir, col)? {
        let spec = TableSpec {
            filters: vec![format!("{col}={v}")],
            ..TableSpec::default()
        };
        let out = groups.join(format!("{col}-{v}"));
        let label = format!("fit {col}={v}");
        match read(dir, &spec) {
            Ok(data) => {
                lines.extend(fit_laws(&data, bootstrap, &out, &label));
                if out.join("fit.json").exists() {
                    fitted.push(out);
                }
            }
            Err(e) => lines.push(format!("{label}: not fitted: {e}")),
        }
    }
    if fitted.len() > 1 {
        let formats = crate::plot::PlotOptions::default().formats;
        match write_comparison(&fitted, None, &[], &groups, &formats) {
            Ok((cmp, _)) => {
                lines.extend(crate::cli::plot_cmd::comparison_lines(&cmp));
                lines.push(format!("wrote {}", groups.join("compare.md").display()));
            }
            Err(e) => lines.push(format!("compare by {col}: skipped: {e}")),
        }
    }
    Ok(lines)
}

/// Runs every analysis the design of `dir` supports; returns the lines to print (one per result,
/// one per skipped analysis with its reason).
pub fn run(dir: &Path, bootstrap: usize) -> Vec<String> {
    let data = match read(dir, &TableSpec::default()) {
        Ok(d) => d,
        Err(e) => return vec![format!("fit: skipped: {e}")],
    };
    let mut lines = fit_laws(&data, bootstrap, &dir.join("fit"), "fit");
    if lines.iter().any(|l| l.contains(": a = ")) {
        lines.push(format!(
            "wrote {}",
            dir.join("fit").join("fit.md").display()
        ));
    }
    let choices = match choices(dir) {
        Ok(c) => c,
        Err(e) => {
            lines.push(format!("analyses: skipped: {e}"));
            return lines;
        }
    };
    for c in choices {
        let result = match &c.analysis {
            Analysis::Law(_) => continue,
            Analysis::Emergence(x) => emergence_lines(dir, *x),
            Analysis::Groups(col) => group_lines(dir, col, bootstrap),
        };
        match result {
            Ok(l) => lines.extend(l),
            Err(e) => lines.push(format!("{}: skipped: {e}", c.analysis.name())),
        }
    }
    lines
}

/// Markdown lines for report.md: what ran and what the design could not support, and why.
pub fn markdown(dir: &Path) -> String {
    let Ok(choices) = choices(dir) else {
        return String::new();
    };
    let mut s = String::from("## Analyses the design supports\n\n");
    for c in &choices {
        let what = match &c.analysis {
            Analysis::Emergence(EmergenceX::Params) => "emergence (against N)".to_string(),
            Analysis::Emergence(EmergenceX::Compute) => "emergence (against compute)".to_string(),
            a => a.name(),
        };
        match &c.skipped {
            None => s.push_str(&format!("- {what}: run\n")),
            Some(why) => s.push_str(&format!("- {what}: skipped: {why}\n")),
        }
    }
    s.push('\n');
    s
}

//! `lab plot` and `lab report`.

use crate::error::{LabError, LabResult};
use crate::plot::canvas::Format;
use crate::plot::compare;
use crate::plot::frontier::{short_interval, Reference};
use crate::plot::source::Source;
use crate::plot::{plot_source, FigureKind, PlotOptions, PlotSummary};
use clap::Args;
use fit::report::Approach;
use std::path::{Path, PathBuf};

/// Arguments of `lab plot`.
#[derive(Args)]
#[command(after_help = "Examples:
  lab plot results/chinchilla                      every figure, PNG and SVG, in results/chinchilla/plots
  lab plot results/chinchilla --only frontier,isoflop --format png
  lab plot results/fit-chinchilla_epoch_svg_extracted     figures of a fit of a published table
  lab plot --compare results/dense results/moe --approach 3 --out results/dense-vs-moe

Figures: curves (loss vs compute per run, approach-1 envelope), isoflop (profiles and parabolas),
frontier (N_opt, D_opt, tokens/param with bands), approach3 (fit quality), kaplan (L(N), L(D), L(C)).
A figure whose inputs are missing (no fit yet, one budget only) is reported and not drawn.")]
pub struct PlotArgs {
    /// Results folders or fit.json files (two or more with --compare).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Overlay the frontiers of the inputs; the first is the baseline of the compute multipliers.
    #[arg(long)]
    pub compare: bool,
    /// Figures to draw, comma-separated (default: all).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Formats, comma-separated: png, svg.
    #[arg(long, value_delimiter = ',', default_value = "png,svg")]
    pub format: Vec<String>,
    /// Published laws drawn on frontiers: chinchilla, kaplan, or none.
    #[arg(long, value_delimiter = ',', default_value = "chinchilla,kaplan")]
    pub reference: Vec<String>,
    /// Approach compared with --compare (1, 2, 3, kaplan; default: the first of 3, 2, 1, kaplan
    /// fitted on every input).
    #[arg(long)]
    pub approach: Option<String>,
    /// Output folder (default: <input>/plots; with --compare, results/compare).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Arguments of `lab report`.
#[derive(Args)]
#[command(after_help = "Examples:
  lab report results/chinchilla        draws every figure and writes results/chinchilla/report.md
  lab report results/chinchilla --html  and report.html: one self-contained page, figures embedded

The report lists the runs, the compute-optimal exponents and predictions with bootstrap intervals,
the figures (PNG, linked relatively so it renders on GitHub) and the full fit tables.")]
pub struct ReportArgs {
    /// A results folder (or a folder/fit.json of a fitted table).
    pub input: PathBuf,
    /// Also write report.html: the report as one self-contained page, figures embedded.
    #[arg(long)]
    pub html: bool,
}

fn usage(message: String) -> LabError {
    LabError::input(Path::new("command line"), None, message)
}

fn parse_list<T>(
    values: &[String],
    what: &str,
    choices: &str,
    parse: fn(&str) -> Option<T>,
) -> LabResult<Vec<T>> {
    values
        .iter()
        .filter(|v| !v.trim().is_empty() && v.trim() != "none")
        .map(|v| parse(v).ok_or_else(|| usage(format!("unknown {what} '{v}' (one of {choices})"))))
        .collect()
}

fn print_summary(summary: &PlotSummary) {
    for (kind, files) in &summary.drawn {
        let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        println!("{:<10} {}", kind.name(), names.join(", "));
    }
    for (kind, why) in &summary.skipped {
        println!("{:<10} not drawn: {why}", kind.name());
    }
}

/// `lab plot`.
pub fn run_plot(a: PlotArgs) -> LabResult<i32> {
    let formats = parse_list(&a.format, "format", "png, svg", Format::parse)?;
    if formats.is_empty() {
        return Err(usage("--format needs png and/or svg".into()));
    }
    let references = parse_list(
        &a.reference,
        "reference",
        "chinchilla, kaplan, none",
        Reference::parse,
    )?;
    if a.compare {
        return run_compare(&a, &formats, &references);
    }
    if a.inputs.len() != 1 {
        return Err(usage(
            "plot takes one results folder (use --compare to overlay several)".into(),
        ));
    }
    let figures = if a.only.is_empty() {
        FigureKind::ALL.to_vec()
    } else {
        let names: Vec<&str> = FigureKind::ALL.iter().map(|k| k.name()).collect();
        parse_list(&a.only, "figure", &names.join(", "), FigureKind::parse)?
    };
    let src = Source::load(&a.inputs[0])?;
    let opts = PlotOptions {
        figures,
        formats,
        references,
        out: a.out.clone(),
    };
    let summary = plot_source(&src, &opts)?;
    print_summary(&summary);
    if summary.drawn.is_empty() {
        return Err(LabError::input(
            &a.inputs[0],
            None,
            "no figure could be drawn (reasons above)",
        ));
    }
    Ok(0)
}

fn run_compare(a: &PlotArgs, formats: &[Format], references: &[Reference]) -> LabResult<i32> {
    let approach = a
        .approach
        .as_deref()
        .map(|s| Approach::parse(s).ok_or_else(|| usage(format!("unknown approach '{s}'"))))
        .transpose()?;
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("results").join("compare"));
    let (cmp, files) = compare::write_comparison(&a.inputs, approach, references, &out, formats)?;
    for line in comparison_lines(&cmp) {
        println!("{line}");
    }
    for f in &files {
        println!("wrote {}", f.display());
    }
    Ok(0)
}

/// One line per variant: its exponent and compute multiplier against the baseline.
pub fn comparison_lines(cmp: &compare::Compare) -> Vec<String> {
    cmp.variants
        .iter()
        .map(|v| {
            let m = v.multiplier.map_or("-".into(), |m| format!("{m:.3}x"));
            let a = short_interval(&v.a);
            format!("{:<24} a = {a:<24} compute multiplier {m}", v.name)
        })
        .collect()
}

/// Draws every figure of `dir` and writes its report; used by `lab report` and at the end of a sweep.
pub fn plot_and_report(dir: &Path) -> LabResult<(PlotSummary, PathBuf)> {
    let src = Source::load(dir)?;
    let summary = plot_source(&src, &PlotOptions::default())?;
    let path = crate::report::write(&src, &summary)?;
    Ok((summary, path))
}

/// `lab report`.
pub fn run_report(a: ReportArgs) -> LabResult<i32> {
    let (summary, path) = plot_and_report(&a.input)?;
    print_summary(&summary);
    println!("wrote {}", path.display());
    if a.html {
        println!("wrote {}", crate::report_html::write(&path)?.display());
    }
    Ok(0)
}

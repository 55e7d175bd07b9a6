//! Figures of a results folder or a saved fit (plotters, PNG and SVG, embedded font) and the
//! comparison overlay of several fits.
//!
//! Every figure is built in two steps: `build` gathers its data from a [`Source`] or says why it
//! cannot be drawn (no fit yet, an approach that failed, a table without curves), then
//! [`canvas::render`] draws it. A figure that cannot be drawn is reported, never written empty.

pub mod branches;
pub mod canvas;
pub mod compare;
pub mod curves;
pub mod fitquality;
pub mod frontier;
pub mod isoflop;
pub mod kaplan;
pub mod lawfit;
pub mod raster;
pub mod source;
pub mod style;
pub mod tasks;
pub mod tasks_loss;

use crate::error::LabResult;
use canvas::{render, Figure, Format};
use frontier::Reference;
use source::Source;
use std::path::{Path, PathBuf};

/// The figures of one results folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FigureKind {
    /// Training curves with the approach-1 envelope.
    Curves,
    /// IsoFLOP profiles with the approach-2 parabolas.
    Isoflop,
    /// N_opt(C), D_opt(C), tokens/param from every approach.
    Frontier,
    /// Approach-3 predicted vs observed and residuals.
    Approach3,
    /// Kaplan's L(N), L(D), L(C_min).
    Kaplan,
    /// Task metrics against compute with detected jumps.
    Tasks,
    /// Task metrics against the loss, sizes tested for collapse.
    TasksLoss,
    /// Trunks and cooldown branches of a branched sweep.
    Branches,
}

impl FigureKind {
    /// Every figure, in report order.
    pub const ALL: [FigureKind; 8] = [
        FigureKind::Curves,
        FigureKind::Isoflop,
        FigureKind::Frontier,
        FigureKind::Approach3,
        FigureKind::Kaplan,
        FigureKind::Tasks,
        FigureKind::TasksLoss,
        FigureKind::Branches,
    ];

    /// File stem and `--only` name.
    pub fn name(self) -> &'static str {
        match self {
            FigureKind::Curves => "curves",
            FigureKind::Isoflop => "isoflop",
            FigureKind::Frontier => "frontier",
            FigureKind::Approach3 => "approach3",
            FigureKind::Kaplan => "kaplan",
            FigureKind::Tasks => "tasks",
            FigureKind::TasksLoss => "tasks-loss",
            FigureKind::Branches => "branches",
        }
    }

    /// Parses a name from [`FigureKind::name`].
    pub fn parse(s: &str) -> Option<FigureKind> {
        FigureKind::ALL
            .into_iter()
            .find(|k| k.name() == s.trim().to_ascii_lowercase())
    }

    /// What the figure shows, for reports.
    pub fn caption(self) -> &'static str {
        match self {
            FigureKind::Curves => "Training curves: validation loss against compute, one line per run coloured by model size, with the approach-1 envelope",
            FigureKind::Isoflop => "IsoFLOP profiles: final loss against model size per compute budget, with the fitted parabolas and their minima",
            FigureKind::Frontier => "Compute-optimal allocation from every fitted approach, with bootstrap bands",
            FigureKind::Approach3 => "Approach-3 fit quality: predicted against observed loss, and residuals against N and D",
            FigureKind::Kaplan => "Kaplan views: L(N), L(D) and L(C_min) with their power-law fits",
            FigureKind::Tasks => "Task metrics: exact match beside per-token and continuous metrics on the same outputs, with detected jumps and the mirage check",
            FigureKind::TasksLoss => "Task metrics against the loss (Du et al.): exact match at every evaluation of every run against the task's own loss, coloured by size, with the one curve fitted to every size",
            FigureKind::Branches => "WSD trunks (constant learning rate, dashed) and their cooldown branches (solid), each branch's final loss marked: the points the laws are fitted on",
        }
    }
}

/// What to draw and how.
#[derive(Debug, Clone)]
pub struct PlotOptions {
    /// Figures to draw.
    pub figures: Vec<FigureKind>,
    /// Output formats.
    pub formats: Vec<Format>,
    /// Published laws on the frontier.
    pub references: Vec<Reference>,
    /// Output folder (default `<results>/plots`).
    pub out: Option<PathBuf>,
}

impl Default for PlotOptions {
    fn default() -> Self {
        PlotOptions {
            figures: FigureKind::ALL.to_vec(),
            formats: vec![Format::Png, Format::Svg],
            references: vec![Reference::Chinchilla, Reference::Kaplan],
            out: None,
        }
    }
}

/// What a plotting pass produced.
#[derive(Debug, Default)]
pub struct PlotSummary {
    /// Figures drawn, with their files.
    pub drawn: Vec<(FigureKind, Vec<PathBuf>)>,
    /// Figures not drawn, with the reason.
    pub skipped: Vec<(FigureKind, String)>,
}

/// Draws a built figure into `out`, or records why it was not built; `Ok(None)`: the figure does
/// not apply to these results (nothing drawn, nothing reported).
fn draw_one<F: Figure>(
    built: Result<Option<F>, String>,
    kind: FigureKind,
    out: &Path,
    formats: &[Format],
    summary: &mut PlotSummary,
) -> LabResult<()> {
    match built {
        Ok(Some(fig)) => {
            let files = render(&fig, &out.join(kind.name()), formats)?;
            summary.drawn.push((kind, files));
        }
        Ok(None) => {}
        Err(why) => summary.skipped.push((kind, why)),
    }
    Ok(())
}

/// Draws the requested figures of `src` into its plots folder.
pub fn plot_source(src: &Source, opts: &PlotOptions) -> LabResult<PlotSummary> {
    let out = opts.out.clone().unwrap_or_else(|| src.dir.join("plots"));
    std::fs::create_dir_all(&out)?;
    let mut summary = PlotSummary::default();
    for &kind in &opts.figures {
        let f = &opts.formats;
        // Figures that apply to every results folder are built as Some; only sweeps with an
        // emergence analysis (tasks) and branched sweeps have the last two (None elsewhere: not
        // missing, they do not apply).
        // (One macro, not a closure: each figure is a different type.)
        macro_rules! draw {
            ($built:expr) => {
                draw_one($built, kind, &out, f, &mut summary)?
            };
        }
        match kind {
            FigureKind::Curves => draw!(curves::build(src).map(Some)),
            FigureKind::Isoflop => draw!(isoflop::build(src).map(Some)),
            FigureKind::Frontier => draw!(frontier::build(src, &opts.references).map(Some)),
            FigureKind::Approach3 => draw!(fitquality::build(src).map(Some)),
            FigureKind::Kaplan => draw!(kaplan::build(src).map(Some)),
            FigureKind::Tasks => draw!(tasks::build(src).map(Some)),
            FigureKind::TasksLoss => draw!(tasks_loss::build(src)),
            FigureKind::Branches => draw!(branches::build(src)),
        }
    }
    Ok(summary)
}

//! Running the fits on an input and writing `fit.json` and `fit.md`.

use crate::error::{LabError, LabResult};
use crate::results::write_atomic;
use crate::table::{FitData, InputInfo};
use anyhow::Context;
use fit::design::Design;
use fit::report::{fit_approach, Approach, ApproachReport, FitInput, FitOptions};
use fit::Estimate;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::Path;

/// The content of fit.json.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FitFile {
    /// lab version that wrote it.
    pub lab_version: String,
    /// What was read.
    pub input: InputInfo,
    /// Fit settings.
    pub options: FitOptions,
    /// One report per approach that succeeded.
    pub reports: Vec<ApproachReport>,
    /// Approaches that could not be fitted, with the reason.
    pub failed: Vec<(Approach, String)>,
    /// Wall seconds of all fits.
    pub seconds: f64,
    /// What the design of the runs can identify (distinct values, spreads, usable budgets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub design: Option<Design>,
    /// The corpus's known irreducible loss (lab's synthetic corpus), against which a fitted E is
    /// checked; absent for other data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_floor: Option<f64>,
    /// The scatter between seeds of one configuration, when the runs repeat some (pooled into
    /// their means before fitting).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed_noise: Option<fit::data::ReplicateNoise>,
}

/// How bootstrap replicates are drawn (`lab fit --intervals`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum IntervalKind {
    /// Keep the design; perturb each run's loss by the runs' measured noise.
    Noise,
    /// Draw points (runs for approach 1, points within budgets for approach 2) with replacement.
    Resample,
}

/// The noise model of the bootstrap: `None` resamples. By default lab results get the noise
/// bootstrap (their design is the sweep's choice, their noise measurable) and tables resampling.
/// The noise is `given`, else one run's scatter between seeds where the results repeat seeds,
/// else the scatter of ln L around approach 3's L(N, D) (`None`, resampling, when that law
/// cannot be fitted, with the reason in the returned note).
pub fn noise_model(
    data: &FitData,
    options: &FitOptions,
    kind: Option<IntervalKind>,
    given: Option<f64>,
) -> LabResult<(Option<fit::noise::NoiseModel>, Option<String>)> {
    use fit::noise::{residual_sd, NoiseModel, NoiseSource};
    let kind = kind.unwrap_or(match (&data.runs_per_point, given) {
        (Some(_), _) | (None, Some(_)) => IntervalKind::Noise,
        (None, None) => IntervalKind::Resample,
    });
    if kind == IntervalKind::Resample {
        return Ok((None, None));
    }
    let (sd, source) = if let Some(sd) = given {
        (sd, NoiseSource::Given)
    } else if let Some(seeds) = &data.seed_noise {
        (seeds.sd_ln_loss, NoiseSource::Seeds)
    } else {
        match residual_sd(&data.finals, &options.approach3) {
            Ok(sd) => (sd, NoiseSource::Residuals),
            Err(e) => {
                let why = format!(
                    "no noise to perturb by (approach 3's residual scatter: {e}); the intervals \
                     resample points instead"
                );
                return Ok((None, Some(why)));
            }
        }
    };
    // Only a given sd can be invalid: measured ones are finite and non-negative.
    let mut model = NoiseModel::new(sd, source)
        .map_err(|e| LabError::input(&data.info.path, None, format!("--noise-sd: {e}")))?;
    model.runs_per_point = data.runs_per_point.clone().unwrap_or_default();
    model.shared = data.noise_groups.clone();
    Ok((Some(model), None))
}

/// How fit.md names the bootstrap's draws.
fn intervals_line(options: &FitOptions) -> String {
    use fit::noise::NoiseSource;
    match &options.noise {
        None => "resampling points (runs for approach 1, points within each budget for approach 2)"
            .into(),
        Some(m) => format!(
            "fixed design, each run's loss perturbed by its noise (one run's sd of ln L {:.4}, {}){}",
            m.sd_ln_loss,
            match m.source {
                NoiseSource::Seeds => "the scatter between seeds",
                NoiseSource::Residuals => "the residual scatter around approach 3's L(N, D)",
                NoiseSource::Given => "given",
            },
            if m.has_shared_groups() {
                "; the branches of one trunk share one draw"
            } else {
                ""
            }
        ),
    }
}

/// Fits every requested approach; an approach that cannot be fitted is reported, not fatal, unless
/// none succeeds.
pub fn run_fits(
    data: &FitData,
    approaches: &[Approach],
    options: &FitOptions,
) -> LabResult<FitFile> {
    let start = std::time::Instant::now();
    let mut options = options.clone();
    options.known_floor = data.entropy_floor;
    let options = &options;
    let input = FitInput {
        finals: &data.finals,
        curves: data.curves.as_deref(),
    };
    let mut reports = Vec::new();
    let mut failed = Vec::new();
    for &a in approaches {
        match fit_approach(a, &input, options) {
            Ok(r) => reports.push(r),
            Err(e) => failed.push((a, e.to_string())),
        }
    }
    if reports.is_empty() {
        // One clause per reason, naming every approach it applies to.
        let mut reasons: Vec<(String, Vec<&str>)> = Vec::new();
        for (a, e) in &failed {
            let e = e.to_string();
            match reasons.iter_mut().find(|(w, _)| *w == e) {
                Some((_, names)) => names.push(a.name()),
                None => reasons.push((e, vec![a.name()])),
            }
        }
        let why: Vec<String> = reasons
            .iter()
            .map(|(e, names)| format!("{}: {e}", names.join(", ")))
            .collect();
        return Err(LabError::input(
            &data.info.path,
            None,
            format!("no fit succeeded: {}", why.join("; ")),
        ));
    }
    Ok(FitFile {
        lab_version: env!("CARGO_PKG_VERSION").into(),
        input: data.info.clone(),
        options: options.clone(),
        reports,
        failed,
        seconds: start.elapsed().as_secs_f64(),
        design: Some(Design::of(&data.finals, options.approach2.budget_ratio)),
        known_floor: data.entropy_floor,
        seed_noise: data.seed_noise,
    })
}

/// A number in compact scientific form.
pub fn sci(x: f64) -> String {
    if !x.is_finite() {
        return "-".into();
    }
    let a = x.abs();
    if a != 0.0 && !(1e-3..1e4).contains(&a) {
        format!("{x:.3e}")
    } else {
        format!("{x:.4}")
    }
}

/// An extrapolation error as "2.6% [1.6%, 3.7%] (max 12.5%)".
pub fn error_with_interval(e: &fit::extrapolate::ExtrapolationError) -> String {
    let m = &e.mean_abs_rel_error;
    format!(
        "{:.1}% [{:.1}%, {:.1}%] (max {:.1}%)",
        100.0 * m.value,
        100.0 * m.lo,
        100.0 * m.hi,
        100.0 * e.max_abs_rel_error
    )
}

/// "**Extrapolation** (fitted on 145 runs, predicting 37 with C >= ...): mean |error| 2.6% [...]
/// (max ...){extra}." as a markdown paragraph.
pub fn extrapolation_paragraph(x: &fit::extrapolate::ExtrapolationError, extra: &str) -> String {
    format!(
        "\n**Extrapolation** (fitted on {} runs, predicting {} with {}): mean |error| {}{extra}.",
        x.train_points,
        x.held_out_points,
        x.held_out,
        error_with_interval(x)
    )
}

/// "value [lo, hi]".
pub fn with_interval(e: &Estimate) -> String {
    if e.is_unbounded() {
        format!("{} [unbounded]", sci(e.value))
    } else if e.lo.is_finite() {
        format!("{} [{}, {}]", sci(e.value), sci(e.lo), sci(e.hi))
    } else {
        sci(e.value)
    }
}

/// Approach 1: which part of each training curve the envelope read, and how many runs lie on it.
fn envelope_line(r: &ApproachReport) -> Option<String> {
    let from = r.details.get("from_run_fraction")?.as_f64()?;
    let runs = r.details.get("runs_on_envelope")?.as_u64()?;
    let part = if from > 0.0 {
        format!(
            "each training curve from {:.0}% of its run's tokens on",
            100.0 * from
        )
    } else {
        "every point of each training curve".into()
    };
    Some(format!(
        "Envelope: {part}; {runs} runs lie on it (the smallest and largest sizes censored)."
    ))
}

/// The value E was held at in this report, if it was.
fn held_e(r: &ApproachReport) -> Option<f64> {
    r.details.get("fixed_e").and_then(|v| v.as_f64())
}

/// A fitted (not held) E with the known floor it should recover, when the input has one.
pub fn free_e_and_floor<'a>(f: &FitFile, r: &'a ApproachReport) -> Option<(&'a Estimate, f64)> {
    match (held_e(r), r.parameters.get("E"), f.known_floor) {
        (None, Some(e), Some(floor)) => Some((e, floor)),
        _ => None,
    }
}

/// One line on pooled seeds and their scatter.
pub fn seed_line(n: &fit::data::ReplicateNoise) -> String {
    format!(
        "Seeds: {} runs pooled into {} points ({} with two or more seeds, each point their mean \
         loss); one run's scatter between seeds: sd of ln L {:.4} (a mean of k seeds: sd / sqrt k).",
        n.runs, n.configurations, n.repeated, n.sd_ln_loss
    )
}

/// Markdown tables of a fit file.
pub fn markdown(f: &FitFile) -> String {
    let mut s = String::new();
    let level = f.options.level * 100.0;
    let _ = writeln!(s, "# Scaling-law fit\n");
    let _ =
        writeln!(
        s,
        "Input: `{}` ({} of {} rows used; fingerprint `{}`). N = {}, D = {}, C = {}, loss = {}. \
         Intervals: {level:.0}% bootstrap percentile, {} replicates, seed {}: {}.\n",
        f.input.path.display(),
        f.input.used,
        f.input.rows,
        f.input.fingerprint,
        f.input.columns.get("n").map(String::as_str).unwrap_or("?"),
        f.input.columns.get("d").map(String::as_str).unwrap_or("?"),
        f.input.columns.get("c").map(String::as_str).unwrap_or("?"),
        f.input.columns.get("loss").map(String::as_str).unwrap_or("?"),
        f.options.bootstrap,
        f.options.seed,
        intervals_line(&f.options),
    );
    if let Some(d) = &f.design {
        let _ = writeln!(s, "Design: {}.\n", d.summary());
    }
    if let Some(n) = &f.seed_noise {
        let _ = writeln!(s, "{}\n", seed_line(n));
    }
    for r in &f.reports {
        let _ = writeln!(s, "## {}\n", r.approach.name());
        let _ = writeln!(
            s,
            "Points: {}. Exponents: a = {} (N_opt ~ C^a), b = {} (D_opt ~ C^b).\n",
            r.points,
            with_interval(&r.a),
            with_interval(&r.b)
        );
        if let Some(line) = envelope_line(r) {
            let _ = writeln!(s, "{line}\n");
        }
        for p in &r.profiles {
            let _ = writeln!(
                s,
                "Profile interval of {} (least squares on ln L): {} [{}{:.4}, {:.4}{}]; the interval \
                 reported covers it and the bootstrap's.\n",
                p.held.name(),
                sci(p.estimate.value),
                if p.open_below { "open: " } else { "" },
                p.estimate.lo,
                p.estimate.hi,
                if p.open_above { " (open)" } else { "" },
            );
        }
        if r.bootstrap.degenerate > 0 {
            let _ = writeln!(
                s,
                "Bootstrap: {} of {} refits failed or were degenerate{}.\n",
                r.bootstrap.degenerate,
                r.bootstrap.requested,
                if r.bootstrap.unbounded {
                    ": intervals unbounded"
                } else {
                    ""
                }
            );
        }
        let _ = writeln!(s, "| parameter | value [{level:.0}% interval] |\n|---|---|");
        for (k, v) in &r.parameters {
            let _ = writeln!(s, "| {k} | {} |", with_interval(v));
        }
        if !r.predictions.is_empty() {
            let _ = writeln!(
                s,
                "\n| C (FLOPs) | N_opt | D_opt | tokens/param | loss |\n|---|---|---|---|---|"
            );
            for p in &r.predictions {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} |",
                    sci(p.c),
                    with_interval(&p.n_opt),
                    with_interval(&p.d_opt),
                    with_interval(&p.tokens_per_param),
                    with_interval(&p.loss)
                );
            }
        }
        if let Some(e) = held_e(r) {
            let _ = writeln!(
                s,
                "\nE held at {e:.4} (known irreducible loss); A, B, alpha, beta fitted."
            );
        } else if let Some((e, floor)) = free_e_and_floor(f, r) {
            let _ = writeln!(
                s,
                "\nE fitted free: {} against the corpus's known entropy floor {floor:.4} ({:+.4} nats).",
                with_interval(e),
                e.value - floor
            );
        }
        if let Some(res) = &r.residuals {
            let _ = writeln!(
                s,
                "\nResiduals of ln L: RMSE {:.4}, max |r| {:.4}.",
                res.rmse_log, res.max_abs_log
            );
        }
        if let Some(x) = &r.extrapolation {
            let _ = writeln!(
                s,
                "\nExtrapolation check: fitted on {} points below C = {}, predicting {} held-out points.",
                x.train_points,
                sci(x.threshold_c),
                x.held_out_points
            );
            if let Some(e) = &x.loss_error {
                let _ = writeln!(
                    s,
                    "Held-out loss error: mean |predicted/observed - 1| {}.",
                    error_with_interval(e)
                );
            } else if let Some(m) = x.loss_mape {
                let _ = writeln!(
                    s,
                    "Held-out loss error: mean {:.2}%, max {:.2}%.",
                    100.0 * m,
                    100.0 * x.loss_max_ape.unwrap_or(f64::NAN)
                );
            }
            for b in &x.budgets {
                let _ = writeln!(
                    s,
                    "- budget {}: N_opt predicted {} vs observed {} ({}; {:+.1}%), loss predicted {:.4} vs {:.4} ({:+.2}%)",
                    sci(b.c),
                    sci(b.predicted_n_opt),
                    sci(b.observed_n_opt),
                    b.observed_from,
                    100.0 * b.n_opt_rel_error,
                    b.predicted_loss,
                    b.observed_loss,
                    100.0 * b.loss_rel_error
                );
            }
            if let Some(h) = &r.extrapolation_at_floor {
                let loss = h
                    .check
                    .loss_error
                    .as_ref()
                    .map(error_with_interval)
                    .unwrap_or_else(|| "-".into());
                let optima: Vec<String> = h
                    .check
                    .budgets
                    .iter()
                    .map(|b| {
                        format!(
                            "at {}: N_opt {:+.1}%, the optimum's loss {:+.2}%",
                            sci(b.c),
                            100.0 * b.n_opt_rel_error,
                            100.0 * b.loss_rel_error
                        )
                    })
                    .collect();
                let _ = writeln!(
                    s,
                    "With E held at the known floor {:.4} (a few budgets may not pin E): held-out loss error {loss}; {}.",
                    h.floor,
                    optima.join("; ")
                );
            }
        }
        for w in &r.warnings {
            let _ = writeln!(s, "\n> warning: {w}");
        }
        let _ = writeln!(s);
    }
    for (a, why) in &f.failed {
        let _ = writeln!(s, "## {} (not fitted)\n\n{why}\n", a.name());
    }
    s
}

/// Writes fit.json and fit.md into `dir`.
pub fn write(dir: &Path, f: &FitFile) -> LabResult<()> {
    std::fs::create_dir_all(dir)?;
    write_atomic(
        &dir.join("fit.json"),
        &serde_json::to_vec_pretty(f).context("serialising fit.json")?,
    )?;
    write_atomic(&dir.join("fit.md"), markdown(f).as_bytes())?;
    Ok(())
}

//! `lab fit RESULTS --joint-moe`: Ludziejewski et al.'s joint law of dense and MoE models
//! (`fit::joint_moe`) on a lab results folder's dense and MoE runs (N: active parameters; E:
//! experts over active experts), with the efficiency leverage of each expansion. Writes
//! `<out>/joint_moe.{json,md}`.

use crate::error::{LabError, LabResult};
use crate::fitreport::{sci, with_interval};
use crate::plot::lawfit::{write_with_figure, LawFitFigure, LawPoint};
use crate::table::{read, NKind, TableSpec};
use fit::joint_moe::{self, JointMoeFit, MoeObs};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;

/// The content of joint_moe.json.
#[derive(Debug, Clone, Serialize)]
pub struct JointMoeFile {
    /// The results folder.
    pub input: String,
    /// The fit.
    pub fit: JointMoeFit,
    /// Fitted on the smaller runs, predicting the largest; `None` when those do not fit.
    pub extrapolation: Option<fit::extrapolate::ExtrapolationError>,
    /// The runs fitted (for the figure).
    #[serde(skip)]
    pub runs: Vec<MoeObs>,
}

/// The runs of each expansion: the dense ones (`ffn=dense`, E = 1) and each (n_experts, top_k)
/// of the MoE ones (E = n_experts / top_k), read with active parameters as N (seeds pooled as
/// `spec` says).
fn read_runs(dir: &Path, spec: &TableSpec) -> LabResult<Vec<MoeObs>> {
    if !dir.is_dir() {
        return Err(LabError::input(
            dir,
            None,
            "--joint-moe fits a lab results folder with dense and MoE runs (ffn, n_experts, top_k)",
        ));
    }
    let mut spec = spec.clone();
    spec.n_kind = NKind::Active;
    let mut runs = Vec::new();
    let mut add = |filters: &[String], e: f64| -> LabResult<()> {
        let mut s = spec.clone();
        s.filters.extend_from_slice(filters);
        let data = read(dir, &s)?;
        runs.extend(data.finals.iter().map(|o| MoeObs {
            n: o.n,
            d: o.d,
            e,
            loss: o.loss,
        }));
        Ok(())
    };
    add(&["ffn=dense".to_string()], 1.0)?;
    let runs_path = dir.join("runs.parquet");
    let df = crate::table::read_frame(&runs_path)?;
    let experts = crate::table::numbers(&df, "n_experts", &runs_path)?;
    let top_k = crate::table::numbers(&df, "top_k", &runs_path)?;
    let mut pairs: Vec<(u64, u64)> = experts
        .iter()
        .zip(&top_k)
        .filter_map(|(e, k)| Some((e.as_ref()?.round() as u64, k.as_ref()?.round() as u64)))
        .filter(|&(e, k)| k > 0 && e >= k)
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    for (e, k) in pairs {
        add(
            &[
                "ffn=moe".to_string(),
                format!("n_experts={e}"),
                format!("top_k={k}"),
            ],
            e as f64 / k as f64,
        )?;
    }
    Ok(runs)
}

/// Fits the law on the results at `dir`, with the leverage at each compute of `leverage_at`.
pub fn analyse(
    dir: &Path,
    spec: &TableSpec,
    leverage_at: &[f64],
    (bootstrap, seed, level): (usize, u64, f64),
) -> LabResult<JointMoeFile> {
    let runs = read_runs(dir, spec)?;
    let fit = joint_moe::fit(&runs, leverage_at, bootstrap, seed, level)
        .map_err(|e| LabError::input(dir, None, e.to_string()))?;
    Ok(JointMoeFile {
        input: dir.display().to_string(),
        fit,
        extrapolation: joint_moe::extrapolation(&runs, level).ok(),
        runs,
    })
}

/// The fit as markdown.
pub fn markdown(f: &JointMoeFile) -> String {
    let fit = &f.fit;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Joint MoE law (Ludziejewski et al. 2025)\n\nL = a E^delta N^(alpha + gamma ln E) + b E^omega D^(beta + zeta ln E) + c, N the active parameters, E the experts per active expert ({}). {} runs at expansions {:?}; RMSE of ln L {:.4}; {} bootstrap fits.\n\n| parameter | value |\n|---|---|",
        f.input, fit.points, fit.expansions, fit.rmse_log, fit.bootstrap_succeeded
    );
    for (name, e) in &fit.parameters {
        let _ = writeln!(s, "| {name} | {} |", with_interval(e));
    }
    if !fit.leverage.is_empty() {
        let _ = writeln!(
            s,
            "\nEfficiency leverage (the compute a compute-optimal dense model needs for the MoE's compute-optimal loss, over the MoE's compute):\n\n| E | C | leverage |\n|---|---|---|"
        );
        for (e, c, l) in &fit.leverage {
            let _ = writeln!(s, "| {e} | {} | {} |", sci(*c), with_interval(l));
        }
    }
    if let Some(x) = &f.extrapolation {
        let _ = writeln!(s, "{}", crate::fitreport::extrapolation_paragraph(x, ""));
    }
    s
}

/// Writes joint_moe.json, joint_moe.md and the fit-quality figure (.png, .svg) into `out`.
pub fn write(out: &Path, f: &JointMoeFile) -> LabResult<()> {
    let law = &f.fit.law;
    let figure = LawFitFigure {
        title: "Joint MoE law (Ludziejewski et al. 2025)".into(),
        x_label: "compute 6ND (FLOPs)".into(),
        points: f
            .runs
            .iter()
            .map(|p| LawPoint {
                n: p.n,
                x: 6.0 * p.n * p.d,
                predicted: law.loss(p.n, p.d, p.e),
                observed: p.loss,
            })
            .collect(),
        notes: vec![format!(
            "RMSE of ln L {:.4}; expansions {:?}.",
            f.fit.rmse_log, f.fit.expansions
        )],
    };
    write_with_figure(out, "joint_moe", (f, &markdown(f)), &figure)
}

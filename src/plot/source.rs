//! What a figure is drawn from: a lab results folder (runs, curves, fit) or a saved fit of any table.

use crate::error::{LabError, LabResult};
use crate::fitreport::FitFile;
use crate::table::{self, FitData, TableSpec};
use fit::report::{Approach, ApproachReport, FitOptions};
use std::path::{Path, PathBuf};

/// A results folder or fit file, loaded for plotting.
pub struct Source {
    /// Short name for titles and legends (the folder's name).
    pub name: String,
    /// Folder the figures are written under (`<dir>/plots`).
    pub dir: PathBuf,
    /// The saved fit, when there is one.
    pub fit: Option<FitFile>,
    /// The data the fit saw (finals and, for lab results, curves), or why it could not be read.
    pub data: Result<FitData, String>,
}

fn read_fit(path: &Path) -> LabResult<FitFile> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| LabError::input(path, None, format!("cannot read: {e}")))?;
    serde_json::from_str(&text)
        .map_err(|e| LabError::input(path, Some(e.line()), format!("not a lab fit.json: {e}")))
}

fn folder_name(dir: &Path) -> String {
    std::fs::canonicalize(dir)
        .unwrap_or_else(|_| dir.to_path_buf())
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "results".into())
}

impl Source {
    /// Loads a results folder (`runs.parquet`, optional `fit/fit.json`), a folder holding a
    /// `fit.json` (e.g. `results/fit-<table>`), or a `fit.json` file.
    pub fn load(path: &Path) -> LabResult<Source> {
        if !path.exists() {
            return Err(LabError::input(path, None, "no such file or folder"));
        }
        let is_json = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        if path.is_file() && !is_json {
            return Err(LabError::input(
                path,
                None,
                format!(
                    "expected a results folder or a fit.json; to plot a table, fit it first: \
                     `lab fit {}`",
                    path.display()
                ),
            ));
        }
        let (dir, fit_path) = if path.is_file() {
            let parent = path.parent().unwrap_or(Path::new(".")).to_path_buf();
            let dir = match parent.parent() {
                Some(g) if parent.ends_with("fit") && g.join("runs.parquet").exists() => {
                    g.to_path_buf()
                }
                _ => parent,
            };
            (dir, Some(path.to_path_buf()))
        } else {
            let candidates = [path.join("fit").join("fit.json"), path.join("fit.json")];
            let found = candidates.into_iter().find(|p| p.exists());
            (path.to_path_buf(), found)
        };
        let fit = fit_path.as_deref().map(read_fit).transpose()?;
        let spec = fit
            .as_ref()
            .map(|f| f.input.spec.clone())
            .unwrap_or_else(TableSpec::default);
        let data = if dir.join("runs.parquet").exists() {
            table::read(&dir, &spec).map_err(|e| e.to_string())
        } else if let Some(f) = &fit {
            table::read(&f.input.path, &spec).map_err(|e| {
                format!(
                    "the fitted table {} cannot be read: {e}",
                    f.input.path.display()
                )
            })
        } else {
            return Err(LabError::input(
                path,
                None,
                "neither a lab results folder (runs.parquet) nor a fit (fit.json): run `lab collect` or `lab fit` first",
            ));
        };
        Ok(Source {
            name: folder_name(&dir),
            dir,
            fit,
            data,
        })
    }

    /// The fit, or why there is none.
    pub fn fit(&self) -> Result<&FitFile, String> {
        self.fit.as_ref().ok_or_else(|| {
            let design = self.data.as_ref().ok().map(|d| {
                fit::design::Design::of(&d.finals, FitOptions::default().approach2.budget_ratio)
            });
            match design.and_then(|d| {
                Approach::ALL
                    .iter()
                    .all(|&a| d.refuses(a).is_some())
                    .then(|| d.refuses(Approach::Approach3))
                    .flatten()
            }) {
                Some(why) => format!("the design identifies no scaling law: {why}"),
                None => format!("no fit yet: run `lab fit {}` first", self.dir.display()),
            }
        })
    }

    /// One approach's report, or why it is missing.
    pub fn report(&self, approach: Approach) -> Result<&ApproachReport, String> {
        let f = self.fit()?;
        if let Some(r) = f.reports.iter().find(|r| r.approach == approach) {
            return Ok(r);
        }
        match f.failed.iter().find(|(a, _)| *a == approach) {
            Some((_, why)) => Err(format!("{} was not fitted: {why}", approach.name())),
            None => Err(format!(
                "{} was not part of the fit: run `lab fit {} --approach {}`",
                approach.name(),
                f.input.path.display(),
                approach.name().trim_start_matches("approach")
            )),
        }
    }

    /// The data, or why it could not be read.
    pub fn data(&self) -> Result<&FitData, String> {
        self.data.as_ref().map_err(Clone::clone)
    }

    /// The column (or kind) used as N, for axis labels.
    pub fn n_label(&self) -> String {
        match self.column("n").as_deref() {
            Some("params_nonembedding") => "parameters N (non-embedding)".into(),
            Some("params_total") => "parameters N (total)".into(),
            Some("params_active") => "parameters N (active)".into(),
            Some(c) => format!("parameters N ({c})"),
            None => "parameters N".into(),
        }
    }

    /// The compute column, for axis labels.
    pub fn c_label(&self) -> String {
        match self.column("c").as_deref() {
            Some(c) if c.contains("flops_per_token") => "compute C (FLOPs, exact)".into(),
            Some(c) if c.contains("6") => "compute C = 6ND (FLOPs)".into(),
            _ => "compute C (FLOPs)".into(),
        }
    }

    fn column(&self, key: &str) -> Option<String> {
        let info = match (&self.fit, &self.data) {
            (Some(f), _) => &f.input,
            (None, Ok(d)) => &d.info,
            (None, Err(_)) => return None,
        };
        info.columns.get(key).cloned()
    }
}

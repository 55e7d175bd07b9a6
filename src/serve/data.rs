//! What `lab serve` shows, read from a results root: the sweeps under it with their progress, a
//! sweep's runs, their curves, its fits and figures. Read-only: nothing here writes a file. Every
//! name a request gives is looked up among what a directory listing found, never joined to a path
//! as given, so no request can reach outside the root.

use crate::collect::{find_runs, run_ids, Counts, FoundRun};
use crate::error::LabResult;
use crate::results::Status;
use crate::table::{numbers, read_frame};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// A sweep's folder under the root (a folder holding `runs/`).
pub fn sweep_dirs(root: &Path) -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join("runs").is_dir())
        .filter_map(|p| Some((p.file_name()?.to_str()?.to_string(), p)))
        .collect();
    out.sort();
    out
}

/// The folder of the sweep called `name`, if the root has one.
pub fn find_sweep(root: &Path, name: &str) -> Option<PathBuf> {
    sweep_dirs(root)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, p)| p)
}

/// One sweep in the list: counts by status, progress and an ETA while it runs.
#[derive(Serialize)]
pub struct SweepSummary {
    /// Folder name.
    pub name: String,
    /// Runs in the plan (or found).
    pub runs: usize,
    /// Runs by status (failed counts the diverged too).
    #[serde(flatten)]
    pub counts: Counts,
    /// Fraction of the planned optimizer steps taken, weighted by each run's compute.
    pub progress: f64,
    /// "done"; "running" (a `lab sweep` holds the folder's lock, or a run says it is running, as
    /// Slurm tasks do); "stopped" (runs left and nobody running them: rerun the sweep to resume);
    /// "failed" (nothing left to run and some failed or diverged); or "pending" (nothing started).
    pub state: String,
    /// Seconds to go, from the elapsed time since plan.json was written and the progress (while
    /// running).
    pub eta_seconds: Option<f64>,
}

/// A run's row in the runs table.
#[derive(Serialize)]
pub struct RunRow {
    /// Run id.
    pub id: String,
    /// What the sweep axes set.
    pub label: String,
    /// Status ("pending" before a status file exists).
    pub status: String,
    /// Seed.
    pub seed: Option<u64>,
    /// isoFLOP budget.
    pub budget: Option<f64>,
    /// Non-embedding parameters.
    pub n: Option<f64>,
    /// Tokens trained so far.
    pub tokens: Option<f64>,
    /// Compute spent so far.
    pub compute: Option<f64>,
    /// Steps taken.
    pub step: Option<u64>,
    /// Steps planned.
    pub steps: Option<u64>,
    /// Learning rate.
    pub lr: Option<f64>,
    /// Final validation loss.
    pub loss: Option<f64>,
    /// Wall seconds trained.
    pub wall_seconds: Option<f64>,
}

fn status_name(r: &FoundRun) -> &'static str {
    r.status.as_ref().map_or("pending", |s| s.status.as_str())
}

/// The runs of a sweep as table rows.
pub fn runs(dir: &Path) -> LabResult<Vec<RunRow>> {
    Ok(find_runs(dir)?
        .iter()
        .map(|r| {
            let st = r.status.as_ref();
            RunRow {
                id: r.id.clone(),
                label: r.plan.as_ref().map(|p| p.label.clone()).unwrap_or_default(),
                status: status_name(r).to_string(),
                seed: r.cfg.as_ref().map(|c| c.train.seed),
                budget: r.plan.as_ref().and_then(|p| p.budget),
                n: st.map(|s| s.accounting.params_nonembedding as f64),
                tokens: st.map(|s| s.tokens as f64),
                compute: st.map(|s| s.compute),
                step: st.map(|s| s.step),
                steps: st.map(|s| s.steps),
                lr: r.cfg.as_ref().map(|c| c.train.lr),
                loss: st.and_then(|s| s.final_val_loss),
                wall_seconds: st.map(|s| s.wall_seconds),
            }
        })
        .collect())
}

/// A sweep's summary line.
pub fn summary(name: &str, dir: &Path) -> LabResult<SweepSummary> {
    let found = find_runs(dir)?;
    let counts = Counts::of(&found);
    // Progress weighted by compute: a run's planned compute is its compute so far per step times
    // its steps (before its first step, the mean of the runs that have one).
    let weights: Vec<(Option<f64>, f64)> = found
        .iter()
        .map(|r| match &r.status {
            Some(s) if s.steps > 0 => {
                let planned = (s.step > 0).then(|| s.compute * s.steps as f64 / s.step as f64);
                let frac = if s.status == Status::Done {
                    1.0
                } else {
                    s.step as f64 / s.steps as f64
                };
                (planned, frac)
            }
            _ => (None, 0.0),
        })
        .collect();
    let known: Vec<f64> = weights.iter().filter_map(|w| w.0).collect();
    let mean = if known.is_empty() {
        1.0
    } else {
        known.iter().sum::<f64>() / known.len() as f64
    };
    let (total, spent) = weights.iter().fold((0.0, 0.0), |(t, s), &(w, f)| {
        let w = w.unwrap_or(mean);
        (t + w, s + w * f)
    });
    let progress = if total > 0.0 { spent / total } else { 0.0 };
    let Counts {
        done,
        failed,
        running,
        pending,
    } = counts;
    let state = if !found.is_empty() && done == found.len() {
        "done"
    } else if running > 0 || sweep_holds_lock(dir) {
        "running"
    } else if pending > 0 && done + failed > 0 {
        "stopped"
    } else if pending == 0 && !found.is_empty() {
        "failed"
    } else {
        "pending"
    };
    let eta_seconds = (state == "running" && progress > 0.0)
        .then(|| {
            let started = std::fs::metadata(dir.join("plan.json"))
                .and_then(|m| m.modified())
                .ok()?;
            let elapsed = SystemTime::now()
                .duration_since(started)
                .ok()?
                .as_secs_f64();
            Some(elapsed * (1.0 - progress) / progress)
        })
        .flatten();
    Ok(SweepSummary {
        name: name.to_string(),
        runs: found.len(),
        counts,
        progress,
        state: state.to_string(),
        eta_seconds,
    })
}

/// Whether a `lab sweep` holds the results folder's lock (taken exclusively by the
/// executor): tested with a shared lock on a read-only handle, released at once, so nothing is
/// written.
fn sweep_holds_lock(dir: &Path) -> bool {
    use fs2::FileExt;
    match std::fs::File::open(dir.join(crate::sweep::executor::LOCK_FILE)) {
        Ok(f) => match f.try_lock_shared() {
            Ok(()) => {
                let _ = FileExt::unlock(&f);
                false
            }
            Err(_) => true,
        },
        Err(_) => false,
    }
}

/// A run's curve: the columns the chart draws.
#[derive(Serialize)]
pub struct Curve {
    /// Run id.
    pub id: String,
    /// Optimizer steps.
    pub step: Vec<Option<f64>>,
    /// Tokens.
    pub tokens: Vec<Option<f64>>,
    /// Compute.
    pub compute: Vec<Option<f64>>,
    /// Validation loss.
    pub val_loss: Vec<Option<f64>>,
    /// Training loss.
    pub train_loss: Vec<Option<f64>>,
}

/// The curves of the runs `ids` of the sweep in `dir` (ids that are not its runs are skipped).
pub fn curves(dir: &Path, ids: &[&str]) -> LabResult<Vec<Curve>> {
    let known: Vec<String> = run_ids(dir)?.into_iter().map(|(id, _)| id).collect();
    let mut out = Vec::new();
    for id in ids {
        let Some(id) = known.iter().find(|k| k == id) else {
            continue;
        };
        let path = dir.join("runs").join(id).join("curve.parquet");
        if !path.exists() {
            continue;
        }
        let df = read_frame(&path)?;
        out.push(Curve {
            id: id.clone(),
            step: numbers(&df, "step", &path)?,
            tokens: numbers(&df, "tokens", &path)?,
            compute: numbers(&df, "compute", &path)?,
            val_loss: numbers(&df, "val_loss", &path)?,
            train_loss: numbers(&df, "train_loss", &path)?,
        });
    }
    Ok(out)
}

/// The figures of a sweep: file names in plots/ ending in .png or .svg, sorted.
pub fn figures(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir.join("plots"))
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter(|n| n.ends_with(".png") || n.ends_with(".svg"))
        .collect();
    out.sort();
    out
}

/// The sweep's fits as HTML, if it has any: the comparison of its groups first when it has one
/// (fit/groups/compare.md, its figure inlined), then fit/fit.md, then the emergence analysis
/// (fit/emergence.md).
pub fn fit_html(dir: &Path) -> Option<String> {
    let fit = dir.join("fit");
    let groups = fit.join("groups");
    let parts: Vec<String> = [
        (groups.join("compare.md"), groups.clone()),
        (fit.join("fit.md"), fit.clone()),
        (fit.join("emergence.md"), fit.clone()),
    ]
    .iter()
    .filter_map(|(md, base)| {
        let text = std::fs::read_to_string(md).ok()?;
        crate::report_html::body_with_figures(&text, base).ok()
    })
    .collect();
    (!parts.is_empty()).then(|| parts.concat())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fit_view_puts_the_group_comparison_first_with_its_figure_inlined() {
        let dir = tempfile::tempdir().unwrap();
        assert!(fit_html(dir.path()).is_none());
        std::fs::create_dir_all(dir.path().join("fit")).unwrap();
        std::fs::write(dir.path().join("fit/emergence.md"), "# Emergence\n").unwrap();
        assert!(fit_html(dir.path()).unwrap().contains("Emergence"));
        std::fs::remove_file(dir.path().join("fit/emergence.md")).unwrap();
        std::fs::create_dir_all(dir.path().join("fit/groups")).unwrap();
        std::fs::write(
            dir.path().join("fit/fit.md"),
            "# Scaling-law fit\n\n| a |\n|---|\n| 1 |\n",
        )
        .unwrap();
        let html = fit_html(dir.path()).unwrap();
        assert!(html.contains("Scaling-law fit") && !html.contains("compare"));
        std::fs::write(
            dir.path().join("fit/groups/compare.png"),
            [137u8, 80, 78, 71],
        )
        .unwrap();
        std::fs::write(
            dir.path().join("fit/groups/compare.md"),
            "# x vs y (approach3)\n\n![comparison](compare.png)\n",
        )
        .unwrap();
        let html = fit_html(dir.path()).unwrap();
        let (cmp, fit) = (
            html.find("x vs y").unwrap(),
            html.find("Scaling-law fit").unwrap(),
        );
        assert!(cmp < fit);
        assert!(
            html.contains("src=\"data:image/png;base64,iVBORw==\""),
            "{html}"
        );
    }
}

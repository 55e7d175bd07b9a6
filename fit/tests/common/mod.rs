//! Helpers shared by the fit crate's integration tests (each test binary uses part of them).
#![allow(dead_code)]

use fit::approach3::ChinchillaLaw;
use fit::Obs;
use std::path::PathBuf;

/// The known law the synthetic tests draw their points from.
pub const TRUTH: ChinchillaLaw = ChinchillaLaw {
    e: 1.8,
    a: 480.0,
    b: 2100.0,
    alpha: 0.35,
    beta: 0.37,
};

/// The shared public-scaling-runs folder, when it is present (it is not on a user's machine).
pub fn shared_data(file: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("LAB_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/public-scaling-runs")
        });
    let path = dir.join(file);
    if path.exists() {
        Some(path)
    } else {
        eprintln!(
            "SKIPPED: {} not found (set LAB_SHARED_DATA to the public-scaling-runs folder)",
            path.display()
        );
        None
    }
}

/// The Epoch AI extraction of Chinchilla's points, less the 5 highest losses, with D = C / (6N).
pub fn epoch_points() -> Option<Vec<Obs>> {
    let text = std::fs::read_to_string(shared_data("chinchilla_epoch_svg_extracted.csv")?).unwrap();
    let pts = fit::data::points_from_csv(&text, "Model Size", "Training FLOP", "loss").unwrap();
    assert_eq!(pts.len(), 245);
    Some(fit::data::drop_highest_loss(pts, 5))
}

/// The columns `names` of a CSV file's rows (every value a number).
pub fn csv_columns(path: &std::path::Path, names: &[&str]) -> Vec<Vec<f64>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let at: Vec<usize> = names
        .iter()
        .map(|n| header.iter().position(|h| h == n).unwrap())
        .collect();
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            at.iter().map(|&i| f[i].trim().parse().unwrap()).collect()
        })
        .collect()
}

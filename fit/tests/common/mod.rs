//! Helpers shared by the fit crate's integration tests.

use fit::Obs;
use std::path::PathBuf;

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
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (n, c, l) = (col("Model Size"), col("Training FLOP"), col("loss"));
    let mut pts: Vec<Obs> = lines
        .filter(|s| !s.is_empty())
        .map(|s| {
            let f: Vec<&str> = s.split(',').collect();
            Obs::from_n_c(
                f[n].parse().unwrap(),
                f[c].parse().unwrap(),
                f[l].parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(pts.len(), 245);
    pts.sort_by(|a, b| a.loss.total_cmp(&b.loss));
    pts.truncate(240);
    for (i, p) in pts.iter_mut().enumerate() {
        p.run = i as u32;
    }
    Some(pts)
}

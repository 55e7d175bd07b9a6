//! Helpers for tests that drive the `lab` binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `lab` binary: Cargo's build of it, or `LAB_BIN` where the test binaries were carried to
/// another machine (scripts/gpu-check.sh).
pub fn lab_bin() -> PathBuf {
    std::env::var_os("LAB_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_lab")))
}

/// Runs `lab` with `args` in `dir`.
pub fn lab(dir: &Path, args: &[&str]) -> Output {
    Command::new(lab_bin())
        .args(args)
        .current_dir(dir)
        .output()
        .expect("lab runs")
}

/// stderr + stdout as text.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    )
}

/// A tiny run config on the synthetic corpus.
pub fn tiny_run(tokens: u64, extra_train: &str) -> String {
    format!(
        "name: tiny\nmodel:\n  n_layer: 2\n  d_model: 64\n  n_head: 4\n  vocab: 64\n  seq_len: 32\n\
         data:\n  source: synthetic\ntrain:\n  tokens: {tokens}\n  batch_size: 8\n  lr: 0.003\n{extra_train}"
    )
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Reads a run's status.json.
pub fn status(run_dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(run_dir.join("status.json")).unwrap()).unwrap()
}

/// Reads a Parquet file.
pub fn frame(path: &Path) -> polars::prelude::DataFrame {
    use polars::prelude::SerReader;
    polars::prelude::ParquetReader::new(std::fs::File::open(path).unwrap())
        .finish()
        .unwrap()
}

/// A numeric column of a Parquet frame as f64, nulls as None.
pub fn float_column(df: &polars::prelude::DataFrame, name: &str) -> Vec<Option<f64>> {
    use polars::prelude::DataType;
    df.column(name)
        .unwrap()
        .cast(&DataType::Float64)
        .unwrap()
        .f64()
        .unwrap()
        .iter()
        .collect()
}

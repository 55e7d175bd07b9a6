//! Reading fit inputs: a lab results folder (runs.parquet, curves.parquet) or any CSV/Parquet table,
//! with column mapping, row filters and the choice of N and C.

use crate::error::{LabError, LabResult};
use fit::Obs;
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Which parameter count is N.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum NKind {
    /// Every parameter.
    Total,
    /// Non-embedding parameters (Kaplan's N).
    Nonembedding,
    /// Parameters touched per token (MoE).
    Active,
}

impl NKind {
    /// The runs.parquet column that holds this N.
    pub fn column(self) -> &'static str {
        match self {
            NKind::Total => "params_total",
            NKind::Nonembedding => "params_nonembedding",
            NKind::Active => "params_active",
        }
    }
}

/// Which compute is C.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum CKind {
    /// The exact FLOPs recorded (or the table's C column).
    Exact,
    /// 6 N D.
    #[value(name = "6nd")]
    #[serde(rename = "6nd")]
    SixNd,
}

/// How to read a table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableSpec {
    /// Column of N (auto-detected when absent).
    pub n: Option<String>,
    /// Column of D (derived as C / (6N) when absent).
    pub d: Option<String>,
    /// Column of C (derived as 6ND when absent).
    pub c: Option<String>,
    /// Column of the loss.
    pub loss: Option<String>,
    /// Filters `col=value`, `col!=value`, `col<value`, `col>value`.
    pub filters: Vec<String>,
    /// Drop the k highest-loss points.
    pub drop_highest: usize,
    /// N for lab results.
    pub n_kind: NKind,
    /// C for lab results and tables.
    pub c_kind: CKind,
    /// lab results: pool the runs that repeat one configuration with different seeds into their
    /// mean (one point per configuration), instead of fitting each seed's run as its own point.
    #[serde(default = "pool_seeds_default")]
    pub pool_seeds: bool,
}

fn pool_seeds_default() -> bool {
    true
}

impl Default for TableSpec {
    /// lab results as the sweep fits them: non-embedding N, exact compute, every run.
    fn default() -> Self {
        TableSpec {
            n: None,
            d: None,
            c: None,
            loss: None,
            filters: Vec::new(),
            drop_highest: 0,
            n_kind: NKind::Nonembedding,
            c_kind: CKind::Exact,
            pool_seeds: true,
        }
    }
}

/// What was read, and how.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InputInfo {
    /// The file or folder.
    pub path: PathBuf,
    /// SHA-256 of the file(s) read.
    pub fingerprint: String,
    /// Rows in the table.
    pub rows: usize,
    /// Rows used after filters and drops.
    pub used: usize,
    /// The columns used for N, D, C, loss ("derived: ..." when computed).
    pub columns: HashMap<String, String>,
    /// The reading settings.
    pub spec: TableSpec,
}

/// Points to fit: one per run, plus curves for approach 1 when available.
pub struct FitData {
    /// Final point of each run.
    pub finals: Vec<Obs>,
    /// Training curves.
    pub curves: Option<Vec<Obs>>,
    /// The corpus's entropy rate when every run records the same one (lab's synthetic corpus).
    pub entropy_floor: Option<f64>,
    /// The scatter between seeds of one configuration, when lab results repeat some.
    pub seed_noise: Option<fit::data::ReplicateNoise>,
    /// Runs averaged into each point (by its `run` id) on lab results; `None` for tables, whose
    /// design and noise lab does not know.
    pub runs_per_point: Option<Vec<usize>>,
    /// Each point's noise group by its `run` id (the branches of one WSD trunk share one; see
    /// `fit::noise::NoiseModel::shared`); empty when no points share a trunk.
    pub noise_groups: Vec<u32>,
    /// Provenance.
    pub info: InputInfo,
}

/// Columns of runs.parquet that do not describe a run's configuration: its name, the sweep's name,
/// seed, trunk (a per-seed run) and results.
const NOT_CONFIGURATION: &[&str] = &[
    "id",
    "sweep",
    "seed",
    "trunk",
    "config_hash",
    "status",
    "final_train_loss",
    "final_val_loss",
    "best_val_loss",
    "wall_seconds",
    "tokens_per_second",
    "backend",
    "device",
    "lab_version",
];

/// The configuration of each of `rows`, as an index: rows equal in every configuration column share
/// one. A group in which a seed repeats differs in something runs.parquet does not record (a grid
/// axis outside its columns), so it is split into its rows rather than pooled.
fn seed_configurations(runs: &DataFrame, rows: &[usize]) -> Vec<usize> {
    let columns: Vec<&Column> = runs
        .columns()
        .iter()
        .filter(|c| !NOT_CONFIGURATION.contains(&c.name().as_str()))
        .collect();
    let seed = runs.column("seed").ok();
    let key = |i: usize| -> String {
        columns
            .iter()
            .map(|c| c.get(i).map(|v| v.to_string()).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\u{1f}")
    };
    let keys: Vec<String> = rows.iter().map(|&i| key(i)).collect();
    let mut groups: HashMap<&str, Vec<usize>> = HashMap::new();
    for (k, &i) in keys.iter().zip(rows) {
        groups.entry(k).or_default().push(i);
    }
    let seed_of = |i: usize| seed.and_then(|c| c.get(i).ok()).map(|v| v.to_string());
    // Configurations whose runs all have distinct seeds get an index past the row positions.
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (k, members) in &groups {
        let mut seeds: Vec<Option<String>> = members.iter().map(|&i| seed_of(i)).collect();
        seeds.sort();
        seeds.dedup();
        if seeds.len() == members.len() && seeds.iter().all(Option::is_some) {
            index.insert(k, rows.len() + index.len());
        }
    }
    keys.iter()
        .enumerate()
        .map(|(r, k)| index.get(k.as_str()).copied().unwrap_or(r))
        .collect()
}

pub(crate) fn read_frame(path: &Path) -> LabResult<DataFrame> {
    let bad = |m: String| LabError::input(path, None, m);
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "csv" => {
            let read = |infer: usize| {
                CsvReadOptions::default()
                    .with_has_header(true)
                    .with_infer_schema_length(Some(infer))
                    .try_into_reader_with_file_path(Some(path.to_path_buf()))
                    .and_then(|r| r.finish())
            };
            // Typed columns where polars can infer them; otherwise (an integer beyond i64, say
            // 1e19 FLOPs written out) every column as text, which `numbers` parses as f64.
            read(10_000)
                .or_else(|_| read(0))
                .map_err(|e| bad(format!("cannot read CSV: {e}")))
        }
        "parquet" => {
            let f = std::fs::File::open(path).map_err(|e| bad(format!("cannot open: {e}")))?;
            ParquetReader::new(f)
                .finish()
                .map_err(|e| bad(format!("cannot read Parquet: {e}")))
        }
        _ => Err(bad(
            "expected a .csv or .parquet table, or a lab results folder with runs.parquet".into(),
        )),
    }
}

fn fingerprint(paths: &[PathBuf]) -> LabResult<String> {
    let mut h = Sha256::new();
    for p in paths {
        h.update(std::fs::read(p)?);
    }
    Ok(h.finalize()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// A column as text (numbers formatted; nulls as empty strings).
pub(crate) fn strings(df: &DataFrame, col: &str, path: &Path) -> LabResult<Vec<String>> {
    Ok(texts(df, col, path)?
        .into_iter()
        .map(Option::unwrap_or_default)
        .collect())
}

/// A numeric column as f64 values.
pub(crate) fn numbers(df: &DataFrame, name: &str, path: &Path) -> LabResult<Vec<Option<f64>>> {
    let col = df.column(name).map_err(|_| {
        LabError::input(
            path,
            None,
            format!(
                "no column '{name}'; columns are: {}",
                column_names(df).join(", ")
            ),
        )
    })?;
    if col.dtype() == &DataType::String {
        // Text that is a number once trimmed ("3.03 "): parsed here, and anything else named by
        // its line (a CSV's header is line 1).
        let strs = col
            .str()
            .map_err(|e| LabError::input(path, None, format!("column '{name}': {e}")))?;
        return strs
            .iter()
            .enumerate()
            .map(|(i, v)| match v.map(str::trim).filter(|v| !v.is_empty()) {
                None => Ok(None),
                Some(v) => v.parse::<f64>().map(Some).map_err(|_| {
                    LabError::input(
                        path,
                        Some(i + 2),
                        format!("row {}: '{v}' in column '{name}' is not a number", i + 1),
                    )
                }),
            })
            .collect();
    }
    let cast = col
        .cast(&DataType::Float64)
        .map_err(|e| LabError::input(path, None, format!("column '{name}' is not numeric: {e}")))?;
    Ok(cast
        .f64()
        .map_err(|e| LabError::input(path, None, format!("column '{name}': {e}")))?
        .iter()
        .collect())
}

/// A column as text (any type, cast), with nulls as None.
pub(crate) fn texts(df: &DataFrame, name: &str, path: &Path) -> LabResult<Vec<Option<String>>> {
    let col = df
        .column(name)
        .map_err(|_| LabError::input(path, None, format!("no column '{name}'")))?;
    let cast = col
        .cast(&DataType::String)
        .map_err(|e| LabError::input(path, None, format!("column '{name}': {e}")))?;
    Ok(cast
        .str()
        .map_err(|e| LabError::input(path, None, format!("column '{name}': {e}")))?
        .iter()
        .map(|v| v.map(str::to_owned))
        .collect())
}

fn column_names(df: &DataFrame) -> Vec<String> {
    df.get_column_names()
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn find_column(df: &DataFrame, given: &Option<String>, candidates: &[&str]) -> Option<String> {
    if let Some(g) = given {
        return Some(g.clone());
    }
    let names = column_names(df);
    candidates
        .iter()
        .find(|c| names.iter().any(|n| n == *c))
        .map(|c| c.to_string())
}

/// Like [`find_column`], but a missing column is an input error that lists the columns.
fn require_column(
    df: &DataFrame,
    given: &Option<String>,
    candidates: &[&str],
    what: &str,
    path: &Path,
) -> LabResult<String> {
    find_column(df, given, candidates).ok_or_else(|| {
        LabError::input(
            path,
            None,
            format!(
                "no {what} column: pass --{} (columns: {})",
                what.to_lowercase(),
                column_names(df).join(", ")
            ),
        )
    })
}

/// The rows of a results folder's runs.parquet that fits use: done runs, less a branched sweep's
/// trunks (they end at constant LR, mid-training: their branches are the points), that also pass
/// `filters`.
pub(crate) fn done_runs_mask(
    df: &DataFrame,
    filters: &[String],
    path: &Path,
) -> LabResult<Vec<bool>> {
    let mut all = vec!["status=done".to_string()];
    if df.column("role").is_ok() {
        all.push("role!=trunk".to_string());
    }
    all.extend(filters.iter().cloned());
    filter_mask(df, &all, path)
}

/// Row mask from `col op value` filters.
pub(crate) fn filter_mask(df: &DataFrame, filters: &[String], path: &Path) -> LabResult<Vec<bool>> {
    let mut mask = vec![true; df.height()];
    for f in filters {
        let (col, op, value) = ["!=", "<=", ">=", "=", "<", ">"]
            .iter()
            .find_map(|op| f.split_once(op).map(|(c, v)| (c.trim(), *op, v.trim())))
            .ok_or_else(|| {
                LabError::input(
                    "--filter",
                    None,
                    format!("'{f}': expected col=value, col!=value, col<value or col>value"),
                )
            })?;
        let column = df.column(col).map_err(|_| {
            LabError::input(
                path,
                None,
                format!(
                    "--filter {f}: no column '{col}'; columns are: {}",
                    column_names(df).join(", ")
                ),
            )
        })?;
        let as_str = column
            .cast(&DataType::String)
            .map_err(|e| LabError::input(path, None, e.to_string()))?;
        let strs: Vec<Option<String>> = as_str
            .str()
            .expect("string column")
            .iter()
            .map(|s| s.map(str::to_owned))
            .collect();
        let num: Option<f64> = value.parse().ok();
        // `col=null` / `col!=null` select missing values (e.g. the granularity of dense runs).
        if value == "null" && matches!(op, "=" | "!=") {
            for (i, s) in strs.iter().enumerate() {
                mask[i] &= s.is_none() == (op == "=");
            }
            continue;
        }
        for (i, s) in strs.iter().enumerate() {
            let x = s.as_deref().and_then(|s| s.parse::<f64>().ok());
            let keep = match (op, x, num) {
                ("=", Some(a), Some(b)) => a == b,
                ("!=", Some(a), Some(b)) => a != b,
                ("=", _, _) => s.as_deref() == Some(value),
                ("!=", _, _) => s.as_deref() != Some(value),
                ("<", Some(a), Some(b)) => a < b,
                (">", Some(a), Some(b)) => a > b,
                ("<=", Some(a), Some(b)) => a <= b,
                (">=", Some(a), Some(b)) => a >= b,
                _ => false,
            };
            mask[i] &= keep;
        }
    }
    Ok(mask)
}

/// Reads a generic table.
fn read_table(path: &Path, spec: &TableSpec) -> LabResult<FitData> {
    let df = read_frame(path)?;
    let n_col = find_column(
        &df,
        &spec.n,
        &[
            "N",
            "n",
            "params",
            "param_count",
            "Model Size",
            "parameters",
            "params_total",
        ],
    );
    let loss_col = require_column(
        &df,
        &spec.loss,
        &[
            "loss",
            "final_val_loss",
            "validation_loss",
            "val_loss",
            "Loss",
        ],
        "loss",
        path,
    )?;
    let d_col = find_column(
        &df,
        &spec.d,
        &["D", "d", "tokens", "training_tokens", "Tokens"],
    );
    let c_col = find_column(
        &df,
        &spec.c,
        &[
            "C",
            "c",
            "compute",
            "flops",
            "FLOPs",
            "Training FLOP",
            "compute_budget",
        ],
    );
    if d_col.is_none() && c_col.is_none() {
        return Err(LabError::input(
            path,
            None,
            format!(
                "need a D or a C column: pass --d or --c (columns: {})",
                column_names(&df).join(", ")
            ),
        ));
    }
    let loss = numbers(&df, &loss_col, path)?;
    let d = d_col.as_ref().map(|c| numbers(&df, c, path)).transpose()?;
    let c = c_col.as_ref().map(|c| numbers(&df, c, path)).transpose()?;
    // Without an N column, N = C / (6 D) (an isoFLOP table of budgets and tokens, like Llama 3's).
    let n = match (&n_col, &d, &c) {
        (Some(col), _, _) => numbers(&df, col, path)?,
        (None, Some(d), Some(c)) => d
            .iter()
            .zip(c)
            .map(|(d, c)| Some(c.as_ref()? / (6.0 * d.as_ref()?)))
            .collect(),
        _ => {
            return Err(LabError::input(
                path,
                None,
                format!(
                "no N column: pass --n, or give both a D and a C column to derive N = C / (6 D) \
                     (columns: {})",
                column_names(&df).join(", ")
            ),
            ))
        }
    };
    let mask = filter_mask(&df, &spec.filters, path)?;
    let mut finals = Vec::new();
    for i in 0..df.height() {
        if !mask[i] {
            continue;
        }
        let (Some(ni), Some(li)) = (n[i], loss[i]) else {
            return Err(LabError::input(
                path,
                Some(i + 2),
                format!("row {}: empty N or loss", i + 1),
            ));
        };
        let di = d.as_ref().and_then(|d| d[i]);
        let ci = if spec.c_kind == CKind::SixNd {
            None
        } else {
            c.as_ref().and_then(|c| c[i])
        };
        let (di, ci) = match (di, ci) {
            (Some(d), Some(c)) => (d, c),
            (Some(d), None) => (d, 6.0 * ni * d),
            (None, Some(c)) => (c / (6.0 * ni), c),
            (None, None) => {
                let cc = c.as_ref().and_then(|c| c[i]);
                match cc {
                    Some(cv) => (cv / (6.0 * ni), cv),
                    None => {
                        return Err(LabError::input(
                            path,
                            Some(i + 2),
                            format!("row {}: empty D and C", i + 1),
                        ))
                    }
                }
            }
        };
        finals.push(Obs {
            n: ni,
            d: di,
            c: ci,
            loss: li,
            run: i as u32,
        });
    }
    let rows = df.height();
    let finals = fit::data::drop_highest_loss(finals, spec.drop_highest);
    let mut columns = HashMap::new();
    columns.insert(
        "n".into(),
        n_col.unwrap_or_else(|| "derived: C / (6 D)".into()),
    );
    columns.insert("loss".into(), loss_col);
    columns.insert(
        "d".into(),
        d_col.unwrap_or_else(|| "derived: C / (6 N)".into()),
    );
    columns.insert(
        "c".into(),
        if spec.c_kind == CKind::SixNd {
            "derived: 6 N D".into()
        } else {
            c_col.unwrap_or_else(|| "derived: 6 N D".into())
        },
    );
    let info = InputInfo {
        path: path.to_path_buf(),
        fingerprint: fingerprint(&[path.to_path_buf()])?,
        rows,
        used: finals.len(),
        columns,
        spec: spec.clone(),
    };
    Ok(FitData {
        finals,
        curves: None,
        entropy_floor: None,
        seed_noise: None,
        runs_per_point: None,
        noise_groups: Vec::new(),
        info,
    })
}

/// The first run of each pooled point, points numbered as `fit::data::pool_replicates` numbers
/// them (configurations in order of their first run).
fn first_run_of_each_point(config: &[usize]) -> Vec<usize> {
    let mut seen = std::collections::HashSet::new();
    (0..config.len())
        .filter(|&r| seen.insert(config[r]))
        .collect()
}

/// Noise groups of the points: the points whose first runs are branches of one trunk share a group
/// (pooled seeds pool the branches of each seed's trunk alike); every other point has its own.
/// Empty when no two points share a trunk.
fn noise_groups(first_run: &[usize], trunk_of_run: &[Option<String>]) -> Vec<u32> {
    let mut index: HashMap<&str, u32> = HashMap::new();
    let mut branches = 0;
    let groups: Vec<u32> = first_run
        .iter()
        .enumerate()
        .map(
            |(point, &r)| match trunk_of_run.get(r).and_then(Option::as_deref) {
                Some(t) => {
                    branches += 1;
                    let next = (first_run.len() + index.len()) as u32;
                    *index.entry(t).or_insert(next)
                }
                None => point as u32,
            },
        )
        .collect();
    // Some trunk has two or more of the points exactly when there are fewer trunks than branches.
    if index.len() < branches {
        groups
    } else {
        Vec::new()
    }
}

/// Reads a lab results folder (runs.parquet, and curves.parquet when present).
fn read_results(dir: &Path, spec: &TableSpec) -> LabResult<FitData> {
    let runs_path = dir.join("runs.parquet");
    let runs = read_frame(&runs_path)?;
    let n_col = spec.n_kind.column();
    let n = numbers(&runs, n_col, &runs_path)?;
    // D is the tokens seen, or (`--d loss_tokens`) the loss-bearing ones, e.g. to compare a prefix
    // decoder per target token; C is always the compute spent.
    let d_col = spec.d.as_deref().unwrap_or("tokens");
    if !matches!(d_col, "tokens" | "loss_tokens") {
        return Err(LabError::input(
            &runs_path,
            None,
            format!("--d {d_col}: on lab results D is `tokens` or `loss_tokens`"),
        ));
    }
    let seen = numbers(&runs, "tokens", &runs_path)?;
    let d = numbers(&runs, d_col, &runs_path)?;
    let fpt = numbers(&runs, "flops_per_token", &runs_path)?;
    let loss = numbers(&runs, "final_val_loss", &runs_path)?;
    let floors = numbers(&runs, "entropy_floor", &runs_path)?;
    let ids = texts(&runs, "id", &runs_path)?;
    let mask = done_runs_mask(&runs, &spec.filters, &runs_path)?;
    // C per token: exact FLOPs, or 6N with the chosen N.
    let per_token = |i: usize| match spec.c_kind {
        CKind::Exact => fpt[i],
        CKind::SixNd => n[i].map(|n| 6.0 * n),
    };
    // A branch's trunk (absent before branched sweeps existed): its noise group.
    let trunks = texts(&runs, "trunk", &runs_path).ok();
    let mut trunk_of_run: Vec<Option<String>> = Vec::new();
    let mut finals = Vec::new();
    let mut rows = Vec::new();
    let mut by_id: HashMap<String, (u32, f64, f64, f64)> = HashMap::new();
    for i in 0..runs.height() {
        let (true, Some(ni), Some(di), Some(ti), Some(li), Some(pt), Some(id)) = (
            mask[i],
            n[i],
            d[i],
            seen[i],
            loss[i],
            per_token(i),
            ids[i].clone(),
        ) else {
            continue;
        };
        if ti <= 0.0 {
            continue;
        }
        let run = finals.len() as u32;
        finals.push(Obs {
            n: ni,
            d: di,
            c: pt * ti,
            loss: li,
            run,
        });
        rows.push(i);
        trunk_of_run.push(trunks.as_ref().and_then(|t| t[i].clone()));
        by_id.insert(id, (run, ni, pt, di / ti));
    }
    let curves_path = dir.join("curves.parquet");
    let mut paths = vec![runs_path.clone()];
    let curves = if curves_path.exists() {
        paths.push(curves_path.clone());
        let cdf = read_frame(&curves_path)?;
        let cid = texts(&cdf, "id", &curves_path)?;
        let tokens = numbers(&cdf, "tokens", &curves_path)?;
        let val = numbers(&cdf, "val_loss", &curves_path)?;
        let pts: Vec<Obs> = (0..cdf.height())
            .filter_map(|i| {
                let (run, ni, pt, d_per_token) = *by_id.get(cid[i].as_ref()?)?;
                let (t, l) = (tokens[i]?, val[i]?);
                (t > 0.0).then_some(Obs {
                    n: ni,
                    d: t * d_per_token,
                    c: pt * t,
                    loss: l,
                    run,
                })
            })
            .collect();
        Some(pts)
    } else {
        None
    };
    let (finals, curves, seed_noise, runs_per_point, first_run) = if spec.pool_seeds {
        let config = seed_configurations(&runs, &rows);
        let p = fit::data::pool_replicates(&finals, curves.as_deref(), &config);
        let first = first_run_of_each_point(&config);
        (p.finals, p.curves, p.noise, p.runs_per_point, first)
    } else {
        let one = vec![1; finals.len()];
        let first = (0..finals.len()).collect();
        (finals, curves, None, one, first)
    };
    let noise_groups = noise_groups(&first_run, &trunk_of_run);
    let finals = fit::data::drop_highest_loss(finals, spec.drop_highest);
    let kept: std::collections::HashSet<u32> = finals.iter().map(|p| p.run).collect();
    let curves = curves.map(|c| c.into_iter().filter(|p| kept.contains(&p.run)).collect());
    let mut columns = HashMap::new();
    columns.insert("n".into(), n_col.to_string());
    columns.insert("d".into(), d_col.into());
    columns.insert(
        "c".into(),
        match spec.c_kind {
            CKind::Exact => "flops_per_token x tokens".into(),
            CKind::SixNd => format!("6 x {n_col} x tokens"),
        },
    );
    columns.insert("loss".into(), "final_val_loss".into());
    let info = InputInfo {
        path: dir.to_path_buf(),
        fingerprint: fingerprint(&paths)?,
        rows: runs.height(),
        used: finals.iter().map(|p| runs_per_point[p.run as usize]).sum(),
        columns,
        spec: spec.clone(),
    };
    // The floor of the rows used (a filtered group's own: the architectures of one sweep can
    // have different floors, e.g. a prefix decoder's loss-bearing positions).
    let used_floors: Vec<Option<f64>> = rows.iter().map(|&i| floors[i]).collect();
    let first_floor = used_floors.first().copied().flatten();
    let entropy_floor = first_floor.filter(|f| used_floors.iter().all(|g| *g == Some(*f)));
    Ok(FitData {
        finals,
        curves,
        entropy_floor,
        seed_noise,
        runs_per_point: Some(runs_per_point),
        noise_groups,
        info,
    })
}

/// Reads the fit input at `path`: a lab results folder or a table.
pub fn read(path: &Path, spec: &TableSpec) -> LabResult<FitData> {
    if path.is_dir() {
        if !path.join("runs.parquet").exists() {
            return Err(LabError::input(
                path,
                None,
                "folder has no runs.parquet: run `lab collect` on it first",
            ));
        }
        read_results(path, spec)
    } else if path.exists() {
        read_table(path, spec)
    } else {
        Err(LabError::input(path, None, "no such file or folder"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branches_of_one_trunk_share_a_noise_group() {
        // Runs 0-3: seed 0 and seed 1 of two configurations, pooled into points 0 and 1 (the
        // first runs 0 and 1); both first runs are branches of trunk T0.
        let config = [7, 9, 7, 9, 4];
        let first = first_run_of_each_point(&config);
        assert_eq!(first, vec![0, 1, 4]);
        let t = |s: &str| Some(s.to_string());
        let trunks = [t("T0"), t("T0"), t("T1"), t("T1"), None];
        assert_eq!(noise_groups(&first, &trunks), vec![3, 3, 2]);
        // Unbranched runs: no shared groups at all.
        assert!(noise_groups(&first, &[None, None, None, None, None]).is_empty());
    }

    #[test]
    fn seeds_of_one_configuration_share_an_index() {
        let runs = df!(
            "id" => ["a", "b", "c", "d", "e", "f"],
            "seed" => [0u64, 1, 0, 0, 0, 1],
            "d_model" => [16u64, 16, 32, 16, 64, 64],
            "tokens" => [100u64, 100, 100, 200, 300, 300],
            "final_val_loss" => [2.0, 2.1, 1.9, 1.8, 1.5, 1.6],
        )
        .unwrap();
        let c = seed_configurations(&runs, &[0, 1, 2, 3, 4, 5]);
        // a and b differ only in seed and result; e and f likewise; c and d are alone.
        assert_eq!(c[0], c[1]);
        assert_eq!(c[4], c[5]);
        assert!(c[2] != c[0] && c[3] != c[0] && c[2] != c[3] && c[4] != c[0]);
        // Two runs with one seed and the same recorded configuration differ in something
        // runs.parquet does not hold: they are not pooled.
        let twins = df!(
            "id" => ["a", "b", "c"],
            "seed" => [0u64, 0, 1],
            "d_model" => [16u64, 16, 16],
        )
        .unwrap();
        let c = seed_configurations(&twins, &[0, 1, 2]);
        assert!(c[0] != c[1] && c[1] != c[2] && c[0] != c[2], "{c:?}");
    }
}

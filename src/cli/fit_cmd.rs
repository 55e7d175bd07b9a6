//! `lab fit`: scaling laws on a results folder or a published table.

use crate::error::{LabError, LabResult};
use crate::fitreport::{noise_model, run_fits, sci, with_interval, write, IntervalKind};
use crate::results::write_atomic;
use crate::table::{read, read_frame, CKind, NKind, TableSpec};
use clap::Args;
use fit::approach3::StartGrid;
use fit::krajewski::{self, GObs};
use fit::report::{default_predictions, Approach, FitOptions};
use polars::prelude::DataType;
use std::path::{Path, PathBuf};

/// Arguments of `lab fit`.
#[derive(Args)]
#[command(after_help = "Examples:
  lab fit results/chinchilla                                 every approach on a sweep's results
  lab fit results/chinchilla --approach 2,3 --predict 1e21,1e23 --n-kind nonembedding
  lab fit ../shared/data/public-scaling-runs/chinchilla_epoch_svg_extracted.csv \\
      --n 'Model Size' --c 'Training FLOP' --loss loss --drop-highest 5 --approach 3
  lab fit ../shared/data/public-scaling-runs/porian2024_isoflop_points.csv \\
      --filter hparams=tuned --filter warmup=short --filter decay=cosine --filter param_count=attention \\
      --filter dataset=rw --filter loss_split=train --approach 2
  lab fit results/emergence --emergence --emergence-x params
                                   jumps in task metrics, and whether the metric explains them
  lab fit results/prefix-vs-causal --group-by arch --fix-e floor
                                   one fit per arch, in results/prefix-vs-causal/fit/groups/arch-<value>/
  lab fit results/schedules --schedule-fit schedule=wsd
                                   Tissue et al.'s law on each shape's WSD curve, predicting its other runs
  lab fit ../shared/data/public-scaling-runs/data_constrained_scaling_law_data.csv --data-constrained \
      --d unique_tokens --unique tokens --dc-base published
                                   Muennighoff et al.'s law (that table's two token columns are swapped)
  lab fit ../shared/data/public-scaling-runs/moe_scaling_law_data.csv --routed \
      --n dense_parameter_count --loss loss_validation --filter 'step>=249000' --filter k=1 \
      --filter routing_frequency=0.5 --filter seed=42 --filter flop_increase=1 \
      --filter 'router_type!=Hash' --filter 'router_type!=RL-R'
                                   Clark et al.'s routed-LM law on the S-BASE runs and the dense ones
  lab fit results/moe-granularity --joint-moe
                                   Ludziejewski et al.'s joint law of the dense and MoE runs, with leverage
  lab fit ../shared/data/public-scaling-runs/llama3_isoflops_points.csv --approach 2
                                   a table of C, D and loss: N is derived as C / (6D)")]
pub struct FitArgs {
    /// A lab results folder (runs.parquet [+ curves.parquet]) or a .csv / .parquet table.
    pub input: PathBuf,
    /// Approaches: all, or a comma list of 1, 2, 3, kaplan.
    #[arg(long, default_value = "all")]
    pub approach: String,
    /// Compute budgets (FLOPs) to predict N_opt, D_opt, tokens/param and loss at, comma separated.
    #[arg(long, value_delimiter = ',')]
    pub predict: Vec<f64>,
    /// Table column of N (auto-detected when absent; without one, derived as C/(6D) from the D and C
    /// columns).
    #[arg(long)]
    pub n: Option<String>,
    /// Table column of D (derived as C/(6N) when absent).
    #[arg(long)]
    pub d: Option<String>,
    /// Table column of C (derived as 6ND when absent).
    #[arg(long)]
    pub c: Option<String>,
    /// Table column of the loss.
    #[arg(long)]
    pub loss: Option<String>,
    /// Row filter col=value, col!=value, col<value, col>value, col<=value, col>=value (repeatable,
    /// all must hold).
    #[arg(long = "filter")]
    pub filters: Vec<String>,
    /// lab results: fit every seed's run as its own point (by default the runs that repeat one
    /// configuration with different seeds are pooled into their mean, and their scatter reported;
    /// with --schedule-fit, into their mean curve).
    #[arg(long)]
    pub keep_seeds: bool,
    /// Drop the k highest-loss points.
    #[arg(long, default_value_t = 0)]
    pub drop_highest: usize,
    /// Which N for lab results.
    #[arg(long, value_enum, default_value_t = NKind::Nonembedding)]
    pub n_kind: NKind,
    /// Which C: the exact FLOPs, or 6ND.
    #[arg(long, value_enum, default_value_t = CKind::Exact)]
    pub c_kind: CKind,
    /// Bootstrap replicates (0: no intervals).
    #[arg(long, default_value_t = 1000)]
    pub bootstrap: usize,
    /// Bootstrap seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// How the bootstrap draws: `noise` keeps the design and perturbs each run's loss by the runs'
    /// noise (one run's scatter between seeds where the results repeat seeds, else the residual
    /// scatter around approach 3's L(N, D), or --noise-sd); `resample` draws points with
    /// replacement (runs for approach 1, points within each budget for approach 2). Default:
    /// noise on lab results, resample on tables.
    #[arg(long, value_enum)]
    pub intervals: Option<IntervalKind>,
    /// One run's standard deviation of ln L for the noise bootstrap, instead of measuring it.
    #[arg(long)]
    pub noise_sd: Option<f64>,
    /// Confidence level of the intervals.
    #[arg(long, default_value_t = 0.95)]
    pub level: f64,
    /// Largest budgets held out by the extrapolation check (0: none).
    #[arg(long, default_value_t = 1)]
    pub holdout: usize,
    /// Approach-3 start grid: "published" (4,500 starts) or "small" (32 starts).
    #[arg(long, default_value = "published")]
    pub grid: String,
    /// Hold the irreducible loss E at this value, or at the corpus's entropy rate recorded by lab
    /// ("floor"): approach 3's E and the floors of the loss frontiers (approaches 1, 2, Kaplan L(C)).
    /// Without it E is fitted.
    #[arg(long)]
    pub fix_e: Option<String>,
    /// Huber delta of approach 3.
    #[arg(long, default_value_t = 1e-3)]
    pub huber_delta: f64,
    /// Points whose compute is within this factor of the previous one share an isoFLOP budget.
    #[arg(long, default_value_t = 1.25)]
    pub budget_ratio: f64,
    /// Approach 2: fit each isoFLOP parabola to sizes within this many decades of the best size
    /// (0: every size).
    #[arg(long, default_value_t = 0.5)]
    pub window: f64,
    /// Approach 1: read each training curve from this fraction of its run's tokens on (0: every
    /// point). Earlier, a decaying schedule has not annealed: a cosine cycle longer than the steps
    /// taken by more than 25% gives a worse loss (Hoffmann et al. 2022), hence 0.8.
    #[arg(long, default_value_t = 0.8)]
    pub envelope_from: f64,
    /// Approach 1: N_opt at each compute is the winning run's size (Hoffmann et al.'s reading, a
    /// staircase) instead of the minimum of a parabola in ln N through it and its neighbours.
    #[arg(long)]
    pub envelope_staircase: bool,
    /// Output folder for fit.json and fit.md (default <results>/fit, or results/fit-<table name>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Fit each group of rows sharing a value of this column (e.g. arch, ffn, granularity)
    /// separately, into <out>/groups/<column>-<value>/; compare them with `lab plot --compare`.
    #[arg(long)]
    pub group_by: Option<String>,
    /// Fit the fine-grained MoE law of Krajewski et al. 2024,
    /// L(N, D, G) = c + (g/G^gamma + a)/N^alpha + b/D^beta, over the rows with a value in the
    /// granularity column (dense rows are left out); writes <out>/krajewski.json.
    #[arg(long)]
    pub krajewski: bool,
    /// Emergence analysis of the task metrics (evals.parquet): jump detection on exact match
    /// against log10 compute (or N, --emergence-x params) with the mirage check; writes
    /// <out>/emergence.{json,md}.
    #[arg(long)]
    pub emergence: bool,
    /// The x axis of --emergence.
    #[arg(long, value_enum, default_value_t = crate::emergence::EmergenceX::Compute)]
    pub emergence_x: crate::emergence::EmergenceX,
    /// Column holding the granularity G for --krajewski.
    #[arg(long, default_value = "granularity")]
    pub g_column: String,
    /// Fit Tissue et al. 2024's schedule-aware law, L = L0 + A S1^-alpha - C S2, per model shape on
    /// the training curves of the runs matching this filter (col=value, e.g. schedule=wsd), and
    /// predict every other finished run of the shape from its schedule; writes
    /// <out>/schedule.{json,md}.
    #[arg(long)]
    pub schedule_fit: Option<String>,
    /// Momentum lambda of the annealing area S2 for --schedule-fit: a value in [0, 1) (Tissue et
    /// al.: 0.999, a memory of about 1,000 steps), or `fit` to fit it per shape with the other
    /// parameters (the fitted curves need a cooldown).
    #[arg(long, default_value = "0.999", value_parser = crate::schedule_fit::parse_lambda)]
    pub schedule_lambda: fit::schedule_law::LambdaChoice,
    /// Fit Muennighoff et al. 2023's data-constrained law, L = E + A/N'^alpha + B/D'^beta on
    /// effective parameters N' and data D', to a table with a unique-tokens column (--unique);
    /// writes <out>/data_constrained.{json,md}.
    #[arg(long)]
    pub data_constrained: bool,
    /// Column of unique tokens for --data-constrained (D is the tokens trained on, every epoch).
    #[arg(long, default_value = "unique_tokens")]
    pub unique: String,
    /// --data-constrained: the Chinchilla part fitted with alpha = beta (the paper's choice),
    /// fitted freely, or held at the paper's values.
    #[arg(long, value_enum, default_value_t = crate::constrained_fit::BaseChoice::Tied)]
    pub dc_base: crate::constrained_fit::BaseChoice,
    /// Fit Clark et al. 2022's routed-LM law, log L = a log N + b log Ê + c log N log Ê + d with the
    /// saturating expert count Ê, to a table of dense parameters (--n), expert counts
    /// (--experts-column; 1 for dense rows) and final losses (--loss); writes
    /// <out>/routed.{json,md}.
    #[arg(long)]
    pub routed: bool,
    /// Column of the expert count for --routed.
    #[arg(long, default_value = "num_experts")]
    pub experts_column: String,
    /// Fit Ludziejewski et al. 2025's joint law of dense and MoE models,
    /// L = a E^delta N^(alpha + gamma ln E) + b E^omega D^(beta + zeta ln E) + c (N active
    /// parameters, E experts per active expert), to a results folder's dense and MoE runs, with
    /// each expansion's efficiency leverage at the --predict computes; writes
    /// <out>/joint_moe.{json,md}.
    #[arg(long)]
    pub joint_moe: bool,
}

/// Parses the --approach list.
pub fn parse_approaches(s: &str) -> LabResult<Vec<Approach>> {
    if s.trim() == "all" {
        return Ok(Approach::ALL.to_vec());
    }
    s.split(',')
        .map(|a| {
            Approach::parse(a).ok_or_else(|| {
                LabError::input(
                    "--approach",
                    None,
                    format!("unknown approach '{a}': use all, 1, 2, 3 or kaplan"),
                )
            })
        })
        .collect()
}

/// Runs `lab fit`.
pub fn run(a: FitArgs) -> LabResult<i32> {
    let approaches = parse_approaches(&a.approach)?;
    let grid = match a.grid.as_str() {
        "published" => StartGrid::default(),
        "small" => StartGrid {
            log_a: vec![5.0, 10.0],
            log_b: vec![5.0, 10.0],
            log_e: vec![0.0, 0.5],
            alpha: vec![0.2, 0.5],
            beta: vec![0.2, 0.5],
        },
        other => {
            return Err(LabError::input(
                "--grid",
                None,
                format!("unknown grid '{other}': published or small"),
            ))
        }
    };
    if a.budget_ratio.partial_cmp(&1.0) != Some(std::cmp::Ordering::Greater) {
        return Err(LabError::input(
            "--budget-ratio",
            None,
            "must be greater than 1",
        ));
    }
    let spec = TableSpec {
        n: a.n.clone(),
        d: a.d.clone(),
        c: a.c.clone(),
        loss: a.loss.clone(),
        filters: a.filters.clone(),
        drop_highest: a.drop_highest,
        n_kind: a.n_kind,
        c_kind: a.c_kind,
        pool_seeds: !a.keep_seeds,
    };
    let out = a.out.clone().unwrap_or_else(|| {
        if a.input.is_dir() {
            a.input.join("fit")
        } else {
            let stem = a
                .input
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "table".into());
            PathBuf::from("results").join(format!("fit-{stem}"))
        }
    });
    if a.krajewski {
        return fit_krajewski(&a, &spec, &out);
    }
    if a.joint_moe {
        let leverage_at = if a.predict.is_empty() {
            default_predictions(&read(&a.input, &spec)?.finals)
        } else {
            a.predict.clone()
        };
        let f = crate::joint_moe_fit::analyse(
            &a.input,
            &spec,
            &leverage_at,
            (a.bootstrap, a.seed, a.level),
        )?;
        crate::joint_moe_fit::write(&out, &f)?;
        print!("{}", crate::joint_moe_fit::markdown(&f));
        println!("wrote {}", out.join("joint_moe.json").display());
        return Ok(0);
    }
    if a.routed {
        let cols = crate::routed_fit::RoutedColumns {
            n: a.n.as_deref().unwrap_or("N"),
            experts: &a.experts_column,
            loss: a.loss.as_deref().unwrap_or("loss"),
            filters: &a.filters,
        };
        let f = crate::routed_fit::analyse(&a.input, &cols, (a.bootstrap, a.seed, a.level))?;
        crate::routed_fit::write(&out, &f)?;
        print!("{}", crate::routed_fit::markdown(&f));
        println!("wrote {}", out.join("routed.json").display());
        return Ok(0);
    }
    if a.data_constrained {
        let f = crate::constrained_fit::analyse(
            &a.input,
            &spec,
            &a.unique,
            a.dc_base,
            (a.bootstrap, a.seed, a.level),
        )?;
        crate::constrained_fit::write(&out, &f)?;
        print!("{}", crate::constrained_fit::markdown(&f));
        println!("wrote {}", out.join("data_constrained.json").display());
        return Ok(0);
    }
    if let Some(filter) = &a.schedule_fit {
        let f = crate::schedule_fit::analyse(
            &a.input,
            filter,
            a.schedule_lambda,
            !a.keep_seeds,
            a.bootstrap.min(500),
            a.seed,
        )?;
        crate::schedule_fit::write(&out, &f)?;
        print!("{}", crate::schedule_fit::markdown(&f));
        println!("wrote {}", out.join("schedule.json").display());
        return Ok(0);
    }
    if a.emergence {
        let f = crate::emergence::analyse(&a.input, a.emergence_x)?;
        crate::emergence::write(&out, &f)?;
        print!("{}", crate::emergence::markdown(&f));
        println!("\nwrote {}", out.join("emergence.json").display());
        return Ok(0);
    }
    let Some(key) = a.group_by.clone() else {
        return fit_one(&a, spec, &approaches, grid, &out);
    };
    let values = group_values(&a.input, &key)?;
    println!("{} groups by {key}: {}", values.len(), values.join(", "));
    let mut failures = 0;
    for v in &values {
        let mut s = spec.clone();
        s.filters.push(format!("{key}={v}"));
        let dir = out.join("groups").join(format!("{key}-{v}"));
        println!(
            "
== {key} = {v} =="
        );
        if let Err(e) = fit_one(&a, s, &approaches, grid.clone(), &dir) {
            eprintln!("{key} = {v}: {e}");
            failures += 1;
        }
    }
    if failures == values.len() {
        return Err(LabError::input(
            &a.input,
            None,
            format!("no group by {key} could be fitted"),
        ));
    }
    Ok(0)
}

/// The value of --fix-e: none, a number, or `floor` (the corpus entropy the runs record).
fn fixed_e(a: &FitArgs, floor: impl FnOnce() -> LabResult<Option<f64>>) -> LabResult<Option<f64>> {
    match a.fix_e.as_deref() {
        None => Ok(None),
        Some("floor") => floor()?.map(Some).ok_or_else(|| {
            LabError::input(
                &a.input,
                None,
                "--fix-e floor: the runs record no common entropy floor",
            )
        }),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| LabError::input("--fix-e", None, format!("'{v}': a number or 'floor'"))),
    }
}

/// Fits the Krajewski law over the groups of the granularity column.
fn fit_krajewski(a: &FitArgs, spec: &TableSpec, out: &Path) -> LabResult<i32> {
    let key = &a.g_column;
    let mut points = Vec::new();
    for v in group_values(&a.input, key)? {
        let Ok(g) = v.parse::<f64>() else {
            continue; // dense rows (null granularity)
        };
        let mut s = spec.clone();
        s.filters.push(format!("{key}={v}"));
        let data = read(&a.input, &s)?;
        points.extend(data.finals.iter().map(|&obs| GObs { obs, g }));
    }
    let fixed_c = fixed_e(a, || Ok(read(&a.input, spec)?.entropy_floor))?;
    let mut f = krajewski::fit(&points, a.bootstrap, a.seed, a.level, fixed_c)
        .map_err(|e| LabError::input(&a.input, None, e.to_string()))?;
    f.extrapolation = krajewski::extrapolation(&points, fixed_c, a.level).ok();
    std::fs::create_dir_all(out)?;
    write_atomic(
        &out.join("krajewski.json"),
        &serde_json::to_vec_pretty(&f).map_err(|e| anyhow::anyhow!("serialising: {e}"))?,
    )?;
    println!(
        "Krajewski law over {} points at granularities {:?} (RMSE of ln L {:.4}; {} bootstrap fits):",
        f.points, f.granularities, f.rmse_log, f.bootstrap_succeeded
    );
    for (k, v) in &f.parameters {
        println!("  {k:>6} = {}", with_interval(v));
    }
    if let Some(x) = &f.extrapolation {
        println!("{}", crate::fitreport::extrapolation_paragraph(x, ""));
    }
    println!("wrote {}", out.join("krajewski.json").display());
    Ok(0)
}

/// The distinct values of `key` among the rows of a results folder (done runs) or a table.
fn group_values(input: &Path, key: &str) -> LabResult<Vec<String>> {
    let path = if input.is_dir() {
        input.join("runs.parquet")
    } else {
        input.to_path_buf()
    };
    let df = read_frame(&path)?;
    let col = df
        .column(key)
        .map_err(|_| LabError::input(&path, None, format!("--group-by: no column '{key}'")))?;
    let strs = col
        .cast(&DataType::String)
        .map_err(|e| LabError::input(&path, None, e.to_string()))?;
    let mut values: Vec<String> = strs
        .str()
        .map_err(|e| LabError::input(&path, None, e.to_string()))?
        .iter()
        .map(|v| v.unwrap_or("null").to_string())
        .collect();
    values.sort();
    values.dedup();
    Ok(values)
}

/// Fits one table (or one group of it) and writes fit.json and fit.md into `out`.
fn fit_one(
    a: &FitArgs,
    spec: TableSpec,
    approaches: &[Approach],
    grid: StartGrid,
    out: &Path,
) -> LabResult<i32> {
    let data = read(&a.input, &spec)?;
    if data.finals.is_empty() {
        return Err(LabError::input(
            &a.input,
            None,
            "no rows left after filters",
        ));
    }
    let mut options = FitOptions {
        bootstrap: a.bootstrap,
        seed: a.seed,
        level: a.level,
        predict: if a.predict.is_empty() {
            default_predictions(&data.finals)
        } else {
            a.predict.clone()
        },
        holdout_budgets: a.holdout,
        ..FitOptions::default()
    };
    options.approach3.grid = grid;
    options.approach3.huber_delta = a.huber_delta;
    options.hold_e(fixed_e(a, || Ok(data.entropy_floor))?);
    options.approach2.budget_ratio = a.budget_ratio;
    options.approach2.window_decades = (a.window > 0.0).then_some(a.window);
    options.approach1.from_run_fraction = a.envelope_from;
    options.approach1.interpolate_sizes = !a.envelope_staircase;
    let (noise, note) = noise_model(&data, &options, a.intervals, a.noise_sd)?;
    options.noise = noise;
    let mut file = run_fits(&data, approaches, &options)?;
    if let Some(note) = note {
        for r in &mut file.reports {
            r.warnings.push(note.clone());
        }
    }
    write(out, &file)?;
    println!(
        "{} points from {} ({:.1} s)",
        data.finals.len(),
        a.input.display(),
        file.seconds
    );
    for r in &file.reports {
        println!(
            "\n{}: a = {}  b = {}",
            r.approach.name(),
            with_interval(&r.a),
            with_interval(&r.b)
        );
        for (k, v) in &r.parameters {
            println!("  {k:>16} = {}", with_interval(v));
        }
        for p in &r.predictions {
            println!(
                "  C = {}: N_opt {}  D_opt {}  tokens/param {}  loss {}",
                sci(p.c),
                with_interval(&p.n_opt),
                with_interval(&p.d_opt),
                with_interval(&p.tokens_per_param),
                with_interval(&p.loss)
            );
        }
        if let Some(x) = &r.extrapolation {
            if let Some(m) = x.loss_mape {
                println!(
                    "  extrapolation: held-out loss error {:.2}% (max {:.2}%)",
                    100.0 * m,
                    100.0 * x.loss_max_ape.unwrap_or(0.0)
                );
            }
            for b in &x.budgets {
                println!(
                    "  extrapolation to C = {}: N_opt {:+.1}%, loss {:+.2}%",
                    sci(b.c),
                    100.0 * b.n_opt_rel_error,
                    100.0 * b.loss_rel_error
                );
            }
        }
        for w in &r.warnings {
            println!("  warning: {w}");
        }
    }
    for (ap, why) in &file.failed {
        println!("\n{}: not fitted: {why}", ap.name());
    }
    println!("\nwrote {}", out.join("fit.json").display());
    Ok(0)
}

//! `lab fit` on published tables (skipped with a message when ../shared is absent) and on a
//! hand-made results folder.

mod common;

use fit::approach2::{self, Approach2Settings};
use lab::table::{read, CKind, NKind, TableSpec};
use std::path::{Path, PathBuf};

fn shared(file: &str) -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data/public-scaling-runs")
        .join(file);
    if p.exists() {
        Some(p)
    } else {
        eprintln!("SKIPPED: {} not found", p.display());
        None
    }
}

/// Runs `lab fit ARGS` in `dir`, which must succeed, and returns the report it wrote as
/// `<report>.json` (parsed) and `<report>.md` (`report` relative to `dir`, without extension).
fn fit_report(dir: &Path, args: &[&str], report: &str) -> (serde_json::Value, String) {
    let out = common::lab(dir, args);
    assert!(out.status.success(), "{}", common::text(&out));
    let path = dir.join(report);
    let json = std::fs::read(path.with_extension("json")).unwrap();
    let md = std::fs::read_to_string(path.with_extension("md")).unwrap();
    (serde_json::from_slice(&json).unwrap(), md)
}

fn spec(filters: &[&str]) -> TableSpec {
    TableSpec {
        n: Some("N".into()),
        d: Some("D".into()),
        c: Some("flops".into()),
        loss: Some("loss".into()),
        filters: filters.iter().map(|s| s.to_string()).collect(),
        drop_highest: 0,
        n_kind: NKind::Total,
        c_kind: CKind::Exact,
        pool_seeds: true,
    }
}

/// Porian et al. 2024: the approach-2 exponent moves from Kaplan's towards Chinchilla's as each
/// discrepancy is removed (REFERENCES.md: 0.835, 0.706, 0.602, 0.571, 0.497).
#[test]
fn porian_isoflop_exponents_follow_the_published_sequence() {
    let Some(path) = shared("porian2024_isoflop_points.csv") else {
        return;
    };
    let steps = [
        (
            [
                "hparams=base",
                "warmup=long",
                "decay=kaplan",
                "param_count=kaplan",
            ],
            0.835,
        ),
        (
            [
                "hparams=base",
                "warmup=long",
                "decay=kaplan",
                "param_count=attention",
            ],
            0.706,
        ),
        (
            [
                "hparams=base",
                "warmup=short",
                "decay=kaplan",
                "param_count=attention",
            ],
            0.602,
        ),
        (
            [
                "hparams=base",
                "warmup=short",
                "decay=chinchilla",
                "param_count=attention",
            ],
            0.571,
        ),
        (
            [
                "hparams=tuned",
                "warmup=short",
                "decay=const",
                "param_count=attention",
            ],
            0.497,
        ),
    ];
    let mut previous = f64::INFINITY;
    for (filters, published) in steps {
        let mut f: Vec<&str> = vec!["dataset=rw", "loss_split=train"];
        f.extend(filters);
        let data = read(&path, &spec(&f)).unwrap();
        let fit = approach2::fit(&data.finals, &Approach2Settings::default()).unwrap();
        let a = fit.n_law.exponent;
        eprintln!("{filters:?}: a = {a:.3} (published {published})");
        assert!(
            (a - published).abs() < 0.03,
            "{filters:?}: a = {a} vs published {published}"
        );
        assert!(a < previous, "the sequence must fall");
        previous = a;
    }
}

/// Llama 3's isoFLOP table has budgets, tokens and losses but no N: lab derives N = C / (6D) and
/// approach 2 recovers the paper's D*(C) = A C^0.53 (REFERENCES.md; 16.55T tokens at 3.8e25 FLOPs).
#[test]
fn llama3_isoflop_table_without_n() {
    let Some(path) = shared("llama3_isoflops_points.csv") else {
        return;
    };
    let data = read(&path, &TableSpec::default()).unwrap();
    assert_eq!(data.info.columns["n"], "derived: C / (6 D)");
    assert_eq!(data.info.used, 133);
    let p = data.finals[0];
    assert!((p.n * 6.0 * p.d / p.c - 1.0).abs() < 1e-12, "{p:?}");
    let fit = approach2::fit(&data.finals, &Approach2Settings::default()).unwrap();
    let b = fit.d_law.exponent;
    let d_at = fit.d_law.coefficient * 3.8e25f64.powf(b);
    eprintln!(
        "Llama 3: D* = {:.3} C^{b:.3}; at 3.8e25 FLOPs {d_at:.3e} tokens",
        fit.d_law.coefficient
    );
    assert!((b - 0.53).abs() < 0.03, "D* exponent {b}");
    assert!(
        (d_at / 16.55e12 - 1.0).abs() < 0.15,
        "{d_at:e} tokens at 3.8e25"
    );
}

/// The command line end to end on the Epoch table: fit.json and fit.md are written and carry the
/// published approach-3 values.
#[test]
fn lab_fit_on_epoch_table_writes_reports() {
    let Some(path) = shared("chinchilla_epoch_svg_extracted.csv") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // The table's columns and one approach; each fit below adds its own flags.
    let epoch = |extra: &[&'static str]| -> Vec<&str> {
        let mut args = vec![
            "fit",
            path.to_str().unwrap(),
            "--n",
            "Model Size",
            "--c",
            "Training FLOP",
            "--approach",
            "3",
        ];
        args.extend_from_slice(extra);
        args
    };
    let (json, md) = fit_report(
        dir.path(),
        &epoch(&[
            "--drop-highest",
            "5",
            "--bootstrap",
            "100",
            "--predict",
            "1e21",
            "--out",
            "fit",
        ]),
        "fit/fit",
    );
    let r = &json["reports"][0];
    assert_eq!(r["approach"], "approach3");
    assert_eq!(json["input"]["used"], 240);
    let alpha = r["parameters"]["alpha"]["value"].as_f64().unwrap();
    assert!((alpha / 0.3473 - 1.0).abs() < 0.01, "{alpha}");
    assert!(md.contains("approach3") && md.contains("| alpha |"), "{md}");
    // A table's design is not lab's: by default its intervals resample points.
    assert_eq!(r["bootstrap"]["unit"], "Points");
    assert!(md.contains("resampling points"), "{md}");
    // The noise bootstrap on request: the design kept, each point's loss perturbed by the given sd.
    let noise_args = epoch(&[
        "--bootstrap",
        "50",
        "--intervals",
        "noise",
        "--noise-sd",
        "0.02",
        "--out",
        "noise",
    ]);
    let (json, md) = fit_report(dir.path(), &noise_args, "noise/fit");
    assert_eq!(json["reports"][0]["bootstrap"]["unit"], "Noise");
    assert_eq!(json["options"]["noise"]["sd_ln_loss"], 0.02);
    assert_eq!(json["options"]["noise"]["source"], "given");
    assert!(
        md.contains("fixed design") && md.contains("0.0200, given"),
        "{md}"
    );
    let mut bad = noise_args.clone();
    let sd = bad.iter().position(|a| *a == "0.02").unwrap();
    bad[sd] = "nan";
    let out = common::lab(dir.path(), &bad);
    assert_eq!(out.status.code(), Some(2), "{}", common::text(&out));
    assert!(
        common::text(&out).contains("--noise-sd"),
        "{}",
        common::text(&out)
    );
}

/// `lab fit --data-constrained` on Muennighoff et al.'s runs, with the paper's Chinchilla part held:
/// the report carries lab's R*_D and R*_N beside the paper's, and says which the runs do not pin.
#[test]
fn lab_fit_data_constrained_writes_reports() {
    let Some(path) = shared("data_constrained_scaling_law_data.csv") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (json, md) = fit_report(
        dir.path(),
        &[
            "fit",
            path.to_str().unwrap(),
            "--data-constrained",
            "--n",
            "params",
            "--d",
            "unique_tokens",
            "--unique",
            "tokens",
            "--dc-base",
            "published",
            "--bootstrap",
            "50",
            "--out",
            "dc",
        ],
        "dc/data_constrained",
    );
    assert_eq!(json["fit"]["points"], 182);
    let rd = json["fit"]["parameters"]["R*_N"]["value"].as_f64().unwrap();
    assert!(rd > 0.5 && rd < 20.0, "{rd}");
    assert!(md.contains("| R*_D |") && md.contains("15.3878"), "{md}");
    assert!(md.contains("Not identified:** R*_D"), "{md}");
    assert!(md.contains("Chinchilla's law on N and D alone"), "{md}");
    for ext in ["png", "svg"] {
        assert!(dir
            .path()
            .join(format!("dc/data_constrained.{ext}"))
            .exists());
    }
    // A missing column is named.
    let table = path.to_str().unwrap();
    let o = common::lab(
        dir.path(),
        &["fit", table, "--data-constrained", "--unique", "epochs"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", common::text(&o));
    assert!(
        common::text(&o).contains("no column 'epochs'"),
        "{}",
        common::text(&o)
    );
}

/// `lab fit --routed` on Clark et al.'s S-BASE runs (with the dense ones): the command line's
/// filters pick the 58 runs of the main study and the report sets lab's law beside the published.
#[test]
fn lab_fit_routed_writes_reports() {
    let Some(path) = shared("moe_scaling_law_data.csv") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec![
        "fit",
        path.to_str().unwrap(),
        "--routed",
        "--n",
        "dense_parameter_count",
        "--loss",
        "loss_validation",
        "--bootstrap",
        "50",
        "--out",
        "rt",
    ];
    for f in [
        "step>=249000",
        "k=1",
        "routing_frequency=0.5",
        "seed=42",
        "flop_increase=1",
        "router_type!=Hash",
        "router_type!=RL-R",
    ] {
        args.extend(["--filter", f]);
    }
    let (json, md) = fit_report(dir.path(), &args, "rt/routed");
    assert!(dir.path().join("rt/routed.png").exists() && dir.path().join("rt/routed.svg").exists());
    assert_eq!(json["fit"]["points"], 58);
    let a = json["fit"]["law"]["a"].as_f64().unwrap();
    assert!((a + 0.082).abs() < 0.002, "{a}");
    assert!(md.contains("| E_max |") && md.contains("314.4780"), "{md}");
    assert!(
        md.contains("**Extrapolation** (fitted on 48 runs, predicting 10 with N >= 1.309e9"),
        "{md}"
    );
    // Without the step filter, rows of evaluations with no loss are named.
    let o = common::lab(
        dir.path(),
        &[
            "fit",
            path.to_str().unwrap(),
            "--routed",
            "--n",
            "dense_parameter_count",
            "--loss",
            "loss_validation",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", common::text(&o));
    assert!(
        common::text(&o).contains("empty dense_parameter_count, num_experts or loss_validation"),
        "{}",
        common::text(&o)
    );
}

/// `lab fit --joint-moe` on a results folder of dense and MoE runs whose losses follow a known
/// joint law: the command line groups the runs by expansion (dense: E = 1; n_experts / top_k),
/// recovers the law and reports each expansion's leverage.
#[test]
fn lab_fit_joint_moe_on_a_results_folder() {
    use fit::joint_moe::JointMoeLaw;
    use polars::prelude::*;
    let truth = JointMoeLaw {
        a: 400.0,
        delta: -0.05,
        alpha: -0.34,
        gamma: -0.01,
        b: 1500.0,
        omega: 0.02,
        beta: -0.28,
        zeta: 0.005,
        c: 1.7,
    };
    let (mut id, mut ffn, mut experts, mut top_k) = (vec![], vec![], vec![], vec![]);
    let (mut n, mut d, mut loss) = (vec![], vec![], vec![]);
    for (i, &(e, k)) in [(None, None), (Some(8u64), Some(1u64)), (Some(16), Some(2))]
        .iter()
        .enumerate()
    {
        for (j, &params) in [1e5, 4e5, 1.6e6, 6.4e6].iter().enumerate() {
            for (l, &tokens) in [1e7, 4e7, 1.6e8].iter().enumerate() {
                let expansion = e.zip(k).map_or(1.0, |(e, k)| e as f64 / k as f64);
                id.push(format!("r{i}{j}{l}"));
                ffn.push(if e.is_some() { "moe" } else { "dense" });
                experts.push(e);
                top_k.push(k);
                n.push(params);
                d.push(tokens);
                loss.push(truth.loss(params, tokens, expansion));
            }
        }
    }
    let rows = id.len();
    let fpt: Vec<f64> = n.iter().map(|p| 6.0 * p).collect();
    let mut df = df!(
        "id" => id,
        "status" => vec!["done"; rows],
        "ffn" => ffn,
        "n_experts" => experts,
        "top_k" => top_k,
        "params_active" => n,
        "tokens" => d,
        "flops_per_token" => fpt,
        "final_val_loss" => loss,
        "entropy_floor" => vec![1.0; rows],
        "seed" => vec![0u64; rows],
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let res = dir.path().join("res");
    std::fs::create_dir_all(&res).unwrap();
    ParquetWriter::new(std::fs::File::create(res.join("runs.parquet")).unwrap())
        .finish(&mut df)
        .unwrap();
    let args = [
        "fit",
        "res",
        "--joint-moe",
        "--bootstrap",
        "20",
        "--predict",
        "1e15",
    ];
    let (json, md) = fit_report(dir.path(), &args, "res/fit/joint_moe");
    assert!(res.join("fit/joint_moe.png").exists() && res.join("fit/joint_moe.svg").exists());
    // These runs record no unique tokens (as on the synthetic stream): the data-constrained law
    // says so instead of fitting.
    let o = common::lab(dir.path(), &["fit", "res", "--data-constrained"]);
    assert_eq!(o.status.code(), Some(2), "{}", common::text(&o));
    assert!(
        common::text(&o).contains("no done run records unique tokens"),
        "{}",
        common::text(&o)
    );
    let fit = &json["fit"];
    assert_eq!(fit["points"], 36);
    assert_eq!(fit["expansions"], serde_json::json!([1.0, 8.0]));
    for (name, want) in [("alpha", -0.34), ("gamma", -0.01), ("zeta", 0.005)] {
        let got = fit["law"][name].as_f64().unwrap();
        assert!((got - want).abs() < 1e-4, "{name}: {got}");
    }
    let leverage = fit["leverage"][0][2]["value"].as_f64().unwrap();
    let want = truth.efficiency_leverage(1e15, 8.0).unwrap();
    assert!((leverage / want - 1.0).abs() < 1e-3, "{leverage} vs {want}");
    assert!(
        md.contains("Efficiency leverage") && md.contains("| 8 | 1.000e15 |"),
        "{md}"
    );
    assert!(md.contains("**Extrapolation** (fitted on"), "{md}");
}

/// Bad inputs to `lab fit`: a clear message and exit code 2.
#[test]
fn lab_fit_bad_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let csv = common::write(dir.path(), "t.csv", "N,D,loss\n1e6,1e8,3.0\n2e6,-1,2.9\n");
    let text = common::write(dir.path(), "x.csv", "N,D,loss\n1e6,1e8,3.0 \n2e6,1e8,n/a\n");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["fit", "missing.csv"], "no such file"),
        (
            vec!["fit", csv.to_str().unwrap(), "--n", "params"],
            "no column 'params'",
        ),
        (
            vec!["fit", csv.to_str().unwrap(), "--approach", "3"],
            "needs at least 5 points",
        ),
        (
            vec!["fit", csv.to_str().unwrap(), "--approach", "7"],
            "unknown approach",
        ),
        (
            vec!["fit", text.to_str().unwrap()],
            "x.csv:3: row 2: 'n/a' in column 'loss' is not a number",
        ),
    ];
    for (args, want) in cases {
        let out = common::lab(dir.path(), &args);
        let msg = common::text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {msg}");
        assert!(msg.contains(want), "{args:?}: {msg}");
        assert!(!msg.contains("panicked"), "{msg}");
    }
    let bad = common::write(
        dir.path(),
        "b.csv",
        "N,D,loss\n1e6,1e8,3.0\n2e6,-1,2.9\n3e6,1e8,2.8\n4e6,1e8,2.7\n5e6,1e8,2.6\n",
    );
    let out = common::lab(
        dir.path(),
        &["fit", bad.to_str().unwrap(), "--approach", "3"],
    );
    let msg = common::text(&out);
    assert_eq!(out.status.code(), Some(2), "{msg}");
    assert!(
        msg.contains("point 2") && msg.contains("not a positive finite number"),
        "{msg}"
    );
}

//! Fits against published tables (skipped with a message when the shared data folder is absent).

mod common;

use fit::approach3::{self, Approach3Settings};
use fit::report::{fit_approach, Approach, FitInput, FitOptions};
use fit::ComputeOptimal;

fn within(x: f64, target: f64, rel: f64) -> bool {
    (x / target - 1.0).abs() <= rel
}

#[test]
fn epoch_replication_plain_huber_grid() {
    let Some(pts) = common::epoch_points() else {
        return;
    };
    let f = approach3::fit(&pts, &Approach3Settings::default()).unwrap();
    let l = f.law;
    eprintln!("{l:?} objective {}", f.objective);
    assert_eq!(f.starts, 4500);
    assert!(within(l.a, 477.8, 0.01), "A = {}", l.a);
    assert!(within(l.b, 2143.0, 0.01), "B = {}", l.b);
    assert!(within(l.e, 1.8172, 0.01), "E = {}", l.e);
    assert!(within(l.alpha, 0.3473, 0.01), "alpha = {}", l.alpha);
    assert!(within(l.beta, 0.3672, 0.01), "beta = {}", l.beta);
    let (a, _) = l.exponents();
    assert!((a - 0.514).abs() <= 0.005, "a = {a}");
    // Implied tokens per parameter (REFERENCES.md: about 21 at 1e21, 19 at 1e23, 17 at 1e25).
    for (c, tpp) in [(1e21, 21.0), (1e23, 19.0), (1e25, 17.0)] {
        let t = l.allocation(c).tokens_per_param();
        assert!((t - tpp).abs() < 1.5, "tokens/param at {c:e}: {t}");
    }
}

#[test]
fn epoch_bootstrap_interval_covers_published_mle() {
    let Some(pts) = common::epoch_points() else {
        return;
    };
    let options = FitOptions {
        bootstrap: 200,
        predict: vec![1e21, 1e23],
        ..FitOptions::default()
    };
    let r = fit_approach(
        Approach::Approach3,
        &FitInput {
            finals: &pts,
            curves: None,
        },
        &options,
    )
    .unwrap();
    assert_eq!(r.bootstrap.succeeded, 200);
    // The published MLE (a = 0.513, alpha 0.3478, beta 0.3658) lies inside the bootstrap intervals.
    assert!(r.a.contains(0.513), "a interval {:?}", r.a);
    assert!(r.parameters["alpha"].contains(0.3478) && r.parameters["beta"].contains(0.3658));
    let p = &r.predictions[0];
    assert!(
        p.tokens_per_param.lo < 21.0 && p.tokens_per_param.hi > 21.0,
        "{:?}",
        p.tokens_per_param
    );
    assert!(r.extrapolation.is_some(), "{:?}", r.warnings);
}

#[test]
fn muennighoff_data_constrained_refit() {
    use fit::data_constrained::{self, Base, ConstrainedObs, DataConstrainedLaw};
    let Some(path) = common::shared_data("data_constrained_scaling_law_data.csv") else {
        return;
    };
    // The table's `tokens` column holds the unique tokens and `unique_tokens` the tokens trained on
    // (run 2b855b9b, "2.8B parameters, 55B tokens, 9B unique", has tokens 9e9 and unique_tokens
    // 55e9; no row has tokens > unique_tokens): read them by meaning.
    let rows = common::csv_columns(&path, &["params", "unique_tokens", "tokens", "loss"]);
    assert!(rows.iter().all(|r| r[1] >= r[2]));
    let pts: Vec<ConstrainedObs> = rows
        .into_iter()
        .map(|r| ConstrainedObs {
            n: r[0],
            d: r[1],
            unique: r[2],
            loss: r[3],
        })
        .collect();
    assert_eq!(pts.len(), 182);
    // The paper fitted E, A, alpha = beta, B on C4 isoFLOP runs this table lacks, then R*_D and R*_N
    // on these runs with those held: the same second stage, on the same runs.
    let published = DataConstrainedLaw::published();
    let f = data_constrained::fit(&pts, Base::Held(published.base), 200, 0, 0.95).unwrap();
    eprintln!("{:?}\n{:?}", f.law, f.parameters);
    assert_eq!(f.bootstrap_succeeded, 200);
    for (name, want) in [("R*_D", published.r_star_d), ("R*_N", published.r_star_n)] {
        let e = &f.parameters[name];
        assert!(e.contains(want), "{name}: published {want}, lab {e:?}");
    }
    // The table does not pin R*_D: every decay slower than about 7 epochs fits it alike (the
    // published law's residuals are within 5% of the optimum's), and the fit says so.
    let rmse = |law: &DataConstrainedLaw| {
        (pts.iter()
            .map(|p| (law.loss(p) / p.loss).ln().powi(2))
            .sum::<f64>()
            / pts.len() as f64)
            .sqrt()
    };
    assert!(
        rmse(&published) < 1.05 * f.rmse_log,
        "{} vs {}",
        rmse(&published),
        f.rmse_log
    );
    assert_eq!(f.unidentified.len(), 1, "{:?}", f.unidentified);
    assert!(
        f.unidentified[0].starts_with("R*_D"),
        "{:?}",
        f.unidentified
    );
    // Both stages on this table alone (exponents tied, as the paper's): a law that fits these runs
    // better than the published one does.
    // Fitted on the smaller 80% of runs by compute, the law predicts the largest 20% (37 runs) to
    // 2.6%; Chinchilla's law on N and D alone, blind to repetition, to 5.5%: disjoint intervals.
    let x = data_constrained::extrapolation(&pts, Base::Tied, 0.95).unwrap();
    let blind = x.chinchilla.clone().unwrap();
    eprintln!("extrapolation: {:?}\n  chinchilla {blind:?}", x.law);
    assert_eq!(x.law.held_out_points, 37);
    assert!(
        x.law.mean_abs_rel_error.hi < blind.mean_abs_rel_error.lo,
        "{x:?}"
    );
    let own = data_constrained::fit(&pts, Base::Tied, 0, 0, 0.95).unwrap();
    eprintln!("tied: {:?} rmse {}", own.law, own.rmse_log);
    assert!(own.rmse_log < 0.8 * rmse(&published), "{}", own.rmse_log);
}

#[test]
fn clark_routed_lm_refit() {
    use fit::routed::{self, RoutedLaw, RoutedObs, Router};
    use std::collections::HashMap;
    let Some(path) = common::shared_data("moe_scaling_law_data.csv") else {
        return;
    };
    // Clark et al. 2022's routed-LM law on the runs of their main study: one expert per token (k = 1), routing every other
    // layer (R = 0.5), seed 42, no extra FLOPs; each run's last evaluation.
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |n: &str| header.iter().position(|h| *h == n).unwrap();
    let (id, step, loss, experts, n, k, freq, seed, flop, router) = (
        col("hyper_id"),
        col("step"),
        col("loss_validation"),
        col("num_experts"),
        col("dense_parameter_count"),
        col("k"),
        col("routing_frequency"),
        col("seed"),
        col("flop_increase"),
        col("router_type"),
    );
    let mut last: HashMap<String, (f64, String, RoutedObs)> = HashMap::new();
    for l in lines {
        let f: Vec<&str> = l.split(',').map(str::trim).collect();
        let num = |i: usize| f[i].parse::<f64>().ok();
        let (Some(k), Some(freq), Some(seed), Some(flop), Some(step)) =
            (num(k), num(freq), num(seed), num(flop), num(step))
        else {
            panic!("a row without its configuration: {l}");
        };
        // Evaluations without a validation loss are skipped.
        let (Some(n), Some(experts), Some(loss)) = (num(n), num(experts), num(loss)) else {
            continue;
        };
        if k != 1.0 || freq != 0.5 || seed != 42.0 || flop != 1.0 {
            continue;
        }
        let obs = RoutedObs { n, experts, loss };
        let e = last
            .entry(f[id].to_string())
            .or_insert((-1.0, f[router].to_string(), obs));
        if step > e.0 {
            *e = (step, f[router].to_string(), obs);
        }
    }
    for (name, router) in [
        ("S-Base", Router::SBase),
        ("RL-R", Router::RlR),
        ("Hash", Router::Hash),
    ] {
        let mut pts: Vec<(String, RoutedObs)> = last
            .iter()
            .filter(|(_, (_, r, _))| r == name || r == "Dense")
            .map(|(i, (_, _, o))| (i.clone(), *o))
            .collect();
        pts.sort_by(|a, b| a.0.cmp(&b.0));
        let pts: Vec<RoutedObs> = pts.into_iter().map(|p| p.1).collect();
        let f = routed::fit(&pts, 200, 0, 0.95).unwrap();
        let published = RoutedLaw::published(router);
        eprintln!(
            "{name}: {} runs, {:?}, rms {}",
            f.points, f.parameters, f.rms_log10
        );
        // Every published constant lies inside lab's 95% interval, and the size slope agrees to the
        // published precision (S-BASE: a -0.0830 against -0.082).
        for (p, want) in published.parameters() {
            assert!(
                f.parameters[p].contains(want),
                "{name} {p}: published {want}, lab {:?}",
                f.parameters[p]
            );
        }
        assert!(
            (f.law.a - published.a).abs() < 0.002,
            "{name}: a {}",
            f.law.a
        );
        assert!(f.rms_log10 < 0.004, "{name}: {}", f.rms_log10);
        assert!(f.unidentified.is_empty(), "{:?}", f.unidentified);
        // Fitted on the sizes below 1.3B, the law predicts the 1.3B runs within 2% on average.
        let x = routed::extrapolation(&pts, 0.95).unwrap();
        eprintln!("{name} extrapolation: {x:?}");
        assert_eq!(x.held_out_points, 10);
        assert!(x.mean_abs_rel_error.value < 0.025, "{x:?}");
    }
}

//! Every approach recovers the parameters of a known law from noisy synthetic data inside its reported
//! intervals, and the intervals shrink as points are added.

mod common;

use common::TRUTH;
use fit::approach1::Approach1Settings;
use fit::approach3::{Approach3Settings, StartGrid};
use fit::kaplan::KaplanJoint;
use fit::report::{fit_approach, Approach, ApproachReport, FitInput, FitOptions};
use fit::{ComputeOptimal, Estimate, FitError, Obs};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Multiplicative noise: loss * exp(sigma * z), z roughly standard normal (sum of 12 uniforms - 6).
fn noisy(loss: f64, sigma: f64, rng: &mut ChaCha8Rng) -> f64 {
    let z: f64 = (0..12).map(|_| rng.random::<f64>()).sum::<f64>() - 6.0;
    loss * (sigma * z).exp()
}

/// IsoFLOP table: `budgets` log-spaced budgets, `sizes` sizes per budget spread +-1.2 in ln N around
/// the true optimum.
fn isoflop_table(budgets: usize, sizes: usize, sigma: f64, seed: u64) -> Vec<Obs> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::new();
    for i in 0..budgets {
        let c = 1e18 * 10f64.powf(i as f64 * 3.0 / (budgets - 1) as f64);
        let centre = TRUTH.allocation(c).n_opt;
        for k in 0..sizes {
            let n = centre * (-1.2 + 2.4 * k as f64 / (sizes - 1) as f64).exp();
            let d = c / (6.0 * n);
            out.push(Obs {
                n,
                d,
                c,
                loss: noisy(TRUTH.loss(n, d), sigma, &mut rng),
                run: out.len() as u32,
            });
        }
    }
    out
}

fn options(bootstrap: usize) -> FitOptions {
    let small_grid = StartGrid {
        log_a: vec![5.0, 10.0],
        log_b: vec![5.0, 10.0],
        log_e: vec![0.0, 0.5],
        alpha: vec![0.2, 0.5],
        beta: vec![0.2, 0.5],
    };
    FitOptions {
        bootstrap,
        seed: 3,
        predict: vec![1e21],
        approach3: Approach3Settings {
            grid: small_grid,
            ..Approach3Settings::default()
        },
        // The synthetic curves follow the law at every point (no schedule left to anneal), so
        // approach 1 reads all of each curve, as Chinchilla's runs trained far allowed.
        approach1: Approach1Settings {
            from_run_fraction: 0.0,
            ..Approach1Settings::default()
        },
        ..FitOptions::default()
    }
}

fn width(e: &Estimate) -> f64 {
    e.hi - e.lo
}

fn fit(approach: Approach, finals: &[Obs], curves: Option<&[Obs]>) -> ApproachReport {
    fit_approach(approach, &FitInput { finals, curves }, &options(200)).unwrap()
}

#[test]
fn approach3_recovers_known_law_and_intervals_shrink() {
    let small = isoflop_table(4, 6, 0.01, 1);
    let large = isoflop_table(8, 12, 0.01, 2);
    let rs = fit(Approach::Approach3, &small, None);
    let rl = fit(Approach::Approach3, &large, None);
    for (name, truth) in [("alpha", TRUTH.alpha), ("beta", TRUTH.beta), ("E", TRUTH.e)] {
        for r in [&rs, &rl] {
            assert!(
                r.parameters[name].contains(truth),
                "{name}: {:?} vs {truth}",
                r.parameters[name]
            );
        }
        assert!(
            width(&rl.parameters[name]) < width(&rs.parameters[name]),
            "{name} interval did not shrink"
        );
    }
    assert!(rl.a.contains(TRUTH.exponents().0), "a {:?}", rl.a);
    assert!(rl.predictions[0]
        .n_opt
        .contains(TRUTH.allocation(1e21).n_opt));
    let x = rl.extrapolation.as_ref().unwrap();
    assert!(x.loss_mape.unwrap() < 0.03, "{x:?}");
}

#[test]
fn approach2_recovers_exponent_and_intervals_shrink() {
    let rs = fit(Approach::Approach2, &isoflop_table(4, 7, 0.005, 3), None);
    let rl = fit(Approach::Approach2, &isoflop_table(8, 13, 0.005, 4), None);
    let a = TRUTH.exponents().0;
    assert!(
        rs.a.contains(a) && rl.a.contains(a),
        "a: {:?} {:?} vs {a}",
        rs.a,
        rl.a
    );
    assert!(width(&rl.a) < width(&rs.a));
    let n = TRUTH.allocation(1e21).n_opt;
    assert!(
        rl.predictions[0].n_opt.contains(n),
        "{:?} vs {n}",
        rl.predictions[0].n_opt
    );
}

/// Training curves: `sizes` models, each trained to three lengths (as Hoffmann et al.'s approach 1
/// used several schedule lengths per size, so that runs end at several token counts), with curves of
/// up to 60 points from 2 to 400 tokens per parameter. Like seed-to-seed variation, the noise is
/// mostly per model (`sigma`, shared by its three runs), with a tenth of it per point.
fn curves(sizes: usize, sigma: f64, seed: u64) -> (Vec<Obs>, Vec<Obs>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut all, mut finals) = (Vec::new(), Vec::new());
    for size in 0..sizes {
        let n = 1e7 * 10f64.powf(3.0 * size as f64 / (sizes - 1) as f64);
        let offset = noisy(1.0, sigma, &mut rng);
        for length in [36, 48, 60] {
            let run = finals.len() as u32;
            for s in 0..length {
                let d = n * 2.0 * 200f64.powf(s as f64 / 59.0);
                let loss = noisy(TRUTH.loss(n, d) * offset, sigma / 10.0, &mut rng);
                let p = Obs {
                    n,
                    d,
                    c: 6.0 * n * d,
                    loss,
                    run,
                };
                all.push(p);
                if s + 1 == length {
                    finals.push(p);
                }
            }
        }
    }
    (all, finals)
}

#[test]
fn approach1_recovers_exponent_closer_with_more_sizes() {
    let (cs, fs) = curves(10, 0.002, 5);
    let (cl, fl) = curves(30, 0.002, 6);
    let rs = fit(Approach::Approach1, &fs, Some(&cs));
    let rl = fit(Approach::Approach1, &fl, Some(&cl));
    let a = TRUTH.exponents().0;
    // With the optimum located between sizes the fits give 0.5084 [0.5052, 0.5141] (10 sizes) and
    // 0.5145 [0.5051, 0.5166] (30) against 0.5139 (the winner's size alone, a staircase, gave 0.5056
    // [0.471, 0.509] and 0.5133 [0.462, 0.5136]). Resampling runs drops sizes: allow 0.01 beyond.
    let near = |e: &Estimate| e.lo - 0.01 <= a && a <= e.hi + 0.01;
    assert!(
        near(&rs.a) && near(&rl.a),
        "a: {:?} {:?} vs {a}",
        rs.a,
        rl.a
    );
    assert!(
        (rl.a.value - a).abs() < (rs.a.value - a).abs() && (rl.a.value - a).abs() < 0.01,
        "{:?} {:?}",
        rs.a,
        rl.a
    );
}

#[test]
fn kaplan_joint_law_recovered_inside_intervals() {
    let truth = KaplanJoint {
        n_c: 1e10,
        alpha_n: 0.2,
        d_c: 1e11,
        alpha_d: 0.25,
    };
    let table = |k: usize, seed| {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut out = Vec::new();
        for i in 0..k {
            for j in 0..k {
                let n = 1e6 * 1000f64.powf(i as f64 / (k - 1) as f64);
                let d = 1e8 * 1000f64.powf(j as f64 / (k - 1) as f64);
                let mut p = Obs::from_n_d(n, d, noisy(truth.loss(n, d), 0.01, &mut rng));
                p.run = out.len() as u32;
                out.push(p);
            }
        }
        out
    };
    let rs = fit(Approach::Kaplan, &table(5, 7), None);
    let rl = fit(Approach::Kaplan, &table(10, 8), None);
    for (name, t) in [
        ("joint_alpha_N", truth.alpha_n),
        ("joint_alpha_D", truth.alpha_d),
    ] {
        assert!(
            rs.parameters[name].contains(t) && rl.parameters[name].contains(t),
            "{name}"
        );
        assert!(
            width(&rl.parameters[name]) < width(&rs.parameters[name]),
            "{name} did not shrink"
        );
    }
}

#[test]
fn bootstrap_is_deterministic_for_a_seed() {
    let t = isoflop_table(4, 6, 0.01, 9);
    let a = fit(Approach::Approach3, &t, None);
    let b = fit(Approach::Approach3, &t, None);
    assert_eq!(a.a, b.a);
    assert_eq!(a.parameters, b.parameters);
}

#[test]
fn approach3_with_known_e_fits_the_rest_and_holds_e() {
    let t = isoflop_table(6, 9, 0.005, 11);
    let mut o = options(100);
    o.approach3.fixed_e = Some(TRUTH.e);
    let r = fit_approach(
        Approach::Approach3,
        &FitInput {
            finals: &t,
            curves: None,
        },
        &o,
    )
    .unwrap();
    let e = r.parameters["E"];
    assert!(
        (e.value - TRUTH.e).abs() < 1e-12
            && (e.lo - TRUTH.e).abs() < 1e-12
            && (e.hi - TRUTH.e).abs() < 1e-12
    );
    for (name, truth) in [("alpha", TRUTH.alpha), ("beta", TRUTH.beta)] {
        assert!(
            r.parameters[name].contains(truth),
            "{name}: {:?}",
            r.parameters[name]
        );
    }
    o.approach3.fixed_e = Some(10.0);
    let err = fit_approach(
        Approach::Approach3,
        &FitInput {
            finals: &t,
            curves: None,
        },
        &o,
    )
    .unwrap_err();
    assert!(err.to_string().contains("below every loss"), "{err}");
}

/// Final points and training curves (20 points from 2% of each run's tokens to the end, following
/// the law with 0.5% noise) of 24 runs in one of three designs of the same law.
fn design(kind: &str, seed: u64) -> (Vec<Obs>, Vec<Obs>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let nd: Vec<(f64, f64)> = match kind {
        "fixed-d" => (0..24).map(|i| (1e7 * 1.35f64.powi(i), 2e10)).collect(),
        "fixed-ratio" => (0..24)
            .map(|i| (1e7 * 1.35f64.powi(i), 20.0 * 1e7 * 1.35f64.powi(i)))
            .collect(),
        _ => isoflop_table(4, 6, 0.0, 0)
            .iter()
            .map(|p| (p.n, p.d))
            .collect(),
    };
    let (mut finals, mut all) = (Vec::new(), Vec::new());
    for (run, &(n, d)) in nd.iter().enumerate() {
        for s in 0..20 {
            let t = d * 50f64.powf(s as f64 / 19.0 - 1.0);
            let p = Obs {
                n,
                d: t,
                c: 6.0 * n * t,
                loss: noisy(TRUTH.loss(n, t), 0.005, &mut rng),
                run: run as u32,
            };
            all.push(p);
            if s == 19 {
                finals.push(p);
            }
        }
    }
    (finals, all)
}

#[test]
fn only_a_design_that_varies_n_and_d_apart_reports_an_exponent() {
    for kind in ["fixed-d", "fixed-ratio", "isoflop"] {
        let (finals, curves) = design(kind, 11);
        for approach in Approach::ALL {
            let input = FitInput {
                finals: &finals,
                curves: Some(&curves),
            };
            let r = fit_approach(approach, &input, &options(50));
            match (kind, r) {
                // Kaplan's method is biased on an isoFLOP design (0.73 here); identified is enough.
                ("isoflop", Ok(r)) => assert!(r.a.value > 0.3 && r.a.value < 0.8, "{:?}", r.a),
                ("isoflop", Err(e)) => panic!("{approach:?} on the isoFLOP design: {e}"),
                (_, Err(FitError::NotIdentified(why))) => {
                    assert!(!why.is_empty(), "{kind} {approach:?}")
                }
                (_, other) => panic!("{kind} {approach:?}: {:?}", other.map(|r| r.a)),
            }
        }
    }
}

/// The reported interval of approach 3's a (bootstrap hull profile) covers the true value in at least
/// 90% of 50 noisy replicates of a 4 x 6 isoFLOP design.
#[test]
fn approach3_exponent_intervals_cover_the_truth() {
    let truth = TRUTH.exponents().0;
    let mut covered = 0;
    let mut widths = Vec::new();
    for seed in 0..50 {
        let table = isoflop_table(4, 6, 0.01, 1000 + seed);
        let mut o = options(100);
        o.holdout_budgets = 0;
        o.seed = seed;
        let r = fit_approach(
            Approach::Approach3,
            &FitInput {
                finals: &table,
                curves: None,
            },
            &o,
        )
        .unwrap();
        covered += r.a.contains(truth) as usize;
        widths.push(width(&r.a));
    }
    widths.sort_by(f64::total_cmp);
    eprintln!("covered {covered} of 50; median width {:.3}", widths[25]);
    assert!(covered >= 45, "covered {covered} of 50");
}

#[test]
fn approach3_with_e_free_also_checks_extrapolation_with_e_held_at_a_known_floor() {
    let table = isoflop_table(6, 8, 0.01, 5);
    let input = FitInput {
        finals: &table,
        curves: None,
    };
    let mut opts = options(0);
    assert!(fit_approach(Approach::Approach3, &input, &opts)
        .unwrap()
        .extrapolation_at_floor
        .is_none());
    opts.known_floor = Some(TRUTH.e);
    let r = fit_approach(Approach::Approach3, &input, &opts).unwrap();
    let h = r.extrapolation_at_floor.as_ref().expect("floor-held check");
    assert_eq!(h.floor, TRUTH.e);
    // The same split as the free check, and on data from the law itself a small error.
    let free = r.extrapolation.as_ref().unwrap();
    assert_eq!(h.check.train_points, free.train_points);
    assert_eq!(h.check.held_out_points, free.held_out_points);
    assert!(h.check.loss_mape.unwrap() < 0.03, "{h:?}");
    // Approaches without a free E, or with E already held, get no second check.
    assert!(fit_approach(Approach::Approach2, &input, &opts)
        .unwrap()
        .extrapolation_at_floor
        .is_none());
    opts.approach3.fixed_e = Some(TRUTH.e);
    assert!(fit_approach(Approach::Approach3, &input, &opts)
        .unwrap()
        .extrapolation_at_floor
        .is_none());
}

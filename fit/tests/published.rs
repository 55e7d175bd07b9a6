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

//! Are the intervals calibrated on a sweep-like fixed design? Many noisy copies of one isoFLOP
//! design (4 budgets over 1.5 decades, 5 sizes each, one run per point, per-run noise of 2% in
//! ln L as lab's default sweep measures between seeds) give the sampling spread of each approach's
//! exponent a directly; each copy's 95% interval should cover the design's noise-free estimate in
//! about 95% of copies and be about as wide as that spread says. The noise bootstrap (fixed design)
//! is tested to be; the resampling bootstrap's coverage and widths are printed beside it.

mod common;

use common::TRUTH;
use fit::approach3::{Approach3Settings, StartGrid};
use fit::noise::{standard_normal, NoiseModel, NoiseSource};
use fit::report::{fit_approach, Approach, FitInput, FitOptions};
use fit::{ComputeOptimal, Obs};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// One run's noise in ln L.
const SIGMA: f64 = 0.02;
/// Noisy copies of the design.
const COPIES: u64 = 30;

/// The design's runs as curves (20 evaluations each, the last its final point) and their final
/// points. Each run's losses carry one factor exp(sigma z) (a seed moves a whole run); `sigma` 0
/// gives the noise-free design.
fn sweep(sigma: f64, seed: u64) -> (Vec<Obs>, Vec<Obs>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut curves, mut finals) = (Vec::new(), Vec::new());
    for i in 0..4 {
        let c = 1e18 * 10f64.powf(0.5 * i as f64);
        let centre = TRUTH.allocation(c).n_opt;
        for k in 0..5 {
            let n = centre * (-1.0 + 0.5 * k as f64).exp();
            let d = c / (6.0 * n);
            let run = finals.len() as u32;
            let factor = (sigma * standard_normal(&mut rng)).exp();
            for j in 1..=20 {
                let dj = d * j as f64 / 20.0;
                curves.push(Obs {
                    n,
                    d: dj,
                    c: 6.0 * n * dj,
                    loss: TRUTH.loss(n, dj) * factor,
                    run,
                });
            }
            finals.push(*curves.last().unwrap());
        }
    }
    (curves, finals)
}

fn options(noise: Option<f64>, seed: u64) -> FitOptions {
    let mut o = FitOptions {
        bootstrap: 200,
        seed,
        holdout_budgets: 0,
        approach3: Approach3Settings {
            grid: StartGrid {
                log_a: vec![5.0, 7.0],
                log_b: vec![6.0, 8.0],
                log_e: vec![0.0, 0.6],
                alpha: vec![0.3, 0.5],
                beta: vec![0.3, 0.5],
            },
            ..Approach3Settings::default()
        },
        noise: noise.map(|sd| NoiseModel::new(sd, NoiseSource::Given).unwrap()),
        ..FitOptions::default()
    };
    // As lab fits its own sweeps: the frontiers' floor held at the known E, approach 3's free.
    o.hold_e(Some(TRUTH.e));
    o.approach3.fixed_e = None;
    o
}

struct Calibration {
    covered: usize,
    median_width: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn sd(v: &[f64]) -> f64 {
    let m = v.iter().sum::<f64>() / v.len() as f64;
    (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
}

/// Coverage and width of one interval method over the copies, and the spread of a itself.
fn calibrate(approach: Approach, noise: Option<f64>) -> (Calibration, f64) {
    let fit = |curves: &[Obs], finals: &[Obs], seed: u64| {
        let input = FitInput {
            finals,
            curves: Some(curves),
        };
        fit_approach(approach, &input, &options(noise, seed)).unwrap()
    };
    let (c0, f0) = sweep(0.0, 0);
    let target = fit(&c0, &f0, 0).a.value;
    let (mut covered, mut widths, mut values) = (0, Vec::new(), Vec::new());
    for copy in 0..COPIES {
        let (c, f) = sweep(SIGMA, 100 + copy);
        let r = fit(&c, &f, copy);
        covered += r.a.contains(target) as usize;
        widths.push(r.a.hi - r.a.lo);
        values.push(r.a.value);
    }
    let cal = Calibration {
        covered,
        median_width: median(widths),
    };
    (cal, sd(&values))
}

/// The noise bootstrap covers in at least 80% of 30 copies (95% expected; 24 or fewer happens with
/// probability under 0.1% if the true coverage is 95%) and its median width is within a factor
/// 1.6 of 2 x 1.96 x the copies' own spread of a.
fn check(approach: Approach) {
    let (noise, spread) = calibrate(approach, Some(SIGMA));
    let (cases, _) = calibrate(approach, None);
    let ideal = 2.0 * 1.96 * spread;
    eprintln!(
        "{}: sd of a over {COPIES} copies {spread:.3} (ideal width {ideal:.3}); noise bootstrap: \
         covered {} of {COPIES}, median width {:.3}; resampling: covered {}, median width {:.3}",
        approach.name(),
        noise.covered,
        noise.median_width,
        cases.covered,
        cases.median_width
    );
    assert!(noise.covered >= 24, "covered {} of {COPIES}", noise.covered);
    let ratio = noise.median_width / ideal;
    assert!(
        (1.0 / 1.6..1.6).contains(&ratio),
        "width / ideal {ratio:.2}"
    );
}

#[test]
fn noise_bootstrap_is_calibrated_for_approach1() {
    check(Approach::Approach1);
}

#[test]
fn noise_bootstrap_is_calibrated_for_approach2() {
    check(Approach::Approach2);
}

#[test]
fn noise_bootstrap_is_calibrated_for_approach3() {
    check(Approach::Approach3);
}

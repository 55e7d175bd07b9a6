//! Times approach 3 on the Epoch AI Chinchilla table: the published 4,500-start grid, then 1,000
//! bootstrap refits. Run: `cargo run --release -p fit --example bench_approach3 [path/to/csv]`.

use fit::approach3::{self, Approach3Settings};
use fit::report::{fit_approach, Approach, FitInput, FitOptions};
use fit::ComputeOptimal;
use std::time::Instant;

fn main() {
    let path = std::env::args().nth(1).unwrap_or_else(|| {
        "../shared/data/public-scaling-runs/chinchilla_epoch_svg_extracted.csv".into()
    });
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let pts = fit::data::points_from_csv(&text, "Model Size", "Training FLOP", "loss")
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let pts = fit::data::drop_highest_loss(pts, 5);
    println!("threads: {}", rayon::current_num_threads());
    let t = Instant::now();
    let f = approach3::fit(&pts, &Approach3Settings::default()).unwrap();
    let grid_s = t.elapsed().as_secs_f64();
    let iters: u64 = f.optima.iter().map(|m| m.iters).sum();
    println!(
        "grid: {} starts, {} finite optima, {:.0} mean iterations, {grid_s:.2} s",
        f.starts,
        f.optima.len(),
        iters as f64 / f.optima.len() as f64
    );
    println!("law: {:?}  a = {:.4}", f.law, f.law.exponents().0);
    let t = Instant::now();
    let options = FitOptions {
        holdout_budgets: 0,
        predict: vec![1e21],
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
    let total_s = t.elapsed().as_secs_f64();
    println!(
        "grid + {} bootstraps ({} succeeded): {total_s:.2} s; a = {:.4} [{:.4}, {:.4}]",
        options.bootstrap, r.bootstrap.succeeded, r.a.value, r.a.lo, r.a.hi
    );
    println!(
        "SciPy reference (grid alone): about 120 s -> speed-up {:.0}x",
        120.0 / total_s
    );
}

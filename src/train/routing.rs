//! MoE routing state and figures: the selection biases of auxiliary-loss-free balancing (part of
//! the checkpoint) and the load-balance numbers recorded at every evaluation.

use models::moe::update_bias;
use models::{Balance, LayerStats, ModelConfig};

/// Zero selection biases, one per routed expert of every MoE layer, when the model balances by
/// bias; empty otherwise.
pub fn initial_biases(cfg: &ModelConfig) -> Vec<Vec<f32>> {
    match cfg.moe() {
        Some(m) if m.balance == Balance::Bias => vec![vec![0.0; m.experts()]; cfg.n_layer],
        _ => Vec::new(),
    }
}

/// Moves every layer's biases towards balance after a step with loads `stats`.
pub fn update_biases(cfg: &ModelConfig, biases: &mut [Vec<f32>], stats: &[LayerStats]) {
    let Some(m) = cfg.moe() else { return };
    for (b, s) in biases.iter_mut().zip(stats) {
        update_bias(b, &s.load, m.bias_rate);
    }
}

/// Adds a pass's per-layer statistics into a running total.
pub fn accumulate(total: &mut Vec<LayerStats>, pass: &[LayerStats]) {
    if total.len() < pass.len() {
        total.resize(pass.len(), LayerStats::default());
    }
    for (t, p) in total.iter_mut().zip(pass) {
        t.add(p);
    }
}

/// Load-balance figures of an evaluation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadFigures {
    /// Largest over layers of (busiest expert's load / mean load).
    pub max_mean_load: f64,
    /// Coefficient of variation of the loads, averaged over layers.
    pub load_cv: f64,
    /// Dropped assignments / all assignments.
    pub dropped_fraction: f64,
}

/// The figures of per-layer statistics; `None` for a dense model.
pub fn figures(stats: &[LayerStats]) -> Option<LoadFigures> {
    let layers: Vec<&LayerStats> = stats.iter().filter(|s| s.assignments() > 0).collect();
    if layers.is_empty() {
        return None;
    }
    let mut max_mean: f64 = 0.0;
    let mut cv_sum = 0.0;
    for s in &layers {
        let n = s.load.len() as f64;
        let mean = s.assignments() as f64 / n;
        let var = s
            .load
            .iter()
            .map(|&l| (l as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        max_mean = max_mean.max(*s.load.iter().max().unwrap_or(&0) as f64 / mean);
        cv_sum += var.sqrt() / mean;
    }
    let assigned: usize = layers.iter().map(|s| s.assignments()).sum();
    let dropped: usize = layers.iter().map(|s| s.dropped).sum();
    Some(LoadFigures {
        max_mean_load: max_mean,
        load_cv: cv_sum / layers.len() as f64,
        dropped_fraction: dropped as f64 / assigned as f64,
    })
}

/// Mean |b_i| over every layer and expert; `None` without bias balancing.
pub fn bias_magnitude(biases: &[Vec<f32>]) -> Option<f64> {
    let all: Vec<f64> = biases.iter().flatten().map(|b| b.abs() as f64).collect();
    (!all.is_empty()).then(|| all.iter().sum::<f64>() / all.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_of_known_loads() {
        let s = vec![
            LayerStats {
                load: vec![30, 10, 10, 10],
                dropped: 6,
            },
            LayerStats {
                load: vec![15, 15, 15, 15],
                dropped: 0,
            },
        ];
        let f = figures(&s).unwrap();
        // Layer 1: mean 15, max 30 -> 2.0; std sqrt((225 + 3*25)/4) = sqrt(75) = 8.66, cv 0.577.
        assert!((f.max_mean_load - 2.0).abs() < 1e-12);
        assert!((f.load_cv - 75f64.sqrt() / 15.0 / 2.0).abs() < 1e-12);
        assert!((f.dropped_fraction - 6.0 / 120.0).abs() < 1e-12);
        assert!(figures(&[]).is_none());
        assert_eq!(
            bias_magnitude(&[vec![0.5, -0.5], vec![0.0, 1.0]]),
            Some(0.5)
        );
        assert_eq!(bias_magnitude(&[]), None);
    }
}

//! The compute-optimal allocation every fit produces: N_opt(C), D_opt(C), tokens per parameter and loss.

use serde::{Deserialize, Serialize};

/// Compute-optimal model and data size at one compute budget.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Allocation {
    /// Compute budget in FLOPs.
    pub c: f64,
    /// Compute-optimal parameters.
    pub n_opt: f64,
    /// Compute-optimal tokens.
    pub d_opt: f64,
    /// Predicted loss at the optimum.
    pub loss: f64,
}

impl Allocation {
    /// D_opt / N_opt.
    pub fn tokens_per_param(&self) -> f64 {
        self.d_opt / self.n_opt
    }
}

/// A fitted law that can say how to spend a compute budget.
pub trait ComputeOptimal {
    /// Short name of the approach ("approach1", "approach2", "approach3", "kaplan").
    fn approach(&self) -> &'static str;
    /// The optimal allocation at compute `c`.
    fn allocation(&self, c: f64) -> Allocation;
    /// Exponents (a, b) of N_opt ~ C^a and D_opt ~ C^b.
    fn exponents(&self) -> (f64, f64);
    /// Every fitted parameter by name, for tables and bootstrap intervals.
    fn parameters(&self) -> Vec<(&'static str, f64)>;
    /// Predicted loss of a model of `n` parameters trained on `d` tokens, for laws of L(N, D).
    fn predict_loss(&self, _n: f64, _d: f64) -> Option<f64> {
        None
    }
    /// Whether this fit (typically a bootstrap refit) sits on a degenerate solution: by default,
    /// when N_opt does not grow with C or D_opt does not (a outside (0, 1)).
    fn degenerate(&self) -> bool {
        let (a, b) = self.exponents();
        !(a.is_finite() && b.is_finite() && a > 0.0 && b > 0.0)
    }
}

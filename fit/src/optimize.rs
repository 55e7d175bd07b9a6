//! L-BFGS minimisation (argmin, More-Thuente line search) of smooth objectives with analytic gradients,
//! from one start or from the best of many starts run in parallel.

use argmin::core::{
    CostFunction, Error as ArgminError, Executor, Gradient, State, TerminationReason,
    TerminationStatus,
};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::LBFGS;
use rayon::prelude::*;
use std::cell::RefCell;

/// An objective with an analytic gradient.
pub trait Objective: Sync {
    /// Objective value at x.
    fn value(&self, x: &[f64]) -> f64;
    /// Gradient at x.
    fn gradient(&self, x: &[f64]) -> Vec<f64> {
        self.value_gradient(x).1
    }
    /// Value and gradient in one pass (the line search asks for both at every trial point).
    fn value_gradient(&self, x: &[f64]) -> (f64, Vec<f64>);
}

/// Stopping rules for L-BFGS.
#[derive(Debug, Clone, Copy)]
pub struct LbfgsSettings {
    /// Maximum iterations per start.
    pub max_iters: u64,
    /// Stop when the gradient norm falls below this.
    pub tol_grad: f64,
    /// Stop when the relative change of the objective falls below this.
    pub tol_cost: f64,
    /// History length.
    pub memory: usize,
}

impl Default for LbfgsSettings {
    fn default() -> Self {
        LbfgsSettings {
            max_iters: 1000,
            tol_grad: 1e-10,
            tol_cost: 1e-13,
            memory: 10,
        }
    }
}

/// Where a minimisation ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Minimum {
    /// The start it came from.
    pub start: Vec<f64>,
    /// Best parameters found.
    pub x: Vec<f64>,
    /// Objective value there.
    pub value: f64,
    /// Iterations used.
    pub iters: u64,
    /// Whether a convergence criterion (not the iteration cap) stopped it.
    pub converged: bool,
}

/// A point with its objective value and gradient.
type Evaluated = (Vec<f64>, f64, Vec<f64>);

/// The objective as argmin sees it, remembering the last point so that a gradient asked for at the
/// point whose cost was just computed costs nothing more.
struct Problem<'a, O: Objective> {
    objective: &'a O,
    last: RefCell<Option<Evaluated>>,
}

impl<O: Objective> Problem<'_, O> {
    fn eval(&self, x: &[f64]) -> (f64, Vec<f64>) {
        if let Some((lx, v, g)) = self.last.borrow().as_ref() {
            if lx.as_slice() == x {
                return (*v, g.clone());
            }
        }
        let (v, g) = self.objective.value_gradient(x);
        *self.last.borrow_mut() = Some((x.to_vec(), v, g.clone()));
        (v, g)
    }
}

impl<O: Objective> CostFunction for Problem<'_, O> {
    type Param = Vec<f64>;
    type Output = f64;
    fn cost(&self, x: &Vec<f64>) -> Result<f64, ArgminError> {
        let v = self.eval(x).0;
        if v.is_finite() {
            Ok(v)
        } else {
            Err(ArgminError::msg("non-finite objective"))
        }
    }
}

impl<O: Objective> Gradient for Problem<'_, O> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;
    fn gradient(&self, x: &Vec<f64>) -> Result<Vec<f64>, ArgminError> {
        Ok(self.eval(x).1)
    }
}

/// Minimises `objective` from `start`; `None` when the objective is not finite at the start or the
/// solver fails without ever improving on it.
pub fn minimize<O: Objective>(
    objective: &O,
    start: &[f64],
    settings: &LbfgsSettings,
) -> Option<Minimum> {
    let v0 = objective.value(start);
    if !v0.is_finite() {
        return None;
    }
    let solver = LBFGS::new(MoreThuenteLineSearch::new(), settings.memory)
        .with_tolerance_grad(settings.tol_grad)
        .ok()?
        .with_tolerance_cost(settings.tol_cost)
        .ok()?;
    let problem = Problem {
        objective,
        last: RefCell::new(None),
    };
    let run = Executor::new(problem, solver)
        .configure(|s| s.param(start.to_vec()).max_iters(settings.max_iters))
        .run();
    let state = match run {
        Ok(res) => res.state,
        // A failed line search leaves no state: report the start itself as not converged.
        Err(_) => {
            return Some(Minimum {
                start: start.to_vec(),
                x: start.to_vec(),
                value: v0,
                iters: 0,
                converged: false,
            })
        }
    };
    let converged = matches!(
        state.get_termination_status(),
        TerminationStatus::Terminated(TerminationReason::SolverConverged)
    );
    let iters = state.get_iter();
    let x = state.best_param.clone().or(state.param.clone())?;
    let value = objective.value(&x);
    value.is_finite().then(|| Minimum {
        start: start.to_vec(),
        x,
        value,
        iters,
        converged,
    })
}

/// Minimises from every start in parallel and returns every finite result sorted by objective value
/// (ties broken by start order, so the result is deterministic).
pub fn minimize_all<O: Objective>(
    objective: &O,
    starts: &[Vec<f64>],
    settings: &LbfgsSettings,
) -> Vec<Minimum> {
    let mut found: Vec<(usize, Minimum)> = starts
        .par_iter()
        .enumerate()
        .filter_map(|(i, s)| minimize(objective, s, settings).map(|m| (i, m)))
        .collect();
    found.sort_by(|a, b| a.1.value.total_cmp(&b.1.value).then(a.0.cmp(&b.0)));
    found.into_iter().map(|(_, m)| m).collect()
}

/// Cartesian product of per-coordinate grids, in lexicographic order.
pub fn grid(axes: &[Vec<f64>]) -> Vec<Vec<f64>> {
    axes.iter().fold(vec![Vec::new()], |acc, axis| {
        acc.iter()
            .flat_map(|prefix| {
                axis.iter().map(move |&v| {
                    let mut p = prefix.clone();
                    p.push(v);
                    p
                })
            })
            .collect()
    })
}

/// `count` evenly spaced values from `from` to `to` inclusive.
pub fn linspace(from: f64, to: f64, count: usize) -> Vec<f64> {
    match count {
        0 => vec![],
        1 => vec![from],
        _ => (0..count)
            .map(|i| from + (to - from) * i as f64 / (count - 1) as f64)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Rosenbrock;
    impl Objective for Rosenbrock {
        fn value(&self, x: &[f64]) -> f64 {
            (1.0 - x[0]).powi(2) + 100.0 * (x[1] - x[0] * x[0]).powi(2)
        }
        fn value_gradient(&self, x: &[f64]) -> (f64, Vec<f64>) {
            (
                self.value(x),
                vec![
                    -2.0 * (1.0 - x[0]) - 400.0 * x[0] * (x[1] - x[0] * x[0]),
                    200.0 * (x[1] - x[0] * x[0]),
                ],
            )
        }
    }

    #[test]
    fn finds_rosenbrock_minimum() {
        let m = minimize(&Rosenbrock, &[-1.2, 1.0], &LbfgsSettings::default()).unwrap();
        assert!(
            (m.x[0] - 1.0).abs() < 1e-5 && (m.x[1] - 1.0).abs() < 1e-5,
            "{:?}",
            m.x
        );
    }

    #[test]
    fn grid_is_cartesian() {
        let g = grid(&[vec![0.0, 1.0], vec![5.0, 6.0, 7.0]]);
        assert_eq!(g.len(), 6);
        assert_eq!(g[4], vec![1.0, 6.0]);
        assert_eq!(linspace(0.0, 2.0, 5), vec![0.0, 0.5, 1.0, 1.5, 2.0]);
    }
}

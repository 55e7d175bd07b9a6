//! Errors raised by fits: every one says what is wrong with the input and how to fix it.

use thiserror::Error;

/// Why a fit could not be made.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum FitError {
    /// Fewer observations than the law needs.
    #[error("{law}: needs at least {needed} points, got {got}")]
    TooFewPoints {
        /// Which law or approach.
        law: &'static str,
        /// Minimum number of points.
        needed: usize,
        /// Number of points given.
        got: usize,
    },
    /// A value that must be positive and finite is not.
    #[error("point {} of the input: {column} = {value} is not a positive finite number", row + 1)]
    BadValue {
        /// Zero-based index of the offending point in the input (shown 1-based).
        row: usize,
        /// Column name (n, d, c or loss).
        column: &'static str,
        /// The offending value.
        value: f64,
    },
    /// No isoFLOP budget had enough distinct model sizes.
    #[error("approach 2: no compute budget has at least 3 distinct model sizes ({0})")]
    NoUsableBudget(String),
    /// The optimiser did not reach a finite optimum from any start.
    #[error("{0}: the optimiser did not converge from any start")]
    NoConvergence(&'static str),
    /// The data do not follow the law (e.g. loss does not fall with size).
    #[error("{0}")]
    NotFittable(String),
    /// The design of the runs cannot pin the law's parameters down (see `design`).
    #[error("not identified by this design: {0}")]
    NotIdentified(String),
    /// Settings that cannot work.
    #[error("invalid setting: {0}")]
    InvalidSetting(String),
}

/// Result alias for fits.
pub type FitResult<T> = Result<T, FitError>;

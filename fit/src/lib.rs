//! # fit — scaling-law fitting for lab
//!
//! Chinchilla approaches 1-3 and the Kaplan laws on any table of (N, D, C, loss), with bootstrap
//! intervals and an extrapolation check, and Tissue et al.'s schedule-aware law on loss curves. No
//! burn dependency: it builds in seconds and can be used on published tables as well as on lab's
//! own results.
//!
//! Definitions follow `DESIGN.md`; approach 3 minimises the summed Huber(delta = 1e-3) loss of
//! log L in log-sum-exp form with L-BFGS from the published grid of 4,500 starts.

pub mod allocation;
pub mod approach1;
pub mod approach2;
pub mod approach3;
pub mod bootstrap;
pub mod cost;
pub mod data;
pub mod data_constrained;
pub mod design;
pub mod emergence;
pub mod error;
pub mod extrapolate;
pub mod floor;
pub mod joint_moe;
pub mod kaplan;
pub mod krajewski;
pub mod loss_axis;
pub mod lr_rule;
pub mod noise;
pub mod optimize;
pub mod profile;
pub mod regression;
pub mod report;
pub mod resolution;
pub mod routed;
pub mod schedule_law;
pub mod subtasks;

pub use allocation::{Allocation, ComputeOptimal};
pub use bootstrap::Estimate;
pub use data::Obs;
pub use error::{FitError, FitResult};
pub use report::{fit_approach, Approach, ApproachReport, FitInput, FitOptions};

//! Sweeps: the YAML spec and its expansion, and the local executor.

pub mod executor;
pub mod spec;

//! Sweeps: the YAML spec and its expansion, the local executor and the Slurm launcher.

pub mod executor;
pub mod slurm;
pub mod spec;

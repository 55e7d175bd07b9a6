//! Sweeps: the YAML spec and its expansion, the local executor, the Slurm launcher,
//! and the learning-rate calibration plan of `lab tune`.

pub mod executor;
pub mod slurm;
pub mod spec;
pub mod tune;

//! # lab — a scaling-law and mixture-of-experts architecture laboratory
//!
//! The library behind the `lab` binary: run configuration, data, trainer, results store, table
//! reading and fit reports. See README.md for the CLI.

pub mod backend;
pub mod bench;
pub mod cli;
pub mod collect;
pub mod config;
pub mod data;
pub mod error;
pub mod fitreport;
pub mod results;
pub mod sweep;
pub mod table;
pub mod train;

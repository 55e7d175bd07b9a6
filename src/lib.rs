//! # lab — a scaling-law and mixture-of-experts architecture laboratory
//!
//! The library behind the `lab` binary: run configuration, data, trainer, results store, table
//! reading, fit reports, figures and the markdown report. See docs/cli.md for the CLI.

pub mod analyses;
pub mod backend;
pub mod bench;
pub mod cli;
pub mod collect;
pub mod config;
pub mod constrained_fit;
pub mod data;
pub mod emergence;
pub mod error;
pub mod export;
pub mod fitreport;
pub mod joint_moe_fit;
pub mod plot;
pub mod report;
pub mod report_html;
pub mod results;
pub mod routed_fit;
pub mod schedule_fit;
pub mod serve;
pub mod sweep;
pub mod table;
pub mod tasks;
pub mod tfevents;
pub mod train;

//! `lab serve`: the results browser.

use super::stop_on_signals;
use crate::error::LabResult;
use clap::Args;
use std::path::PathBuf;

/// Arguments of `lab serve`.
#[derive(Args)]
#[command(after_help = "Examples:
  lab serve                                  every sweep under results/, on http://127.0.0.1:8080/
  lab serve results --port 9000              another port (0 picks a free one and prints it)
  lab serve /scratch/results --bind 0.0.0.0  reachable from other machines (there is no login)

One page lists the sweeps with their state and an ETA while they run; per sweep, a runs table that
sorts and filters, the validation-loss curves (log axes, coloured by any column, values on hover),
the fits (fit/fit.md) and the figures. It follows a sweep while it writes (the page polls every
2 s; no reload needed) and only reads: Parquet and JSON as the CLI writes them. Ctrl-C stops it.")]
pub struct ServeArgs {
    /// Folder whose subfolders are sweeps' results (each with runs/).
    #[arg(default_value = "results")]
    pub root: PathBuf,
    /// Port to listen on (0: any free port).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: String,
    /// Requests answered at once.
    #[arg(long, default_value_t = 8)]
    pub threads: usize,
}

/// Runs `lab serve` until interrupted.
pub fn run(a: ServeArgs) -> LabResult<i32> {
    let stop = stop_on_signals()?;
    crate::serve::serve(&a.root, &a.bind, a.port, a.threads, stop)?;
    Ok(0)
}

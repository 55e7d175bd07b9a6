//! lab's error type: input errors (exit code 2) and everything else (exit code 1).

use std::path::{Path, PathBuf};
use thiserror::Error;

/// Errors that end a lab command.
#[derive(Debug, Error)]
pub enum LabError {
    /// The user's input is wrong: a config file, a flag, a table. Exit code 2.
    #[error("{}{}: {message}", file.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Input {
        /// The file (or flag) at fault.
        file: PathBuf,
        /// 1-based line, when known.
        line: Option<usize>,
        /// What is wrong, naming the key.
        message: String,
    },
    /// Anything else (I/O, a failed run). Exit code 1.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl LabError {
    /// An input error in `file`.
    pub fn input(file: impl AsRef<Path>, line: Option<usize>, message: impl Into<String>) -> Self {
        LabError::Input {
            file: file.as_ref().to_path_buf(),
            line,
            message: message.into(),
        }
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            LabError::Input { .. } => 2,
            LabError::Other(_) => 1,
        }
    }
}

impl From<std::io::Error> for LabError {
    fn from(e: std::io::Error) -> Self {
        LabError::Other(e.into())
    }
}

/// Result alias for lab commands.
pub type LabResult<T> = Result<T, LabError>;

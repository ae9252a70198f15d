//! Errors of the `wapo` commands. Each names what went wrong and where (the
//! config field, the file), so that `main` can print it and exit non-zero.

use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub enum CliError {
    /// A configuration field (from a file or a flag) is malformed or out of range.
    Config { field: String, reason: String },
    /// A file could not be read or written.
    Io { path: PathBuf, source: std::io::Error },
    /// A malformed run file (config, metrics, checkpoint).
    Format { path: PathBuf, reason: String },
    /// An error from the core or a backend.
    Core(wapo_core::Error),
    /// A chart could not be drawn.
    Plot { path: PathBuf, reason: String },
    /// A model, tokenizer or checkpoint file is malformed or could not be written.
    File(wapo_io::Error),
    /// Training stopped: updates kept turning NaN or infinite.
    Diverged { phase: &'static str, step: u64, reason: String },
    /// The run directory is in use by another run.
    Locked { path: PathBuf, reason: String },
}

pub type Result<T, E = CliError> = std::result::Result<T, E>;

impl CliError {
    pub fn config(field: impl Into<String>, reason: impl Into<String>) -> Self {
        CliError::Config { field: field.into(), reason: reason.into() }
    }

    pub fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CliError + '_ {
        move |source| CliError::Io { path: path.to_path_buf(), source }
    }

    pub fn format(path: &Path, reason: impl Into<String>) -> Self {
        CliError::Format { path: path.to_path_buf(), reason: reason.into() }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Config { field, reason } => write!(f, "config `{field}`: {reason}"),
            CliError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            CliError::Format { path, reason } => write!(f, "{}: {reason}", path.display()),
            CliError::Core(e) => write!(f, "{e}"),
            CliError::Plot { path, reason } => {
                write!(f, "plot {}: {reason}", path.display())
            }
            CliError::File(e) => write!(f, "{e}"),
            CliError::Diverged { phase, step, reason } => write!(f, "{phase} step {step}: {reason}"),
            CliError::Locked { path, reason } => write!(f, "{}: {reason}", path.display()),
        }
    }
}

impl std::error::Error for CliError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CliError::Io { source, .. } => Some(source),
            CliError::Core(e) => Some(e),
            CliError::File(e) => Some(e),
            _ => None,
        }
    }
}

impl From<wapo_core::Error> for CliError {
    fn from(e: wapo_core::Error) -> Self {
        match e {
            wapo_core::Error::Config { field, reason } => CliError::config(field, reason),
            other => CliError::Core(other),
        }
    }
}

impl CliError {
    /// Places a config error's field under `prefix` (`clip_eps` → `objective.clip_eps`).
    pub fn under(self, prefix: &str) -> Self {
        match self {
            CliError::Config { field, reason } if !field.starts_with(prefix) => {
                CliError::Config { field: format!("{prefix}.{field}"), reason }
            }
            other => other,
        }
    }
}

impl From<wapo_io::Error> for CliError {
    fn from(e: wapo_io::Error) -> Self {
        CliError::File(e)
    }
}

/// The exit code of a command: 0, or 2 with the error on stderr.
pub fn exit(result: Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

/// As [`exit`], for a command whose success has an exit code of its own
/// (`wapo loss --check`: 1 when a field is out of tolerance).
pub fn exit_with(result: Result<std::process::ExitCode>) -> std::process::ExitCode {
    match result {
        Ok(code) => code,
        Err(e) => exit(Err(e)),
    }
}

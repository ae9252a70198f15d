//! The one error of every reader and writer here: the file, the tensor or
//! key inside it when there is one, and what was wrong.

use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct Error {
    pub file: PathBuf,
    /// The tensor or metadata key (`blk.3.attn_q.weight`, `num_attention_heads`), if any.
    pub at: Option<String>,
    pub reason: String,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error about `file` as a whole.
    pub fn file(file: &Path, reason: impl Into<String>) -> Self {
        Error { file: file.to_path_buf(), at: None, reason: reason.into() }
    }

    /// An error about the tensor or key `at` inside `file`.
    pub fn at(file: &Path, at: impl Into<String>, reason: impl Into<String>) -> Self {
        Error { file: file.to_path_buf(), at: Some(at.into()), reason: reason.into() }
    }

    /// Wraps an I/O failure on `file`.
    pub fn io(file: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
        move |e| Error::file(file, e.to_string())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.at {
            Some(at) => write!(f, "{}: `{at}`: {}", self.file.display(), self.reason),
            None => write!(f, "{}: {}", self.file.display(), self.reason),
        }
    }
}

impl std::error::Error for Error {}

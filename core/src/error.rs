//! Typed errors. Nothing in the crate panics on user data: every malformed
//! input becomes one of these, naming the field and, where it has one, the
//! position (`[i]`, `[i][t]` or `[i][t][v]`).

use crate::shape::Shape;

pub type Result<T, E = Error> = core::result::Result<T, E>;

/// A position inside a field: up to three indices, outermost first.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Pos {
    idx: [usize; 3],
    rank: u8,
}

impl Pos {
    pub const NONE: Pos = Pos { idx: [0; 3], rank: 0 };
    pub const fn at1(i: usize) -> Pos {
        Pos { idx: [i, 0, 0], rank: 1 }
    }
    pub const fn at2(i: usize, t: usize) -> Pos {
        Pos { idx: [i, t, 0], rank: 2 }
    }
    pub const fn at3(i: usize, t: usize, v: usize) -> Pos {
        Pos { idx: [i, t, v], rank: 3 }
    }
    pub fn indices(&self) -> &[usize] {
        &self.idx[..self.rank as usize]
    }
}

impl core::fmt::Display for Pos {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for i in self.indices() {
            write!(f, "[{i}]")?;
        }
        Ok(())
    }
}

#[derive(Clone, PartialEq, Debug)]
#[non_exhaustive]
pub enum Error {
    /// A tensor argument has the wrong shape.
    Shape { field: &'static str, expected: Shape, got: Shape },
    /// A value that must be finite is NaN or infinite.
    NonFinite { field: &'static str, pos: Pos },
    /// A value is out of its domain (a mask that is not 0/1, a token id ≥ V, ...).
    Invalid { field: &'static str, pos: Pos, reason: &'static str },
    /// A configuration field is missing or out of range.
    Config { field: &'static str, reason: &'static str },
    /// The batch is empty (N = 0 or T = 0).
    Empty { field: &'static str },
    /// Two tensors of one call live on different devices or backends.
    Device(&'static str),
    /// A backend failure (device lost, out of memory, limit too small, ...).
    #[cfg(feature = "alloc")]
    Backend(alloc::string::String),
    /// A malformed case file (parse error with line/column, wrong type, ...).
    #[cfg(feature = "alloc")]
    Case { field: alloc::string::String, reason: alloc::string::String },
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::Shape { field, expected, got } => {
                write!(f, "`{field}`: expected shape {expected}, got {got}")
            }
            Error::NonFinite { field, pos } => {
                write!(f, "`{field}{pos}`: value is NaN or infinite")
            }
            Error::Invalid { field, pos, reason } => write!(f, "`{field}{pos}`: {reason}"),
            Error::Config { field, reason } => write!(f, "`config.{field}`: {reason}"),
            Error::Empty { field } => write!(f, "`{field}`: empty batch"),
            Error::Device(what) => write!(f, "device mismatch: {what}"),
            #[cfg(feature = "alloc")]
            Error::Backend(msg) => write!(f, "backend: {msg}"),
            #[cfg(feature = "alloc")]
            Error::Case { field, reason } => write!(f, "`{field}`: {reason}"),
        }
    }
}

impl core::error::Error for Error {}

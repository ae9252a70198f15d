//! Every error of the core becomes a `ValueError` whose message names the
//! field and the position (`` `logprobs[2][5]`: value is NaN or infinite ``).

use pyo3::PyErr;
use pyo3::exceptions::PyValueError;

pub fn value_error(e: wapo_core::Error) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// A `ValueError` about one argument.
pub fn bad(field: &str, what: impl core::fmt::Display) -> PyErr {
    PyValueError::new_err(format!("`{field}`: {what}"))
}

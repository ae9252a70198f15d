//! Reading the NumPy arguments: dtype, C order and shape are checked here
//! with the argument's name; values (0/1 mask, finiteness, token range) are
//! checked by the core, which names the position.

use numpy::{Element, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;

use crate::error::bad;

/// One argument, copied out of its NumPy buffer so that the computation can
/// run without the GIL while Python code may write to the array.
pub struct Array<E> {
    pub data: Vec<E>,
    pub shape: Vec<usize>,
}

pub fn read<E: Element + Copy>(field: &str, x: &Bound<'_, PyAny>) -> PyResult<Array<E>> {
    let dtype = numpy::dtype::<E>(x.py());
    let a: PyReadonlyArrayDyn<'_, E> = x.extract().map_err(|_| {
        let got = x.getattr("dtype").map(|d| d.to_string()).unwrap_or_else(|_| x.get_type().to_string());
        bad(field, format!("must be a NumPy array of dtype {dtype}, got {got}"))
    })?;
    let shape = a.shape().to_vec();
    let data = a.as_slice().map_err(|_| bad(field, "must be C-contiguous"))?.to_vec();
    Ok(Array { data, shape })
}

fn dims(shape: &[usize]) -> String {
    let d: Vec<String> = shape.iter().map(|x| x.to_string()).collect();
    format!("({})", d.join(", "))
}

impl<E> Array<E> {
    /// Checks the shape against `want`, whose names (`N`, `T`, `V`) say
    /// where each size comes from.
    pub fn expect(&self, field: &str, want: &[usize], names: &str) -> PyResult<()> {
        if self.shape != want {
            return Err(bad(field, format!("expected shape {names} = {}, got {}", dims(want), dims(&self.shape))));
        }
        Ok(())
    }
}

/// Group ids and token ids arrive as int64.
pub fn ids(field: &str, x: &Bound<'_, PyAny>) -> PyResult<Array<i64>> {
    read::<i64>(field, x)
}

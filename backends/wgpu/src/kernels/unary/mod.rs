//! Elementwise unary ops.

use wapo_core::{Result, Unary};

use super::{Mode, elementwise, elementwise_source};
use crate::launch::Kernel;
use crate::tensor::WgpuTensor;

const SOURCE: &str = elementwise_source!("unary.wgsl");

fn code(op: Unary) -> u32 {
    match op {
        Unary::Neg => 0,
        Unary::Exp => 1,
        Unary::Log => 2,
        Unary::Abs => 3,
        Unary::Sqr => 4,
        Unary::Sqrt => 5,
        Unary::Recip => 6,
        Unary::Positive => 7,
        Unary::IsZero => 8,
        Unary::IsFinite => 9,
        Unary::Floor => 10,
    }
}

pub(crate) fn unary(x: &WgpuTensor, op: Unary) -> Result<WgpuTensor> {
    let out = WgpuTensor::empty(&x.store.dev, x.shape)?;
    let kernel = Kernel { name: "unary", source: SOURCE, entry: "main", constants: vec![("OP", code(op))] };
    elementwise(&kernel, &[(x, Mode::Full)], &out)?;
    Ok(out)
}

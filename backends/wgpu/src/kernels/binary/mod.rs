//! Elementwise binary ops with HostTensor's broadcasting (full, per row or
//! scalar, on either operand).

use wapo_core::{Binary, Result};

use super::{Mode, bcast, elementwise, elementwise_source};
use crate::launch::Kernel;
use crate::tensor::WgpuTensor;

const SOURCE: &str = elementwise_source!("binary.wgsl");

fn code(op: Binary) -> u32 {
    match op {
        Binary::Add => 0,
        Binary::Sub => 1,
        Binary::Mul => 2,
        Binary::Div => 3,
        Binary::Max => 4,
        Binary::Min => 5,
        Binary::Lt => 6,
        Binary::Le => 7,
        Binary::Eq => 8,
        Binary::MaskMul => 9,
    }
}

/// `a ∘ value` (the shape of `a`), as `a.binary(&a.scalar(value), op)` computes it.
pub(crate) fn binary_scalar(a: &WgpuTensor, value: f64, op: Binary) -> Result<WgpuTensor> {
    let out = WgpuTensor::empty(&a.store.dev, a.shape)?;
    let kernel = Kernel { name: "binary", source: SOURCE, entry: "main", constants: vec![("OP", code(op))] };
    elementwise(&kernel, &[(a, Mode::Full), (a, Mode::Constant(value as f32))], &out)?;
    Ok(out)
}

pub(crate) fn binary(a: &WgpuTensor, b: &WgpuTensor, op: Binary) -> Result<WgpuTensor> {
    a.same_device(b)?;
    let shape = wapo_core::Shape::broadcast(&[a.shape, b.shape]);
    let modes: [Mode; 2] = [bcast(a.shape, shape, "lhs")?, bcast(b.shape, shape, "rhs")?];
    let out = WgpuTensor::empty(&a.store.dev, shape)?;
    let kernel = Kernel { name: "binary", source: SOURCE, entry: "main", constants: vec![("OP", code(op))] };
    elementwise(&kernel, &[(a, modes[0]), (b, modes[1])], &out)?;
    Ok(out)
}

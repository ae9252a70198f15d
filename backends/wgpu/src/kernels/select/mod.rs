//! `select(cond, a, b)` with HostTensor's broadcasting on all three operands.

use wapo_core::Result;

use super::{Mode, bcast, elementwise, elementwise_source};
use crate::launch::Kernel;
use crate::tensor::WgpuTensor;

const SOURCE: &str = elementwise_source!("select.wgsl");

pub(crate) fn select(cond: &WgpuTensor, a: &WgpuTensor, b: &WgpuTensor) -> Result<WgpuTensor> {
    cond.same_device(a)?;
    cond.same_device(b)?;
    let shape = wapo_core::Shape::broadcast(&[cond.shape, a.shape, b.shape]);
    let modes: [Mode; 3] =
        [bcast(cond.shape, shape, "cond")?, bcast(a.shape, shape, "a")?, bcast(b.shape, shape, "b")?];
    let out = WgpuTensor::empty(&cond.store.dev, shape)?;
    let kernel = Kernel { name: "select", source: SOURCE, entry: "main", constants: vec![] };
    elementwise(&kernel, &[(cond, modes[0]), (a, modes[1]), (b, modes[2])], &out)?;
    Ok(out)
}

//! `full` and `iota_last`.

use wapo_core::{Result, Shape};

use super::elementwise_source;
use crate::context::WgpuDevice;
use crate::launch::Kernel;
use crate::tensor::WgpuTensor;

const SOURCE: &str = elementwise_source!("fill.wgsl");

fn fill(dev: &WgpuDevice, shape: Shape, op: u32, value: f32) -> Result<WgpuTensor> {
    let out = WgpuTensor::empty(dev, shape)?;
    let kernel = Kernel { name: "fill", source: SOURCE, entry: "main", constants: vec![("OP", op)] };
    crate::kernels::elementwise_with(&kernel, &[], &out, value)?;
    Ok(out)
}

pub(crate) fn full(dev: &WgpuDevice, shape: Shape, value: f32) -> Result<WgpuTensor> {
    fill(dev, shape, 0, value)
}

pub(crate) fn iota_last(dev: &WgpuDevice, shape: Shape) -> Result<WgpuTensor> {
    fill(dev, shape, 1, 0.0)
}

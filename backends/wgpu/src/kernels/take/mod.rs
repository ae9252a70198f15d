//! `take`: per-segment values gathered back to the members.

use wapo_core::error::Pos;
use wapo_core::{Error, Result};

use super::index::first_bad_index;
use crate::launch::{Kernel, dispatch, kernel_params, whole};
use crate::tensor::WgpuTensor;

const SOURCE: &str = concat!(include_str!("../common.wgsl"), include_str!("take.wgsl"));

kernel_params! {
    /// P of take.wgsl.
    struct TakeParams {
        /// Elements of idx (and of the output).
        n: u32,
    }
}

pub(crate) fn take(x: &WgpuTensor, idx: &WgpuTensor) -> Result<WgpuTensor> {
    x.same_device(idx)?;
    if first_bad_index(idx, x.shape.numel())?.is_some() {
        return Err(Error::Invalid { field: "take index", pos: Pos::NONE, reason: "index out of range" });
    }
    let ctx = x.ctx();
    if idx.numel() * 4 > ctx.max_binding || x.numel() * 4 > ctx.max_binding {
        return Err(Error::Backend("take operands exceed one storage binding".into()));
    }
    let out = WgpuTensor::empty(&x.store.dev, idx.shape)?;
    let kernel = Kernel { name: "take", source: SOURCE, entry: "main", constants: vec![] };
    let n = idx.numel();
    let wins = [whole(0, x.buf()), whole(1, idx.buf()), whole(7, out.buf())];
    dispatch(ctx, &kernel, &wins, &TakeParams { n: n as u32 }, n.div_ceil(256))?;
    Ok(out)
}

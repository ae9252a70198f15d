//! The (9) clipped/bin counts on the device, so that a summary of a fused
//! evaluation downloads nine numbers once instead of reducing nine times.

use wapo_core::objective::Output;
use wapo_core::{Error, Result, Shape};

use crate::launch::{Kernel, dispatch, kernel_params, whole};
use crate::tensor::WgpuTensor;

const SOURCE: &str =
    concat!(include_str!("../common.wgsl"), include_str!("../lanes.wgsl"), include_str!("counts.wgsl"));

kernel_params! {
    /// P of counts.wgsl.
    struct CountsParams {
        /// (N, T) positions.
        n: u32,
    }
}

/// `[clipped, eligible × 4, kept × 4]` from the (N, T) tensors of `out`.
pub(crate) fn counts(out: &Output<WgpuTensor>) -> Result<WgpuTensor> {
    let ctx = out.mask.ctx();
    let n = out.mask.numel();
    if n * 4 > ctx.max_binding {
        return Err(Error::Backend("(N, T) tensors exceed one storage binding".into()));
    }
    let res = WgpuTensor::empty(&out.mask.store.dev, Shape::d1(9))?;
    let kernel = Kernel { name: "counts", source: SOURCE, entry: "main", constants: vec![] };
    let wins = [
        whole(0, out.clipped.single(super::OP)?),
        whole(1, out.bins.single(super::OP)?),
        whole(2, out.mask.single(super::OP)?),
        whole(3, out.keep.single(super::OP)?),
        whole(7, res.single(super::OP)?),
    ];
    dispatch(ctx, &kernel, &wins, &CountsParams { n: n as u32 }, 1)?;
    Ok(res)
}

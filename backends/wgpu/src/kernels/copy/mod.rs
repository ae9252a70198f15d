//! A plain copy kernel, the bandwidth yardstick of the benchmark.

use wapo_core::Result;

use crate::launch::{Kernel, dispatch, window};
use crate::tensor::WgpuTensor;

const SOURCE: &str = concat!(include_str!("../common.wgsl"), include_str!("copy.wgsl"));

/// Copies the first `4·⌊numel/4⌋` elements of `x` into `out`, in chunks that
/// fit one storage binding.
pub(crate) fn copy(x: &WgpuTensor, out: &WgpuTensor) -> Result<()> {
    x.same_device(out)?;
    let ctx = x.ctx();
    let kernel = Kernel { name: "copy", source: SOURCE, entry: "main", constants: vec![] };
    let total = x.numel().min(out.numel()) / 4 * 4;
    // Chunks start on 64 elements, so both windows start at their chunk.
    let chunk = (ctx.max_binding / 256 * 64).max(64);
    let mut e0 = 0;
    while e0 < total {
        let e1 = (e0 + chunk).min(total);
        let wins = [window(0, x.buf(), e0, e1), window(7, out.buf(), e0, e1)];
        let n4 = (e1 - e0) / 4;
        dispatch(ctx, &kernel, &wins, &[n4 as u32], n4.div_ceil(256))?;
        e0 = e1;
    }
    Ok(())
}

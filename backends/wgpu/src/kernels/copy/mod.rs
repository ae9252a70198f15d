//! A plain copy kernel, the bandwidth yardstick of the benchmark.

use wapo_core::Result;

use crate::launch::{Kernel, dispatch, kernel_params};
use crate::tensor::WgpuTensor;

const SOURCE: &str = concat!(include_str!("../common.wgsl"), include_str!("copy.wgsl"));

kernel_params! {
    /// P of copy.wgsl.
    struct CopyParams {
        /// vec4s (main) or f32s (main_scalar) to copy.
        n: u32,
        /// Element index of the first element in x's binding (a multiple of
        /// 4 for main, which indexes vec4s).
        x: u32,
        /// The same in out's binding.
        out: u32,
    }
}

/// Copies the first `4·⌊numel/4⌋` elements of `x` into `out` (any shapes),
/// in chunks that each fit one storage binding and lie in one buffer of each
/// tensor (tensors beyond `max_buffer_size` are held in several).
pub(crate) fn copy(x: &WgpuTensor, out: &WgpuTensor) -> Result<()> {
    x.same_device(out)?;
    let ctx = x.ctx();
    let total = x.numel().min(out.numel()) / 4 * 4;
    crate::launch::idx32(total)?;
    // Chunks start on 64 elements within their buffers unless a buffer
    // boundary cuts them, so that both windows usually start at the chunk.
    let chunk = (ctx.max_binding / 256 * 64).max(64);
    let mut e0 = 0;
    while e0 < total {
        let e1 = (e0 + chunk).min(total).min(x.segment_of(e0).2).min(out.segment_of(e0).2);
        let (n, xs, os) = (e1 - e0, x.window_at(0, e0, e1)?.1, out.window_at(7, e0, e1)?.1);
        let vec4 = n.is_multiple_of(4) && xs.is_multiple_of(4) && os.is_multiple_of(4);
        let (xw, _) = x.window_at(if vec4 { 0 } else { 1 }, e0, e1)?;
        let (ow, _) = out.window_at(if vec4 { 7 } else { 6 }, e0, e1)?;
        let kernel = Kernel {
            name: "copy",
            source: SOURCE,
            entry: if vec4 { "main" } else { "main_scalar" },
            constants: vec![],
        };
        let threads = if vec4 { n / 4 } else { n };
        let p = CopyParams { n: threads as u32, x: xs as u32, out: os as u32 };
        dispatch(ctx, &kernel, &[xw, ow], &p, threads.div_ceil(256))?;
        e0 = e1;
    }
    Ok(())
}

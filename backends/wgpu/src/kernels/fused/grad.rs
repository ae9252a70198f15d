//! Pass 2: ∂loss/∂logits, written once.

use wapo_core::{Error, Result};

use super::OP;
use crate::kernels::segment_row_chunks;
use crate::launch::{Kernel, dispatch, kernel_params, whole};
use crate::tensor::WgpuTensor;

const SOURCE: &str = concat!(include_str!("../common.wgsl"), include_str!("grad.wgsl"));

kernel_params! {
    /// P of grad.wgsl: one chunk of whole rows.
    struct GradParams {
        /// Elements in this chunk.
        n: u32,
        /// Vocabulary size V (the row length).
        v: u32,
        /// Window index of the chunk's first logit (a multiple of 4 for
        /// main_vec4, which indexes vec4s).
        z: u32,
        /// Global row of the chunk's first element: its index in tokens,
        /// shift and g, which are bound whole.
        row0: u32,
        /// 1/τ.
        inv_t: f32,
        /// Window index of the chunk's first gradient element (as `z`).
        out: u32,
    }
}

/// `logits` (N, T, V); `tokens`, the row statistics and `g` = (∂loss/∂ℓ)/τ (N, T).
pub(crate) fn grad_logits(
    logits: &WgpuTensor,
    tokens: &WgpuTensor,
    st: &super::stats::Stats,
    g: &WgpuTensor,
    inv_t: f32,
) -> Result<WgpuTensor> {
    let out = WgpuTensor::empty(&logits.store.dev, logits.shape)?; // (N, T, V)
    let rows = logits.shape.without_last().numel() as u64;
    grad_logits_at(logits, rows, tokens, st, g, 0, inv_t, &out)?;
    Ok(out)
}

/// ∂loss/∂z of the first `rows` rows of `logits` into the first rows of
/// `out` (both rows of V), for rows `row0 ..` of `tokens`, `st` and `g`:
/// one chunk of a larger batch whose logits are made a chunk at a time.
#[allow(clippy::too_many_arguments)]
pub(crate) fn grad_logits_at(
    logits: &WgpuTensor,
    rows: u64,
    tokens: &WgpuTensor,
    st: &super::stats::Stats,
    g: &WgpuTensor,
    row0: u64,
    inv_t: f32,
    out: &WgpuTensor,
) -> Result<()> {
    let v = logits.shape.last() as u64;
    let inside = rows * v <= logits.numel() && rows * v <= out.numel() && out.shape.last() as u64 == v;
    if !inside || row0 + rows > tokens.numel() || row0 + rows > g.numel() || 2 * (row0 + rows) > st.shift.numel() {
        return Err(Error::Backend(format!(
            "{OP}: rows {row0}..{} outside the logits, gradient or row data",
            row0 + rows
        )));
    }
    let vec4 = v.is_multiple_of(4);
    let kernel = Kernel {
        name: "fused_grad",
        source: SOURCE,
        entry: if vec4 { "main_vec4" } else { "main_scalar" },
        constants: vec![],
    };
    fn one(t: &WgpuTensor) -> Result<&wgpu::Buffer> {
        t.single(OP)
    }
    let (tok, shift, g) = (one(tokens)?, one(&st.shift)?, one(g)?);
    // Each chunk lies in one buffer of the logits and one of the gradient.
    for (r0, r1) in segment_row_chunks(logits.ctx(), &[(logits, v), (out, v)], rows, v, OP)? {
        let (e0, e1) = (r0 * v, r1 * v);
        let (zw, zs) = logits.window_at(if vec4 { 1 } else { 0 }, e0, e1)?;
        let (ow, os) = out.window_at(if vec4 { 6 } else { 5 }, e0, e1)?;
        let p = GradParams {
            n: (e1 - e0) as u32,
            v: v as u32,
            z: zs as u32,
            row0: (row0 + r0) as u32,
            inv_t,
            out: os as u32,
        };
        let threads = if vec4 { (e1 - e0) / 4 } else { e1 - e0 };
        let wins = [zw, whole(2, tok), whole(3, shift), whole(4, g), ow];
        dispatch(logits.ctx(), &kernel, &wins, &p, threads.div_ceil(256))?;
    }
    Ok(())
}

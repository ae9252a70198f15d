//! Pass 1: per-row statistics of the logits in one online pass over V.

use wapo_core::Result;

use super::OP;
use crate::kernels::{segment_row_chunks, threads_per_row};
use crate::launch::{Kernel, dispatch, whole};
use crate::tensor::WgpuTensor;

const SOURCE: &str =
    concat!(include_str!("../kernels/common.wgsl"), include_str!("../kernels/rows.wgsl"), include_str!("stats.wgsl"));

/// (N, T) tensors of one row-statistics pass.
pub(crate) struct Stats {
    /// Row max m and log Σ exp(x − m): lse = m + log_s0.
    pub max: WgpuTensor,
    pub log_s0: WgpuTensor,
    pub logp: WgpuTensor,
    pub entropy: WgpuTensor,
    pub sum_p_sq: WgpuTensor,
}

/// `logits` (N, T, V), `tokens` (N, T) already validated as ids in 0..V.
pub(crate) fn row_stats(logits: &WgpuTensor, tokens: &WgpuTensor, inv_t: f32) -> Result<Stats> {
    let dev = &logits.store.dev;
    let rows_shape = logits.shape.without_last();
    let v = logits.shape.last() as u64;
    let rows = rows_shape.numel() as u64;
    let new = || WgpuTensor::empty(dev, rows_shape);
    let st = Stats { max: new()?, log_s0: new()?, logp: new()?, entropy: new()?, sum_p_sq: new()? };
    let vec4 = v.is_multiple_of(4);
    // Each thread takes about four vec4 loads of a row (or four scalars).
    let tpr = threads_per_row(if vec4 { v / 4 } else { v });
    let kernel = Kernel {
        name: "fused_stats",
        source: SOURCE,
        entry: if vec4 { "main_vec4" } else { "main_scalar" },
        constants: vec![("TPR", tpr)],
    };
    fn one(t: &WgpuTensor) -> Result<&wgpu::Buffer> {
        t.single(OP)
    }
    let (tok, max, log_s0) = (one(tokens)?, one(&st.max)?, one(&st.log_s0)?);
    let (logp, ent, sps) = (one(&st.logp)?, one(&st.entropy)?, one(&st.sum_p_sq)?);
    // Each chunk lies in one buffer of the logits.
    for (r0, r1) in segment_row_chunks(logits.ctx(), &[(logits, v)], rows, v, OP)? {
        let (zw, zs) = logits.window_at(if vec4 { 1 } else { 0 }, r0 * v, r1 * v)?;
        let params = [(r1 - r0) as u32, v as u32, zs as u32, r0 as u32, inv_t.to_bits()];
        let wins = [zw, whole(2, tok), whole(3, max), whole(7, log_s0), whole(4, logp), whole(5, ent), whole(6, sps)];
        let groups = (r1 - r0).div_ceil(256 / tpr as u64);
        dispatch(logits.ctx(), &kernel, &wins, &params, groups)?;
    }
    Ok(st)
}

//! Pass 1: per-row statistics of the logits in one online pass over V.

use wapo_core::Result;

use crate::kernels::{row_chunks, threads_per_row};
use crate::launch::{Kernel, dispatch, whole, window};
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
    for (r0, r1) in row_chunks(logits.ctx(), rows, v)? {
        let zw = window(if vec4 { 1 } else { 0 }, logits.buf(), r0 * v, r1 * v);
        let params = [(r1 - r0) as u32, v as u32, (r0 * v - zw.base) as u32, r0 as u32, inv_t.to_bits()];
        let wins = [
            zw,
            whole(2, tokens.buf()),
            whole(3, st.max.buf()),
            whole(7, st.log_s0.buf()),
            whole(4, st.logp.buf()),
            whole(5, st.entropy.buf()),
            whole(6, st.sum_p_sq.buf()),
        ];
        let groups = (r1 - r0).div_ceil(256 / tpr as u64);
        dispatch(logits.ctx(), &kernel, &wins, &params, groups)?;
    }
    Ok(st)
}

//! Pass 1: per-row statistics of the logits in one online pass over V.

use wapo_core::{Error, Result, Shape};

use super::OP;
use crate::context::WgpuDevice;
use crate::kernels::{segment_row_chunks, threads_per_row};
use crate::launch::{Kernel, dispatch, kernel_params, whole};
use crate::tensor::WgpuTensor;

const SOURCE: &str = concat!(include_str!("../common.wgsl"), include_str!("../lanes.wgsl"), include_str!("stats.wgsl"));

kernel_params! {
    /// P of stats.wgsl: one chunk of whole rows.
    struct StatsParams {
        /// Rows in this chunk.
        rows: u32,
        /// Vocabulary size V (the row length).
        v: u32,
        /// Window index of the chunk's first logit (a multiple of 4 for
        /// main_vec4, which indexes vec4s).
        z: u32,
        /// Index of the chunk's first row in tokens and the per-row
        /// outputs, which are bound whole.
        row0: u32,
        /// 1/τ.
        inv_t: f32,
    }
}

/// The tensors of one row-statistics pass.
pub(crate) struct Stats {
    /// (2·N·T): per row the max m of the raw logits, then
    /// log Σ exp((z − m)/τ); lse = m/τ + log Σe. One buffer, so that the
    /// stats kernel stays within 7 storage bindings.
    pub shift: WgpuTensor,
    /// (N, T) each.
    pub logp: WgpuTensor,
    pub entropy: WgpuTensor,
    pub sum_p_sq: WgpuTensor,
    pub sum_p_sq_logp: WgpuTensor,
}

impl Stats {
    /// Uninitialised outputs for `rows` rows (every row is written by a pass
    /// before it is read).
    pub(crate) fn new(dev: &WgpuDevice, rows: Shape) -> Result<Self> {
        let new = || WgpuTensor::empty(dev, rows);
        let shift = WgpuTensor::empty(dev, Shape::d1(2 * rows.numel()))?;
        Ok(Stats { shift, logp: new()?, entropy: new()?, sum_p_sq: new()?, sum_p_sq_logp: new()? })
    }
}

/// `logits` (N, T, V), `tokens` (N, T) already validated as ids in 0..V.
pub(crate) fn row_stats(logits: &WgpuTensor, tokens: &WgpuTensor, inv_t: f32) -> Result<Stats> {
    let rows_shape = logits.shape.without_last();
    let st = Stats::new(&logits.store.dev, rows_shape)?;
    row_stats_at(logits, rows_shape.numel() as u64, tokens, &st, 0, inv_t)?;
    Ok(st)
}

/// The statistics of the first `rows` rows of `logits` (rows of its last
/// dimension V), written into rows `row0 ..` of `st`, whose tokens are
/// `tokens[row0 ..]`: one chunk of a larger batch whose logits are made
/// and consumed a chunk at a time.
pub(crate) fn row_stats_at(
    logits: &WgpuTensor,
    rows: u64,
    tokens: &WgpuTensor,
    st: &Stats,
    row0: u64,
    inv_t: f32,
) -> Result<()> {
    let v = logits.shape.last() as u64;
    if rows * v > logits.numel() || row0 + rows > st.logp.numel() || row0 + rows > tokens.numel() {
        return Err(Error::Backend(format!(
            "{OP}: rows {row0}..{} of {} outside the logits, tokens or statistics",
            row0 + rows,
            st.logp.numel()
        )));
    }
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
    let (tok, shift) = (one(tokens)?, one(&st.shift)?);
    let (logp, ent, sps, spsl) = (one(&st.logp)?, one(&st.entropy)?, one(&st.sum_p_sq)?, one(&st.sum_p_sq_logp)?);
    // Each chunk lies in one buffer of the logits.
    for (r0, r1) in segment_row_chunks(logits.ctx(), &[(logits, v)], rows, v, OP)? {
        let (zw, zs) = logits.window_at(if vec4 { 1 } else { 0 }, r0 * v, r1 * v)?;
        let p = StatsParams { rows: (r1 - r0) as u32, v: v as u32, z: zs as u32, row0: (row0 + r0) as u32, inv_t };
        let wins = [zw, whole(2, tok), whole(3, shift), whole(4, logp), whole(5, ent), whole(6, sps), whole(7, spsl)];
        let groups = (r1 - r0).div_ceil(256 / tpr as u64);
        dispatch(logits.ctx(), &kernel, &wins, &p, groups)?;
    }
    Ok(())
}

//! Reductions over the last axis (sum, max, log-sum-exp): a group of threads
//! per row, rows processed in chunks that fit one storage binding.

use wapo_core::{Reduce, Result, Tensor};

use super::{segment_row_chunks, threads_per_row};
use crate::context::BIND_ALIGN;
use crate::launch::{Kernel, dispatch, kernel_params, window};
use crate::tensor::WgpuTensor;

const SOURCE: &str =
    concat!(include_str!("../common.wgsl"), include_str!("../lanes.wgsl"), include_str!("reduce.wgsl"));

kernel_params! {
    /// P of reduce.wgsl: one chunk of rows.
    struct ReduceParams {
        /// Rows in this chunk.
        rows: u32,
        /// Row length C (of a segment, for rows reduced in segments).
        c: u32,
        /// Window indices of the chunk's first input element and output.
        x: u32,
        out: u32,
    }
}

/// Rows longer than this are reduced in segments: one workgroup per row
/// would serialize them, and lavapipe miscomputes loops of 2^16 iterations
/// per thread.
const LONG_ROW: u64 = 1 << 20;

fn kernel(op: Reduce, tpr: u32) -> Kernel {
    let code = match op {
        Reduce::Sum => 0,
        Reduce::Max => 1,
        Reduce::LogSumExp => 2,
    };
    Kernel { name: "reduce", source: SOURCE, entry: "main", constants: vec![("OP", code), ("TPR", tpr)] }
}

/// Rows longer than one binding or [`LONG_ROW`]: each row is reduced in segments that fit,
/// into (rows, segments) partials, which are reduced again. Sum of sums, max
/// of maxima and log-sum-exp of log-sum-exps are exact recombinations.
fn long_rows(x: &WgpuTensor, op: Reduce, c: u64, rows: u64) -> Result<WgpuTensor> {
    let ctx = x.ctx();
    let xbuf = x.single("reduce_last over rows beyond one storage binding")?;
    let seg = ((ctx.max_binding - BIND_ALIGN) / 4).min(LONG_ROW);
    let nseg = c.div_ceil(seg);
    let partial = WgpuTensor::empty(&x.store.dev, wapo_core::Shape::d2(rows as usize, nseg as usize))?;
    let k = kernel(op, 256);
    for r in 0..rows {
        for s in 0..nseg {
            let (j0, j1) = (r * c + s * seg, (r * c + (s + 1) * seg).min((r + 1) * c));
            let xin = window(0, xbuf, j0, j1);
            let at = r * nseg + s;
            let o = window(7, partial.buf(), at, at + 1);
            let p = ReduceParams { rows: 1, c: (j1 - j0) as u32, x: (j0 - xin.base) as u32, out: (at - o.base) as u32 };
            dispatch(ctx, &k, &[xin, o], &p, 1)?;
        }
    }
    partial.reduce_last(op)?.reshape(x.shape.without_last())
}

pub(crate) fn reduce_last(x: &WgpuTensor, op: Reduce) -> Result<WgpuTensor> {
    let c = x.shape.last() as u64;
    let rows = x.shape.without_last().numel() as u64;
    let out = WgpuTensor::empty(&x.store.dev, x.shape.without_last())?;
    if c == 0 {
        // Reducing nothing: the identity of each op.
        let id = if op == Reduce::Sum { 0.0 } else { f32::NEG_INFINITY };
        return crate::kernels::fill::full(&x.store.dev, out.shape, id);
    }
    if c > LONG_ROW || c * 4 + BIND_ALIGN > x.ctx().max_binding {
        return long_rows(x, op, c, rows);
    }
    let tpr = threads_per_row(c);
    let kernel = kernel(op, tpr);
    for (r0, r1) in segment_row_chunks(x.ctx(), &[(x, c), (&out, 1)], rows, c, "reduce_last")? {
        let (xin, xs) = x.window_at(0, r0 * c, r1 * c)?;
        let (o, os) = out.window_at(7, r0, r1)?;
        let p = ReduceParams { rows: (r1 - r0) as u32, c: c as u32, x: xs as u32, out: os as u32 };
        let groups = (r1 - r0).div_ceil(256 / tpr as u64);
        dispatch(x.ctx(), &kernel, &[xin, o], &p, groups)?;
    }
    Ok(out)
}

//! The LM head and [`Policy::forward_stats`](wapo_core::rl::Policy::forward_stats)
//! on the device, in chunks of rows, so that the (N·T, V) logits never
//! exist (at V = 49,152 they would be the largest buffer of a step, and
//! their gradient the same again), nor cross to the host. The CPU's
//! `model/head.rs` is the same design.
//!
//! Forward: per chunk, the head GEMM of the chunk's rows of the final
//! norm's output, then the fused objective's row-statistics kernel; only
//! the (N·T) statistics come back. What the kernel saves per row (the max
//! and log-sum) stays on the device. Backward: per chunk, the logits once
//! more, ∂loss/∂z = g/τ·(1[v = y] − p) with the fused gradient kernel from
//! those saved rows, then ∂hidden for the chunk's rows and ∂W_head +=
//! ∂zᵀ·hidden. Tied embeddings need nothing more: the head's range is the
//! embedding's, so its gradient adds into the embedding's.

use wapo_core::rl::TokenStats;
use wapo_core::{Error, Result, Shape, Tensor};

use super::block::Net;
use super::forward::Acts;
use crate::context::BIND_ALIGN;
use crate::kernels::fused::grad::grad_logits_at;
use crate::kernels::fused::stats::{Stats, row_stats_at};
use crate::kernels::matmul::{Gemm, gemm};
use crate::kernels::{View, alloc};
use crate::tensor::WgpuTensor;

/// Bytes of logits one chunk holds. The backward holds a chunk's gradient
/// too, so the head's working memory is about twice this whatever the
/// batch (341 rows at V = 49,152); chunks this large keep the head GEMM's
/// tiles as full as one GEMM over all rows would.
const CHUNK_BYTES: u64 = 64 << 20;

/// What the backward of one [`head_stats`] needs: its temperature, tokens
/// and chunking, and the per-row shift of the stats kernel.
pub(crate) struct HeadStats {
    pub temperature: f64,
    pub completions: Vec<u32>,
    /// (N·T) the completion ids, as the kernels read them.
    tokens: WgpuTensor,
    st: Stats,
    /// Rows per chunk.
    rows: usize,
}

pub(crate) fn check_temperature(t: f64) -> Result<()> {
    if t.is_finite() && t > 0.0 {
        Ok(())
    } else {
        Err(Error::Config { field: "temperature", reason: "must be a finite number > 0" })
    }
}

/// Rows per chunk for vocabulary `v`: `want` (default [`CHUNK_BYTES`]
/// worth), at least 1, at most what one storage binding holds.
fn chunk_rows(net: Net<'_>, v: usize, want: Option<usize>) -> usize {
    let row = 4 * v.max(1) as u64;
    let fit = net.dev.max_binding.saturating_sub(BIND_ALIGN) / row;
    let want = want.unwrap_or((CHUNK_BYTES / row) as usize);
    want.min(fit as usize).max(1)
}

/// The statistics under softmax(z/τ) of every scored row of the training
/// forward `acts` (made without logits) at the completion tokens (N·T ids,
/// already checked to be < V), `chunk` rows of logits at a time (`None`:
/// the default size).
pub(crate) fn head_stats(
    net: Net<'_>,
    acts: &Acts,
    completions: &[u32],
    tau: f64,
    chunk: Option<usize>,
) -> Result<(TokenStats, HeadStats)> {
    check_temperature(tau)?;
    let (dev, v, ns) = (net.dev, net.cfg.vocab, acts.ns);
    if completions.len() != ns {
        return Err(Error::Shape { field: "completions", expected: Shape::d1(ns), got: Shape::d1(completions.len()) });
    }
    let ids: Vec<f64> = completions.iter().map(|&y| f64::from(y)).collect();
    let tokens = WgpuTensor::upload(dev, &ids, Shape::d1(ns))?;
    let st = Stats::new(dev, Shape::d1(ns))?;
    let rows = chunk_rows(net, v, chunk);
    let z = WgpuTensor::empty(dev, Shape::d2(rows.min(ns).max(1), v))?;
    let inv_t = (1.0 / tau) as f32;
    for lo in (0..ns).step_by(rows) {
        let n = rows.min(ns - lo);
        head_logits(net, acts, &z, lo, n)?;
        row_stats_at(&z, n as u64, &tokens, &st, lo as u64, inv_t)?;
    }
    let out = TokenStats {
        logprobs: st.logp.to_vec()?,
        entropy: st.entropy.to_vec()?,
        sum_p_sq: st.sum_p_sq.to_vec()?,
        sum_p_sq_logp: st.sum_p_sq_logp.to_vec()?,
    };
    Ok((out, HeadStats { temperature: tau, completions: completions.to_vec(), tokens, st, rows }))
}

/// Accumulates the head's weight gradient into `grads` from ∂loss/∂ℓ
/// `grad_logprobs` (N·T) and returns ∂loss/∂(the head's input rows)
/// (N·T, C), for the same `acts` that [`head_stats`] made `head` from.
pub(crate) fn head_backward(
    net: Net<'_>,
    grads: &WgpuTensor,
    acts: &Acts,
    head: &HeadStats,
    grad_logprobs: &[f32],
) -> Result<WgpuTensor> {
    let (dev, c, v, ns) = (net.dev, net.cfg.channels, net.cfg.vocab, acts.ns);
    if grad_logprobs.len() != ns || head.completions.len() != ns {
        return Err(Error::Shape {
            field: "grad_logprobs",
            expected: Shape::d1(ns),
            got: Shape::d1(grad_logprobs.len()),
        });
    }
    let inv_t = 1.0 / head.temperature;
    let g: Vec<f64> = grad_logprobs.iter().map(|&x| f64::from(x) * inv_t).collect();
    let g = WgpuTensor::upload(dev, &g, Shape::d1(ns))?;
    let rows = head.rows;
    let chunk = Shape::d2(rows.min(ns).max(1), v);
    let (z, dz) = (WgpuTensor::empty(dev, chunk)?, WgpuTensor::empty(dev, chunk)?);
    let dsel = alloc(dev, ns * c)?;
    let (w, dw) = (net.p(&net.lay.lm_head), View::range(grads, &net.lay.lm_head));
    for lo in (0..ns).step_by(rows) {
        let n = rows.min(ns - lo);
        head_logits(net, acts, &z, lo, n)?;
        grad_logits_at(&z, n as u64, &head.tokens, &head.st, &g, lo as u64, inv_t as f32, &dz)?;
        let dzv = View::at(&dz, 0, (n * v) as u64);
        let hidden = View::at(&acts.lnf_sel, (lo * c) as u64, (n * c) as u64);
        let dhidden = View::at(&dsel, (lo * c) as u64, (n * c) as u64);
        gemm(dhidden, dzv, w, None, Gemm { m: n, n: c, k: v, a_t: false, b_t: false, accumulate: false })?;
        gemm(dw, dzv, hidden, None, Gemm { m: v, n: c, k: n, a_t: true, b_t: false, accumulate: true })?;
    }
    Ok(dsel)
}

/// The logits of scored rows `lo .. lo + n` into the first rows of `z`.
fn head_logits(net: Net<'_>, acts: &Acts, z: &WgpuTensor, lo: usize, n: usize) -> Result<()> {
    let (c, v) = (net.cfg.channels, net.cfg.vocab);
    let hidden = View::at(&acts.lnf_sel, (lo * c) as u64, (n * c) as u64);
    let out = View::at(z, 0, (n * v) as u64);
    gemm(
        out,
        hidden,
        net.p(&net.lay.lm_head),
        None,
        Gemm { m: n, n: v, k: c, a_t: false, b_t: true, accumulate: false },
    )
}

#[cfg(test)]
mod tests;

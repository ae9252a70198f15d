//! The LM head and the token statistics in row chunks, so that the (N·T, V)
//! logits never exist at once (at V = 49,152 they would be the largest
//! buffer of a step, and their gradient the same again). The forward keeps,
//! per scored row, the row's max and log-sum; the backward recomputes each
//! chunk's logits, turns ∂loss/∂ℓ into ∂loss/∂z = g/τ·(1[v = y] − p) with
//! the fused objective's row kernel, and takes the head's matmul backward
//! chunk by chunk.
//!
//! Under a truncating [`Processing`] each row goes through the core's
//! truncation rule instead (the sampler's own), in f64: the forward's
//! statistics are those of the renormalized kept set, and the backward
//! recomputes the kept set from the same chunk's logits rather than
//! keeping it (it can hold most of the vocabulary under top-p).

use rayon::prelude::*;

use super::block::{Net, zeroed};
use super::forward::Acts;
use crate::kernels::fused::{grad_row, row_stats};
use crate::kernels::{matmul_backward, matmul_forward};
use wapo_core::rl::truncate::{Truncated, truncated_stats};
use wapo_core::rl::{Processing, TokenStats};

/// Rows of logits computed at once: 256 × V floats (50 MB at V = 49,152).
const CHUNK: usize = 256;

/// The statistics of every scored row of the last body forward; keeps what
/// [`head_backward`] needs in `acts`.
pub fn head_stats(net: Net<'_>, acts: &mut Acts, processing: Processing, scratch: &mut Vec<f32>) -> TokenStats {
    let (c, v) = (net.cfg.channels, net.cfg.vocab);
    if processing.truncates(v) {
        return truncated_head_stats(net, acts, processing, scratch);
    }
    let w = &net.params[net.lay.lm_head.clone()];
    let inv_t = (1.0 / processing.temperature) as f32;
    let ns = acts.sel.len();
    acts.head_stats.clear();
    for lo in (0..ns).step_by(CHUNK) {
        let hi = (lo + CHUNK).min(ns);
        let z = zeroed(scratch, (hi - lo) * v);
        matmul_forward(z, &acts.lnf_sel[lo * c..hi * c], w, &[], c, v);
        let targets = &acts.targets[lo..hi];
        let chunk: Vec<_> =
            z.par_chunks(v).zip(targets.par_iter()).map(|(row, &y)| row_stats(row, y as usize, inv_t)).collect();
        acts.head_stats.extend(chunk);
    }
    TokenStats {
        logprobs: acts.head_stats.iter().map(|s| s.logp).collect(),
        entropy: acts.head_stats.iter().map(|s| s.entropy).collect(),
        sum_p_sq: acts.head_stats.iter().map(|s| s.sum_p_sq).collect(),
        sum_p_sq_logp: acts.head_stats.iter().map(|s| s.sum_p_sq_logp).collect(),
    }
}

/// [`head_stats`] under truncation: the rows' statistics of the kept set.
/// Nothing is kept for the backward, which recomputes the kept sets.
fn truncated_head_stats(net: Net<'_>, acts: &mut Acts, processing: Processing, scratch: &mut Vec<f32>) -> TokenStats {
    let (c, v) = (net.cfg.channels, net.cfg.vocab);
    let w = &net.params[net.lay.lm_head.clone()];
    let ns = acts.sel.len();
    acts.head_stats.clear();
    let mut out = TokenStats::default();
    for lo in (0..ns).step_by(CHUNK) {
        let hi = (lo + CHUNK).min(ns);
        let z = zeroed(scratch, (hi - lo) * v);
        matmul_forward(z, &acts.lnf_sel[lo * c..hi * c], w, &[], c, v);
        let targets = &acts.targets[lo..hi];
        let chunk: Vec<_> = z
            .par_chunks(v)
            .zip(targets.par_iter())
            .map(|(row, &y)| truncated_stats(row, y as usize, processing))
            .collect();
        out.logprobs.extend(chunk.iter().map(|s| s.logp as f32));
        out.entropy.extend(chunk.iter().map(|s| s.entropy as f32));
        out.sum_p_sq.extend(chunk.iter().map(|s| s.sum_p_sq as f32));
        out.sum_p_sq_logp.extend(chunk.iter().map(|s| s.sum_p_sq_logp as f32));
    }
    out
}

/// Accumulates the head's weight gradient from ∂loss/∂ℓ (N·T) and returns
/// ∂loss/∂(the head's input rows) (N·T, C).
pub fn head_backward(
    net: Net<'_>,
    acts: &Acts,
    grads: &mut [f32],
    grad_logprobs: &[f32],
    processing: Processing,
    scratch: &mut [Vec<f32>; 2],
) -> Vec<f32> {
    let (c, v) = (net.cfg.channels, net.cfg.vocab);
    let truncates = processing.truncates(v);
    let head = net.lay.lm_head.clone();
    let w = &net.params[head.clone()];
    let inv_t = (1.0 / processing.temperature) as f32;
    let ns = acts.sel.len();
    let mut dsel = vec![0.0f32; ns * c];
    let [zs, dzs] = scratch;
    for lo in (0..ns).step_by(CHUNK) {
        let hi = (lo + CHUNK).min(ns);
        let z = zeroed(zs, (hi - lo) * v);
        matmul_forward(z, &acts.lnf_sel[lo * c..hi * c], w, &[], c, v);
        let dz = zeroed(dzs, (hi - lo) * v);
        dz.par_chunks_mut(v).zip(z.par_chunks(v)).enumerate().for_each(|(j, (d, row))| {
            let i = lo + j;
            let y = acts.targets[i] as usize;
            if truncates {
                // ∂ℓ/∂z_v = (1[v = y] − p̃_v)/τ on the kept set, 0 elsewhere
                // (`d` comes zeroed).
                let c = grad_logprobs[i] as f64 / processing.temperature;
                if let Some(t) = Truncated::new(row, processing) {
                    for (k, g) in t.grad(y, c) {
                        d[k] = g as f32;
                    }
                }
                return;
            }
            // ∂ℓ/∂z_v = (1[v = y] − p_v)/τ.
            grad_row(row, d, y, inv_t, acts.head_stats[i], grad_logprobs[i] * inv_t);
        });
        matmul_backward(
            &mut dsel[lo * c..hi * c],
            &mut grads[head.clone()],
            &mut [],
            dz,
            &acts.lnf_sel[lo * c..hi * c],
            w,
            c,
            v,
        );
    }
    dsel
}

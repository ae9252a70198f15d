//! The fused logits-level objective: the override of
//! `Tensor::logits_objective` for [`WgpuTensor`].
//!
//! The (N, T, V) work is two kernels: [`stats`] reads the logits once for
//! lse, ℓ, H, Σp² and Σp²·log p (so that no caller downloads the logits for
//! the taxonomy); [`grad`] reads them once more and writes ∂loss/∂z once.
//! Between them, the per-sequence quantities (advantages, keep mask, weights,
//! D, GSPO's s_i, ∂loss/∂ℓ) come from the core's token-level engine run on
//! the host in f64 (the core's `HostTensor<f64>`, the oracle itself) on the
//! small (N)/(N, T) tensors, so every objective and option has exactly the
//! composed path's meaning. On the GPU
//! that engine is some 140 tiny dispatches, each a fixed cost of the driver
//! whatever its size; on the host it is a few passes over N·T numbers.
//!
//! A call is therefore two dispatches (per binding window of the logits) and
//! one read-back: the inputs (group ids, rewards, mask, tokens, behaviour
//! log-probs) and the stats pass's ℓ and Σp² come back together in
//! [`small::Small::download`]. The input checks of `check_logits_batch` run on
//! those host copies (shapes before any dispatch), with the same errors and
//! positions; the logits themselves are never downloaded. The results go
//! back in one packed queue write (no wait): g = (∂loss/∂ℓ)/τ for the grad
//! kernel and the [`Output`]'s small tensors. The (9) clipped/bin counts need
//! only the (N, T) keep mask, bins and clip flags, so they are summed on the
//! host too ([`small::counts`]) and uploaded with the rest.
//!
//! The host engine's cost grows with N·T while the device's is nearly fixed,
//! so beyond [`HOST_ENGINE_MAX`] positions the engine runs as device
//! primitives instead ([`engine_on_device`], with the [`counts`] kernel):
//! ~140 dispatches and two validation read-backs, the same meaning in f32.

mod counts;
pub(crate) mod grad;
mod small;
pub(crate) mod stats;

use wapo_core::host::HostTensor;
use wapo_core::logits::{LogitsBatch, check_logits_batch, sampled_logit_error};
use wapo_core::objective::{Output, token_objective};
use wapo_core::{ObjectiveConfig, Result, Shape, Tensor};

use crate::tensor::WgpuTensor;

/// Positions (N·T) up to which the per-sequence engine runs on the host.
/// Measured on an H200 machine's host: the engine alone takes ~0.2 ms at
/// 4096 positions, ~0.7 ms at 16,384 and ~4 ms at 65,536 (with its
/// transfers the whole call at 65,536 × 64 took ~8 ms), while the device
/// primitives cost a near-constant ~4–5 ms; the two meet around here.
const HOST_ENGINE_MAX: usize = 32_768;

/// The op named by errors of a fused evaluation.
const OP: &str = "logits_objective";

pub(crate) fn logits_objective(cfg: &ObjectiveConfig, b: &LogitsBatch<'_, WgpuTensor>) -> Result<Output<WgpuTensor>> {
    cfg.validate()?;
    let v = small::check_shapes(b)?;
    if b.tokens.numel() > HOST_ENGINE_MAX as u64 {
        return engine_on_device(cfg, b);
    }
    let inv_t = (1.0 / cfg.temperature) as f32;
    // Token ids are checked after this pass, on the read-back: the kernel
    // clamps them into the row, and a bad one fails the call below.
    let st = stats::row_stats(b.logits, b.tokens, inv_t)?;
    let host = small::Small::download(b, &st)?;
    host.check_values(v)?;
    // A non-finite ℓ at a real token fails the engine's validation; it is
    // reported at its cause, `logits[i][t][y]`.
    let h = token_objective(cfg, &host.batch()).map_err(|e| sampled_logit_error(e, &host.tokens))?;

    let dev = &b.logits.store.dev;
    // Every result goes up in one packed queue write (no wait).
    let mut packed: Vec<f32> = Vec::with_capacity(10 * h.mask.data().len());
    let mut ups: Vec<(WgpuTensor, usize, usize)> = Vec::with_capacity(12);
    let mut up = |shape: Shape, data: &mut dyn Iterator<Item = f64>| -> Result<WgpuTensor> {
        let t = WgpuTensor::empty(dev, shape)?;
        let start = packed.len();
        packed.extend(data.map(|x| x as f32));
        ups.push((t.clone(), start, packed.len() - start));
        Ok(t)
    };
    let mut put = |x: &HostTensor<f64>| up(x.shape(), &mut x.data().iter().copied());
    let g = put(&h.grad_logprobs.mul_scalar(1.0 / cfg.temperature)?)?; // (N, T) (∂loss/∂ℓ)/τ
    let advantages = put(&h.advantages)?;
    let weights = put(&h.weights)?;
    let normalizer = put(&h.normalizer)?;
    let loss_sum = put(&h.loss_sum)?;
    let loss = put(&h.loss)?;
    let grad_logprobs = put(&h.grad_logprobs)?;
    let ratio = put(&h.ratio)?;
    let keep = put(&h.keep)?;
    let clipped = put(&h.clipped)?;
    let bins = put(&h.bins)?;
    let counts = up(Shape::d1(9), &mut small::counts(&h).into_iter())?;
    let parts = ups.iter().map(|(t, s, n)| Ok((t.single(OP)?, *s, *n))).collect::<Result<Vec<_>>>()?;
    crate::transfer::write_f32_packed(b.logits.ctx(), &packed, &parts)?;
    Ok(Output {
        advantages,
        weights,
        normalizer,
        loss_sum,
        loss,
        grad_logprobs,
        grad_logits: Some(grad::grad_logits(b.logits, b.tokens, &st, &g, inv_t)?),
        logprobs: st.logp.clone(),
        entropy: Some(st.entropy.clone()),
        sum_p_sq: Some(st.sum_p_sq.clone()),
        sum_p_sq_logp: Some(st.sum_p_sq_logp.clone()),
        ratio,
        keep,
        mask: b.mask.clone(),
        clipped,
        bins,
        counts: Some(counts),
    })
}

/// The same evaluation with the engine as device primitives (~140 dispatches
/// and two validation read-backs), for batches beyond [`HOST_ENGINE_MAX`].
pub(crate) fn engine_on_device(cfg: &ObjectiveConfig, b: &LogitsBatch<'_, WgpuTensor>) -> Result<Output<WgpuTensor>> {
    cfg.validate()?;
    check_logits_batch(b)?;
    let inv_t = (1.0 / cfg.temperature) as f32;
    let st = stats::row_stats(b.logits, b.tokens, inv_t)?;
    let tok = wapo_core::objective::TokenBatch {
        groups: b.groups,
        rewards: b.rewards,
        mask: b.mask,
        logprobs: &st.logp,
        old_logprobs: b.old_logprobs,
        sum_p_sq: Some(&st.sum_p_sq),
    };
    let mut out = token_objective(cfg, &tok).map_err(|e| sampled_logit_error(e, b.tokens))?;
    let g = out.grad_logprobs.mul_scalar(1.0 / cfg.temperature)?; // (N, T)
    out.grad_logits = Some(grad::grad_logits(b.logits, b.tokens, &st, &g, inv_t)?);
    out.entropy = Some(st.entropy);
    out.sum_p_sq_logp = Some(st.sum_p_sq_logp);
    out.counts = Some(counts::counts(&out)?);
    Ok(out)
}

#[cfg(test)]
mod tests;

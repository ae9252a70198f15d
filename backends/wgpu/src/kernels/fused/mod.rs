//! The fused logits-level objective: the override of
//! `Tensor::logits_objective` for [`WgpuTensor`].
//!
//! The (N, T, V) work is two kernels: [`stats`] reads the logits once for
//! lse, ℓ, H, Σp² and Σp²·log p (so that no caller downloads the logits for
//! the taxonomy); [`grad`] reads them once more and writes ∂loss/∂z once.
//! Between them, the per-sequence quantities (advantages, keep mask,
//! weights, D, GSPO's s_i, ∂loss/∂ℓ) come from [`engine`]: three WGSL
//! kernels that carry the core's token-level engine for every objective and
//! option. A call is five dispatches, a few buffer copies and one read-back
//! of the input-check flags at the end; nothing waits in between.
//!
//! The input checks of `check_logits_batch` run as flags on the device
//! (shapes on the host before any dispatch). When a flag is set, the call
//! runs the host engine ([`host_engine`]): it reads the small tensors
//! back and runs the core's engine in f64 on them, which reports the error
//! with its position and the same message as the composed path. The logits
//! themselves are never downloaded.
//!
//! Batches beyond 8192 rows (the kernels' group lookup grows as N²) or
//! whose (N, T) planes exceed one storage binding run the engine as device
//! primitives instead ([`engine_on_device`], with the [`counts`] kernel):
//! ~140 dispatches and two validation read-backs, the same meaning.

mod counts;
mod engine;
pub(crate) mod grad;
mod small;
pub(crate) mod stats;

use wapo_core::host::HostTensor;
use wapo_core::logits::{LogitsBatch, check_logits_batch, sampled_logit_error};
use wapo_core::objective::{Output, token_objective};
use wapo_core::{ObjectiveConfig, Result, Shape, Tensor};

use crate::tensor::WgpuTensor;

/// The op named by errors of a fused evaluation.
const OP: &str = "logits_objective";

pub(crate) fn logits_objective(cfg: &ObjectiveConfig, b: &LogitsBatch<'_, WgpuTensor>) -> Result<Output<WgpuTensor>> {
    cfg.validate()?;
    let v = small::check_shapes(b)?;
    let (n, t) = (b.mask.shape.rows() as u64, b.mask.shape.last() as u64);
    if !engine::fits(b, n, t) {
        return engine_on_device(cfg, b);
    }
    let inv_t = (1.0 / cfg.temperature) as f32;
    // The stats kernel clamps token ids into the row; the engine flags a
    // bad one, and the host engine then reports it.
    let st = stats::row_stats(b.logits, b.tokens, inv_t)?;
    let e = engine::run(cfg, b, &st, v)?;
    let r = e.results(b.mask.shape)?;
    let grad_logits = grad::grad_logits(b.logits, b.tokens, &st, &r.g, inv_t)?;
    if !e.inputs_valid()? {
        return host_engine(cfg, b, &st, v);
    }
    Ok(Output {
        advantages: r.advantages,
        weights: r.weights,
        normalizer: r.normalizer,
        loss_sum: r.loss_sum,
        loss: r.loss,
        grad_logprobs: r.grad_logprobs,
        grad_logits: Some(grad_logits),
        logprobs: st.logp.clone(),
        entropy: Some(st.entropy.clone()),
        sum_p_sq: Some(st.sum_p_sq.clone()),
        sum_p_sq_logp: Some(st.sum_p_sq_logp.clone()),
        ratio: r.ratio,
        keep: r.keep,
        mask: b.mask.clone(),
        clipped: r.clipped,
        bins: r.bins,
        counts: Some(r.counts),
    })
}

/// The same evaluation with the per-sequence engine run on the host in f64
/// (the core's `HostTensor<f64>`, the oracle itself) on read-back copies of
/// the small (N)/(N, T) tensors: the path whose errors are the composed
/// path's, with positions, for a batch the device flagged.
pub(crate) fn host_engine(
    cfg: &ObjectiveConfig,
    b: &LogitsBatch<'_, WgpuTensor>,
    st: &stats::Stats,
    v: usize,
) -> Result<Output<WgpuTensor>> {
    let inv_t = (1.0 / cfg.temperature) as f32;
    let host = small::Small::download(b, st)?;
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
        grad_logits: Some(grad::grad_logits(b.logits, b.tokens, st, &g, inv_t)?),
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
/// and two validation read-backs), for batches the kernels do not take.
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

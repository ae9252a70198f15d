//! The fused logits-level objective: the override of
//! `Tensor::logits_objective` for [`WgpuTensor`].
//!
//! The (N, T, V) work is two kernels: [`stats`] reads the logits once for
//! lse, ℓ, H and Σp²; [`grad`] reads them once more and writes ∂loss/∂z once.
//! Between them, the per-sequence quantities (advantages, keep mask, weights,
//! D, GSPO's s_i) come from the core's token-level engine on the small
//! (N)/(N, T) tensors, so every objective and option has exactly the
//! composed path's meaning.

mod counts;
mod grad;
mod stats;

use wapo_core::logits::{LogitsBatch, check_logits_batch, sampled_logit_error};
use wapo_core::objective::{Output, TokenBatch, token_objective};
use wapo_core::{ObjectiveConfig, Result, Tensor};

use crate::tensor::WgpuTensor;

pub(crate) fn logits_objective(cfg: &ObjectiveConfig, b: &LogitsBatch<'_, WgpuTensor>) -> Result<Output<WgpuTensor>> {
    cfg.validate()?;
    check_logits_batch(b)?;
    let inv_t = (1.0 / cfg.temperature) as f32;
    let st = stats::row_stats(b.logits, b.tokens, inv_t)?;
    let tok = TokenBatch {
        groups: b.groups,
        rewards: b.rewards,
        mask: b.mask,
        logprobs: &st.logp,
        old_logprobs: b.old_logprobs,
        sum_p_sq: Some(&st.sum_p_sq),
    };
    // A non-finite ℓ at a real token fails the engine's one validation round
    // trip; it is reported at its cause, `logits[i][t][y]`.
    let mut out = token_objective(cfg, &tok).map_err(|e| sampled_logit_error(e, b.tokens))?;
    let g = out.grad_logprobs.mul_scalar(1.0 / cfg.temperature)?; // (N, T)
    out.grad_logits = Some(grad::grad_logits(b.logits, b.tokens, &st, &g, inv_t)?);
    out.entropy = Some(st.entropy);
    out.counts = Some(counts::counts(&out)?);
    Ok(out)
}

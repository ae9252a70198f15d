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

use wapo_core::error::Pos;
use wapo_core::logits::{LogitsBatch, check_logits_batch};
use wapo_core::objective::{Output, TokenBatch, token_objective};
use wapo_core::{Error, ObjectiveConfig, Result, Tensor, Unary};

use crate::tensor::WgpuTensor;

pub(crate) fn logits_objective(cfg: &ObjectiveConfig, b: &LogitsBatch<'_, WgpuTensor>) -> Result<Output<WgpuTensor>> {
    cfg.validate()?;
    check_logits_batch(b)?;
    let inv_t = (1.0 / cfg.temperature) as f32;
    let st = stats::row_stats(b.logits, b.tokens, inv_t)?;
    check_sampled(&st.logp, b.mask, b.tokens)?;
    let tok = TokenBatch {
        groups: b.groups,
        rewards: b.rewards,
        mask: b.mask,
        logprobs: &st.logp,
        old_logprobs: b.old_logprobs,
        sum_p_sq: Some(&st.sum_p_sq),
    };
    let mut out = token_objective(cfg, &tok)?;
    let g = out.grad_logprobs.mul_scalar(1.0 / cfg.temperature)?; // (N, T)
    out.grad_logits = Some(grad::grad_logits(b.logits, b.tokens, &st, &g, inv_t)?);
    out.entropy = Some(st.entropy);
    out.counts = Some(counts::counts(&out)?);
    Ok(out)
}

/// A non-finite ℓ at a real token: the composed path's error, at `logits[i][t][y]`.
fn check_sampled(logp: &WgpuTensor, mask: &WgpuTensor, tokens: &WgpuTensor) -> Result<()> {
    let bad = logp.unary(Unary::IsFinite)?.unary(Unary::IsZero)?.mul(mask)?; // (N, T)
    if bad.sum_all()?.item()? == 0.0 {
        return Ok(());
    }
    let flags = bad.to_vec()?;
    let Some(first) = flags.iter().position(|v| *v != 0.0) else {
        return Ok(());
    };
    let t_len = bad.shape.last();
    let y = tokens.to_vec()?.get(first).map_or(0, |y| *y as usize);
    Err(Error::Invalid {
        field: "logits",
        pos: Pos::at3(first / t_len, first % t_len, y),
        reason: "the sampled token of a real (mask = 1) position has a −inf, NaN or +inf logit (or its row does)",
    })
}

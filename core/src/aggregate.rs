//! Aggregation (`OBJECTIVE.md` §5): per-sequence weights w_i and the
//! normalizer D, so that loss = (1/D) · Σ_i w_i · Σ_t k_it · L_it.

use crate::advantage::Groups;
use crate::error::Result;
use crate::objective::{Aggregation, Objective, ObjectiveConfig};
use crate::tensor::{Tensor, Unary};

/// The weights (N) and the normalizer D (1).
pub struct Weights<T> {
    pub w: T,
    pub d: T,
}

/// `mask` (N, T) completion tokens, `seq_kept` (N) the sequence filter S,
/// `keep` (N, T) the final keep mask.
pub fn weights<T: Tensor>(
    cfg: &ObjectiveConfig,
    groups: &Groups<T>,
    mask: &T,
    seq_kept: &T,
    keep: &T,
) -> Result<Weights<T>> {
    let n_tok = mask.sum_last()?; // (N) n_i
    let n_seq = n_tok.shape().numel() as f64;
    let level = cfg.aggregation();
    let (w, d) = match level {
        Aggregation::Seq => {
            let w = n_tok.max_scalar(1.0)?.unary(Unary::Recip)?;
            (w, seq_kept.sum_all()?.max_scalar(1.0)?)
        }
        Aggregation::Group if cfg.objective == Objective::Wapo => {
            // WAPO's fixed denominator: each winner token weighs 1/(G · L_max).
            let w = groups.sizes()?.mul_scalar(cfg.max_seq_len as f64)?.unary(Unary::Recip)?;
            let winners = seq_kept.segment_sum(&groups.ids, groups.count)?;
            (w, winners.unary(Unary::Positive)?.sum_all()?.max_scalar(1.0)?)
        }
        Aggregation::Group => {
            let tokens = seq_kept.mul(&n_tok)?.segment_sum(&groups.ids, groups.count)?; // (groups)
            let w = tokens.max_scalar(1.0)?.unary(Unary::Recip)?.take(&groups.ids)?;
            (w, tokens.unary(Unary::Positive)?.sum_all()?.max_scalar(1.0)?)
        }
        Aggregation::Global => {
            let w = n_tok.mul_scalar(0.0)?.add_scalar(1.0)?;
            let d = if cfg.aggregation.is_none() && cfg.objective == Objective::DrGrpo {
                // Dr. GRPO's constant normalizer: N · longest completion.
                n_tok.max_all()?.max_scalar(1.0)?.mul_scalar(n_seq)?
            } else {
                seq_kept.mul(&n_tok)?.sum_all()?.max_scalar(1.0)?
            };
            (w, d)
        }
    };
    if !cfg.normalize_by_kept_tokens {
        return Ok(Weights { w, d });
    }
    let kept = keep.sum_last()?; // (N) Σ_t k_it
    Ok(match level {
        Aggregation::Seq => Weights { w: kept.max_scalar(1.0)?.unary(Unary::Recip)?, d },
        Aggregation::Group => {
            // Each sequence of the group counts as at least one token.
            let per_group = groups.sum(&kept.max_scalar(1.0)?)?;
            Weights { w: per_group.unary(Unary::Recip)?, d }
        }
        Aggregation::Global => {
            let total = kept.sum_all()?.max_scalar(1.0)?;
            let w = kept.mul_scalar(0.0)?.add(&total.unary(Unary::Recip)?)?;
            Weights { w, d: total.mul_scalar(0.0)?.add_scalar(1.0)? }
        }
    })
}

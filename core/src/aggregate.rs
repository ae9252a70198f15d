//! Aggregation (`OBJECTIVE.md` §5): per-sequence weights w_i and the
//! normalizer D, so that loss = (1/D) · Σ_i w_i · Σ_t k_it · L_it.

use crate::advantage::Groups;
use crate::error::Result;
use crate::objective::spec::Weighting;
use crate::objective::{Aggregation, wapo};
use crate::tensor::{Tensor, Unary};

/// The weights (N) and the normalizer D (1).
pub struct Weights<T> {
    pub w: T,
    pub d: T,
}

/// How the weights are formed: the objective's [`Weighting`], WAPO's L_max,
/// and whether they are recomputed from the final keep mask.
#[derive(Clone, Copy, Debug)]
pub struct WeightRule {
    pub weighting: Weighting,
    pub max_seq_len: usize,
    pub by_kept_tokens: bool,
}

/// `mask` (N, T) completion tokens, `seq_kept` (N) the sequence filter S,
/// `keep` (N, T) the final keep mask.
pub fn weights<T: Tensor>(
    rule: WeightRule,
    groups: &Groups<T>,
    mask: &T,
    seq_kept: &T,
    keep: &T,
) -> Result<Weights<T>> {
    let n_tok = mask.sum_last()?; // (N) n_i
    let n_seq = n_tok.shape().numel() as f64;
    let (w, d) = match rule.weighting {
        Weighting::Seq => {
            let w = n_tok.max_scalar(1.0)?.unary(Unary::Recip)?;
            (w, seq_kept.sum_all()?.max_scalar(1.0)?)
        }
        Weighting::GroupFixed => wapo::fixed_group_weights(groups, seq_kept, rule.max_seq_len)?,
        Weighting::Group => {
            let tokens = seq_kept.mul(&n_tok)?.segment_sum(&groups.ids, groups.count)?; // (groups)
            let w = tokens.max_scalar(1.0)?.unary(Unary::Recip)?.take(&groups.ids)?;
            (w, tokens.unary(Unary::Positive)?.sum_all()?.max_scalar(1.0)?)
        }
        Weighting::Global => {
            let w = n_tok.mul_scalar(0.0)?.add_scalar(1.0)?;
            (w, seq_kept.mul(&n_tok)?.sum_all()?.max_scalar(1.0)?)
        }
        Weighting::GlobalFixed => {
            // Dr. GRPO's constant normalizer: N · longest completion.
            let w = n_tok.mul_scalar(0.0)?.add_scalar(1.0)?;
            (w, n_tok.max_all()?.max_scalar(1.0)?.mul_scalar(n_seq)?)
        }
    };
    let level = rule.weighting.level();
    if !rule.by_kept_tokens {
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

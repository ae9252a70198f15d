//! **The WAPO loss** (Winner Advantage Policy Optimization, arXiv 2606.16154).
//!
//! WAPO learns only from winners: a completion counts when its centered
//! advantage A_i = r_i − mean_group(r) is positive, so every kept update has
//! c = A·ρ > 0 — it never pushes a token down. By the taxonomy of §7 that
//! rules out the two entropy failure modes of the GRPO family: negative
//! updates on peak tokens (flattening, entropy blow-up) and on valley tokens
//! (collapse). Per token:
//!
//! ```text
//! L_it = −min(ρ_it·A_i, min(ρ_it, 1+ε)·A_i)       ρ_it = exp(ℓ_it − ℓ°_it)
//! loss = (1/D) Σ_i 1/(G_i·L_max) Σ_t mask_it·1[A_i>0]·L_it
//! D    = #groups with at least one winner
//! ```
//!
//! With `importance_sampling = false` it is REINFORCE on winners, L = −ℓ·A.
//!
//! Everything WAPO is sits here: its row of the objective table ([`SPEC`]),
//! its fixed weights ([`fixed_group_weights`]), its configuration
//! ([`config`]) and the per-token loss in scalar form ([`token_loss`]). The
//! family's shared engine ([`super::token_objective`]) reads the row.

use super::spec::{Clip, Ratio, SeqFilter, Spec, Weighting};
use super::{AdvantageMode, Objective, ObjectiveConfig};
use crate::advantage::Groups;
use crate::error::Result;
use crate::tensor::{Tensor, Unary};

/// WAPO's row: centered advantages, winners only, a token ratio clipped
/// above at 1+ε, the fixed group weight 1/(G·L_max).
pub const SPEC: Spec = Spec {
    advantage: AdvantageMode::Centered,
    filter: SeqFilter::Winners,
    ratio: Ratio::Token,
    clip: Clip::Upper,
    advantage_weighted: true,
    weights: Weighting::GroupFixed,
};

/// WAPO's fixed denominator: every winner token weighs w_i = 1/(G_i·L_max),
/// whatever the lengths, and D counts the groups with at least one winner.
/// `seq_kept` (N) is the sequence filter; returns (w (N), D (1)).
pub fn fixed_group_weights<T: Tensor>(groups: &Groups<T>, seq_kept: &T, max_seq_len: usize) -> Result<(T, T)> {
    let w = groups.sizes()?.mul_scalar(max_seq_len as f64)?.unary(Unary::Recip)?;
    let winners = seq_kept.segment_sum(&groups.ids, groups.count)?;
    Ok((w, winners.unary(Unary::Positive)?.sum_all()?.max_scalar(1.0)?))
}

/// WAPO's configuration: clip ε, L_max; centered advantages, winners only and
/// group aggregation with the fixed 1/(G·L_max) weight are implied.
pub fn config(clip_eps: f64, max_seq_len: usize) -> ObjectiveConfig {
    let mut cfg = ObjectiveConfig::new(Objective::Wapo, max_seq_len);
    cfg.clip_eps = Some(clip_eps);
    cfg
}

/// The per-token WAPO loss for one kept token, and ∂L/∂ℓ (autograd's rule at
/// the bound ρ = 1+ε: half the gradient). For a reader, and for engines that
/// want the scalar form without tensors.
pub fn token_loss(logprob: f64, old_logprob: f64, advantage: f64, clip_eps: f64) -> (f64, f64) {
    if advantage <= 0.0 {
        return (0.0, 0.0);
    }
    let rho = libm::exp(logprob - old_logprob);
    let hi = 1.0 + clip_eps;
    let loss = -advantage * rho.min(hi);
    let grad = if rho < hi {
        -advantage * rho
    } else if rho == hi {
        -advantage * rho / 2.0
    } else {
        0.0
    };
    (loss, grad)
}

//! The objective family of `OBJECTIVE.md`: one generic engine, configured by
//! [`ObjectiveConfig`]. Each objective is one row of the table in [`spec`]
//! ([`Objective::spec`]), which is all the engine reads of it. The WAPO loss
//! is [`wapo`]; every objective runs through [`token_objective`] (log-probs
//! in) or [`crate::logits::logits_objective`] (logits in); a minibatch in
//! micro-batches runs through [`Plan`] and [`rows_objective`].

mod checks;
pub(crate) use checks::Checks;
mod config;
mod output;
mod plan;
pub mod spec;
mod surrogate;
pub mod wapo;

pub use config::{AdvantageMode, Aggregation, BinSpec, Objective, ObjectiveConfig};
pub use output::{BinCounts, Output, Summary};
pub use plan::{Plan, PlanBatch, RowsBatch, rows_objective};
pub use spec::{Clip, Ratio, SeqFilter, Spec, Weighting};
pub use surrogate::{Surrogate, clipped_surrogate};

use crate::advantage::Groups;
use crate::aggregate::Weights;
use crate::error::{Error, Pos, Result};
use crate::shape::Shape;
use crate::taxonomy::bin_codes;
use crate::tensor::{Binary, Tensor};

/// A batch at token level: shapes (N), (N, T).
pub struct TokenBatch<'a, T> {
    pub groups: &'a Groups<T>,
    /// (N) scalar verifiable rewards.
    pub rewards: &'a T,
    /// (N, T) 1 for completion tokens, 0 for padding.
    pub mask: &'a T,
    /// (N, T) log-probs of the sampled tokens under the policy being trained.
    pub logprobs: &'a T,
    /// (N, T) log-probs under the behaviour policy.
    pub old_logprobs: &'a T,
    /// (N, T) Σ_v p_v² per position; without it every token is a peak.
    pub sum_p_sq: Option<&'a T>,
}

/// Evaluates the configured objective on token-level inputs: loss, ∂loss/∂ℓ
/// and what the diagnostics need. The same as [`rows_objective`] on all
/// rows under the [`Plan`] of this batch.
pub fn token_objective<T: Tensor>(cfg: &ObjectiveConfig, batch: &TokenBatch<'_, T>) -> Result<Output<T>> {
    cfg.validate()?;
    check_token_batch(batch)?;
    let TokenBatch { groups, rewards, mask, logprobs, old_logprobs, sum_p_sq } = *batch;
    let plan = Plan::build(cfg, &PlanBatch { groups, rewards, mask, logprobs: Some(logprobs), sum_p_sq })?;
    evaluate(cfg, &plan, &RowsBatch { mask, logprobs, old_logprobs, sum_p_sq })
}

/// The engine: the per-token loss and ∂loss/∂ℓ of `rows` under `plan` (its
/// rows' slice), inputs already checked.
fn evaluate<T: Tensor>(cfg: &ObjectiveConfig, plan: &Plan<T>, rows: &RowsBatch<'_, T>) -> Result<Output<T>> {
    let RowsBatch { mask, logprobs, old_logprobs, sum_p_sq } = *rows;
    let spec = cfg.spec();
    let adv = &plan.advantages; // (N)
    let codes = bin_codes(adv, logprobs, sum_p_sq)?; // (N, T)
    let keep = plan::keep_mask(cfg, mask, &plan.seq_kept, &codes)?;
    let agg = Weights { w: plan.weights.clone(), d: plan.normalizer.clone() };

    // Per-token loss L and ∂L/∂ℓ (before weights), and the ratio x.
    let log_ratio = logprobs.sub(old_logprobs)?.binary(mask, Binary::MaskMul)?;
    let (loss_tok, dl_dlogp, ratio, clipped) = match spec.ratio {
        Ratio::None if !spec.advantage_weighted => {
            let zero = T::full(&mask.device(), mask.shape(), 0.0)?;
            (logprobs.mul_scalar(-1.0)?, T::full(&mask.device(), mask.shape(), -1.0)?, log_ratio.exp()?, zero)
        }
        Ratio::None => {
            let zero = T::full(&mask.device(), mask.shape(), 0.0)?;
            let neg_adv = adv.mul_scalar(-1.0)?;
            (logprobs.mul(&neg_adv)?, zero.add(&neg_adv)?, log_ratio.exp()?, zero)
        }
        Ratio::Sequence => sequence_ratio_terms(cfg, mask, &log_ratio, adv, &keep, &agg)?,
        Ratio::Token => {
            let ratio = log_ratio.exp()?;
            let (lo, hi) = cfg.clip_bounds();
            let s = clipped_surrogate(&ratio, adv, lo, hi)?;
            (s.loss, ratio.binary(&s.dloss_dx, Binary::MaskMul)?, ratio, s.clipped)
        }
    };

    let weighted = loss_tok.binary(&keep, Binary::MaskMul)?.sum_last()?; // (N)
    let loss_sum = weighted.mul(&agg.w)?.sum_all()?;
    let loss = loss_sum.div(&agg.d)?;
    let scale = agg.w.div(&agg.d)?; // (N) w_i / D
    let grad = if spec.ratio == Ratio::Sequence {
        dl_dlogp // already carries weights, keep mask and D
    } else {
        dl_dlogp.binary(&keep, Binary::MaskMul)?.mul(&scale)?
    };
    let clipped = clipped.mul(&keep)?;
    Ok(Output {
        advantages: adv.clone(),
        weights: agg.w,
        normalizer: agg.d,
        loss_sum,
        loss,
        grad_logprobs: grad,
        grad_logits: None,
        logprobs: logprobs.clone(),
        entropy: None,
        sum_p_sq: sum_p_sq.cloned(),
        sum_p_sq_logp: None,
        ratio,
        keep,
        mask: mask.clone(),
        clipped,
        bins: codes,
        counts: None,
    })
}

/// GSPO: one ratio per sequence, s_i = exp(Σ_t mask·(ℓ − ℓ°) / (n_i + 1e-8)),
/// whose gradient reaches every completion token of the sequence.
fn sequence_ratio_terms<T: Tensor>(
    cfg: &ObjectiveConfig,
    mask: &T,
    log_ratio: &T,
    adv: &T,
    keep: &T,
    agg: &Weights<T>,
) -> Result<(T, T, T, T)> {
    let n_eps = mask.sum_last()?.add_scalar(1e-8)?; // (N)
    let s = log_ratio.sum_last()?.div(&n_eps)?.exp()?; // (N)
    let x = T::full(&mask.device(), mask.shape(), 0.0)?.add(&s)?; // (N, T)
    let (lo, hi) = cfg.clip_bounds();
    let sur = clipped_surrogate(&x, adv, lo, hi)?;
    // ∂loss/∂ℓ_it = (w_i/D) · Σ_t' k_it' ∂L/∂s · s_i · mask_it / (n_i + 1e-8)
    let per_seq = sur.dloss_dx.mul(keep)?.sum_last()?.mul(&agg.w)?.div(&agg.d)?.mul(&s)?.div(&n_eps)?;
    let grad = mask.mul(&per_seq)?;
    Ok((sur.loss, grad, x, sur.clipped))
}

/// Shapes, empty batches, 0/1 masks and non-finite values, with positions.
fn check_token_batch<T: Tensor>(b: &TokenBatch<'_, T>) -> Result<()> {
    let ms = b.mask.shape();
    if ms.rank() != 2 {
        return Err(Error::Shape { field: "mask", expected: Shape::d2(b.rewards.shape().numel(), ms.last()), got: ms });
    }
    let (n, t) = (ms.dims()[0], ms.dims()[1]);
    if n == 0 {
        return Err(Error::Empty { field: "rewards" });
    }
    if t == 0 {
        return Err(Error::Empty { field: "mask" });
    }
    expect_shape("rewards", b.rewards, Shape::d1(n))?;
    expect_shape("logprobs", b.logprobs, ms)?;
    expect_shape("old_logprobs", b.old_logprobs, ms)?;
    if let Some(s) = b.sum_p_sq {
        expect_shape("sum_p_sq", s, ms)?;
    }
    if b.groups.ids.shape() != Shape::d1(n) {
        return Err(Error::Shape { field: "group_ids", expected: Shape::d1(n), got: b.groups.ids.shape() });
    }
    let mut checks = checks::Checks::new();
    checks.index("group_ids", &b.groups.ids, b.groups.count, "dense group ids must be integers in 0..count")?;
    checks.mask("mask", b.mask)?;
    checks.finite("rewards", b.rewards, None)?;
    checks.finite("logprobs", b.logprobs, Some(b.mask))?;
    checks.finite("old_logprobs", b.old_logprobs, Some(b.mask))?;
    if let Some(s) = b.sum_p_sq {
        checks.finite("sum_p_sq", s, Some(b.mask))?;
    }
    checks.run()?;
    Ok(())
}

pub(crate) fn expect_shape<T: Tensor>(field: &'static str, x: &T, expected: Shape) -> Result<()> {
    if x.shape() != expected {
        return Err(Error::Shape { field, expected, got: x.shape() });
    }
    Ok(())
}

/// The position of the first non-zero element (`Pos::NONE` without `alloc`).
pub(crate) fn first_position<T: Tensor>(bad: &T) -> Result<Pos> {
    let shape = bad.shape();
    let d = shape.dims();
    Ok(match (shape.rank(), first_nonzero(bad)?) {
        (_, None) => Pos::NONE,
        (1, Some(i)) => Pos::at1(i),
        (2, Some(i)) => Pos::at2(i / d[1], i % d[1]),
        (_, Some(i)) => Pos::at3(i / (d[1] * d[2]), (i / d[2]) % d[1], i % d[2]),
    })
}

#[cfg(feature = "alloc")]
fn first_nonzero<T: Tensor>(x: &T) -> Result<Option<usize>> {
    let mut host = alloc::vec![0.0; x.shape().numel()];
    x.download(&mut host)?;
    Ok(host.iter().position(|v| *v != 0.0))
}

#[cfg(not(feature = "alloc"))]
fn first_nonzero<T: Tensor>(_x: &T) -> Result<Option<usize>> {
    Ok(None)
}

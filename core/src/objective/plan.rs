//! Gradient accumulation: a minibatch evaluated in micro-batches of rows.
//!
//! The loss couples rows through four quantities: the group advantages
//! (a group's mean and std), the sequence filter S, the weights w_i (a
//! group's token count, or the batch's kept tokens) and the normalizer D
//! (kept sequences, groups with a winner, N·max n_i, kept tokens). A
//! micro-batch that formed them from its own rows would change the loss
//! with the split — the bug of TRL #5619 / #6024 and #3231, verl #3741 and
//! #7321. A [`Plan`] forms them once over the whole minibatch, and
//! [`rows_objective`] evaluates any contiguous rows under it, so that the
//! micro-batches' losses sum to the minibatch's loss and their ∂loss/∂ℓ are
//! its rows. The split is between rows only: a row's per-token loss reads
//! its own tokens (GSPO's sequence ratio a whole row), nothing of another
//! row. [`super::token_objective`] is the plan of its batch applied to all
//! of its rows, so there is one definition of these quantities.

use core::ops::Range;

use crate::advantage::{Groups, advantages};
use crate::aggregate::{WeightRule, weights};
use crate::error::{Error, Result};
use crate::shape::Shape;
use crate::taxonomy::{bin_codes, in_bins};
use crate::tensor::{Binary, Tensor, Unary};

use super::spec::SeqFilter;
use super::{Checks, ObjectiveConfig, Output, expect_shape};

/// What couples the rows of a minibatch, over all of its N rows (or, after
/// [`Plan::rows`], the slice of a few of them; D stays the minibatch's).
#[derive(Clone)]
pub struct Plan<T> {
    /// (N) A_i, from each row's whole group.
    pub advantages: T,
    /// (N) S_i, the sequence filter.
    pub seq_kept: T,
    /// (N) w_i.
    pub weights: T,
    /// (1) D.
    pub normalizer: T,
    /// T, the tokens per row the plan was formed for.
    cols: usize,
}

/// What a plan reads: shapes (N), (N, T).
pub struct PlanBatch<'a, T> {
    pub groups: &'a Groups<T>,
    /// (N) rewards.
    pub rewards: &'a T,
    /// (N, T) completion mask.
    pub mask: &'a T,
    /// (N, T) ℓ of every row; read only when
    /// [`ObjectiveConfig::weights_read_logprobs`] (else `None` is fine).
    pub logprobs: Option<&'a T>,
    /// (N, T) Σp² of every row, with `logprobs` (none: every token a peak).
    pub sum_p_sq: Option<&'a T>,
}

/// Some rows of a minibatch at token level: shapes (n, T).
pub struct RowsBatch<'a, T> {
    /// (n, T) the rows' completion mask, as in the plan's batch.
    pub mask: &'a T,
    /// (n, T) ℓ under the policy being trained.
    pub logprobs: &'a T,
    /// (n, T) ℓ° under the behaviour policy.
    pub old_logprobs: &'a T,
    /// (n, T) Σ_v p_v²; without it every token is a peak.
    pub sum_p_sq: Option<&'a T>,
}

impl<T: Tensor> Plan<T> {
    /// The plan of a whole minibatch, validated like [`super::token_objective`]'s input.
    pub fn new(cfg: &ObjectiveConfig, batch: &PlanBatch<'_, T>) -> Result<Self> {
        cfg.validate()?;
        check_plan_batch(cfg, batch)?;
        Self::build(cfg, batch)
    }

    /// [`Plan::new`] without the checks (the caller ran them).
    pub(super) fn build(cfg: &ObjectiveConfig, batch: &PlanBatch<'_, T>) -> Result<Self> {
        let PlanBatch { groups, rewards, mask, logprobs, sum_p_sq } = *batch;
        let spec = cfg.spec();
        let adv = advantages(rewards, groups, spec.advantage)?; // (N)
        let mut seq_kept = match spec.filter {
            SeqFilter::Winners => adv.unary(Unary::Positive)?,
            SeqFilter::All => T::full(&adv.device(), adv.shape(), 1.0)?,
        };
        if cfg.mask_positive_advantages {
            seq_kept = seq_kept.mul(&adv.binary(&adv.scalar(0.0)?, Binary::Lt)?)?;
        }
        // The keep mask enters the weights only with kept-token weights;
        // through the bins it then depends on ℓ.
        let keep = match (cfg.normalize_by_kept_tokens, logprobs) {
            (false, _) => mask.clone(),
            (true, Some(lp)) => keep_mask(cfg, mask, &seq_kept, &bin_codes(&adv, lp, sum_p_sq)?)?,
            (true, None) if !cfg.bins_active() => mask.mul(&seq_kept)?,
            (true, None) => return Err(Error::Empty { field: "logprobs" }),
        };
        let rule = WeightRule {
            weighting: spec.weights,
            max_seq_len: cfg.max_seq_len,
            by_kept_tokens: cfg.normalize_by_kept_tokens,
        };
        let agg = weights(rule, groups, mask, &seq_kept, &keep)?;
        Ok(Plan { advantages: adv, seq_kept, weights: agg.w, normalizer: agg.d, cols: mask.shape().last() })
    }

    /// Rows of the plan.
    pub fn len(&self) -> usize {
        self.advantages.shape().numel()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The plan of rows `rows` (their A, S and w; the whole minibatch's D).
    pub fn rows(&self, rows: Range<usize>) -> Result<Self> {
        let n = self.len();
        if rows.start >= rows.end || rows.end > n {
            return Err(Error::Shape {
                field: "rows",
                expected: Shape::d1(n),
                got: Shape::d1(rows.end.saturating_sub(rows.start)),
            });
        }
        let m = rows.end - rows.start;
        let idx = T::iota_last(&self.advantages.device(), Shape::d1(m))?.add_scalar(rows.start as f64)?;
        Ok(Plan {
            advantages: self.advantages.take(&idx)?,
            seq_kept: self.seq_kept.take(&idx)?,
            weights: self.weights.take(&idx)?,
            normalizer: self.normalizer.clone(),
            cols: self.cols,
        })
    }
}

/// The objective of rows `rows` of a minibatch under its `plan` (over the
/// whole minibatch): `loss` is these rows' share of the minibatch's loss
/// (Σ w·k·L over them, / D), `grad_logprobs` their rows of its ∂loss/∂ℓ.
pub fn rows_objective<T: Tensor>(
    cfg: &ObjectiveConfig,
    plan: &Plan<T>,
    rows: Range<usize>,
    batch: &RowsBatch<'_, T>,
) -> Result<Output<T>> {
    cfg.validate()?;
    let part = plan.rows(rows.clone())?;
    check_rows_batch(&part, batch)?;
    super::evaluate(cfg, &part, batch)
}

/// (N, T) k = mask · S · B: the sequence filter, then the token bins.
pub(super) fn keep_mask<T: Tensor>(cfg: &ObjectiveConfig, mask: &T, seq_kept: &T, codes: &T) -> Result<T> {
    let keep = mask.mul(seq_kept)?;
    if cfg.bins_active() { keep.mul(&in_bins(codes, cfg.kept_bins())?) } else { Ok(keep) }
}

fn check_plan_batch<T: Tensor>(cfg: &ObjectiveConfig, b: &PlanBatch<'_, T>) -> Result<()> {
    let ms = b.mask.shape();
    let n = b.rewards.shape().numel();
    if ms.rank() != 2 {
        return Err(Error::Shape { field: "mask", expected: Shape::d2(n, ms.last()), got: ms });
    }
    let (n, t) = (ms.dims()[0], ms.dims()[1]);
    if n == 0 {
        return Err(Error::Empty { field: "rewards" });
    }
    if t == 0 {
        return Err(Error::Empty { field: "mask" });
    }
    expect_shape("rewards", b.rewards, Shape::d1(n))?;
    if b.groups.ids.shape() != Shape::d1(n) {
        return Err(Error::Shape { field: "group_ids", expected: Shape::d1(n), got: b.groups.ids.shape() });
    }
    let mut checks = Checks::new();
    checks.index("group_ids", &b.groups.ids, b.groups.count, "dense group ids must be integers in 0..count")?;
    checks.mask("mask", b.mask)?;
    checks.finite("rewards", b.rewards, None)?;
    if cfg.weights_read_logprobs() {
        let lp = b.logprobs.ok_or(Error::Empty { field: "logprobs" })?;
        expect_shape("logprobs", lp, ms)?;
        checks.finite("logprobs", lp, Some(b.mask))?;
        if let Some(s) = b.sum_p_sq {
            expect_shape("sum_p_sq", s, ms)?;
            checks.finite("sum_p_sq", s, Some(b.mask))?;
        }
    }
    checks.run()
}

fn check_rows_batch<T: Tensor>(part: &Plan<T>, b: &RowsBatch<'_, T>) -> Result<()> {
    let expected = Shape::d2(part.len(), part.cols);
    expect_shape("mask", b.mask, expected)?;
    expect_shape("logprobs", b.logprobs, expected)?;
    expect_shape("old_logprobs", b.old_logprobs, expected)?;
    if let Some(s) = b.sum_p_sq {
        expect_shape("sum_p_sq", s, expected)?;
    }
    let mut checks = Checks::new();
    checks.mask("mask", b.mask)?;
    checks.finite("logprobs", b.logprobs, Some(b.mask))?;
    checks.finite("old_logprobs", b.old_logprobs, Some(b.mask))?;
    if let Some(s) = b.sum_p_sq {
        checks.finite("sum_p_sq", s, Some(b.mask))?;
    }
    checks.run()
}

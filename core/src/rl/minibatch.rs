//! One optimizer step of an RL batch on a minibatch of whole groups
//! ([`update`], one [`Update`] of the step's plan), its gradient summed
//! over `micro_batches` parts of the minibatch's rows (gradient
//! accumulation: the memory of a part, the update of the whole minibatch),
//! and what the steps add up to for the metrics ([`Totals`]).
//!
//! A minibatch takes one of two ways ([`Way`]):
//! * logits: [`Policy::forward`] → the logits objective (fused on the
//!   backend) → [`Policy::backward`]; the GPT family in one part.
//! * token level: [`Policy::forward_stats`] → the objective on ℓ and Σp² →
//!   [`Policy::backward_logprobs`]; the llama family (whose logits never
//!   exist at once), and every minibatch in more than one part. A backend's
//!   fused logits objective normalizes over the batch it is handed, so a
//!   part would get its own advantages and normalizer; at token level each
//!   part is evaluated under the whole minibatch's [`Plan`], and the
//!   memory of a part does not grow with V.
//!
//! Both ways stop an update on NaN or ±inf by one rule ([`screened`],
//! [`checked_loss`], [`optimizer_step`]).

use alloc::vec::Vec;
use core::ops::Range;

use crate::advantage::Groups;
use crate::error::{Error, Result};
use crate::logits::{LogitsBatch, logits_objective};
use crate::objective::{Output, Plan, PlanBatch, RowsBatch, rows_objective};
use crate::rl::arch::ModelConfig;
use crate::rl::batch::{Batch, Padded};
use crate::rl::config::RlConfig;
use crate::rl::entropy_pred::Taxonomy;
use crate::rl::guard::finite_step;
use crate::rl::metrics::Metrics;
use crate::rl::policy::{Policy, Prompts, TokenStats};
use crate::rl::readback::{download, output_stats};
use crate::rl::state::NonFinite;
use crate::shape::Shape;
use crate::tensor::Tensor;

/// Why an update stops: a NaN or ±inf (the update is skipped) or an error.
pub(super) enum Stop {
    Skip(NonFinite),
    Fail(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Stop::Fail(e)
    }
}

/// The one rule for NaN and ±inf in what the objective reads: a
/// non-finite ℓ, ℓ° or logit of a real token skips the update as
/// [`NonFinite::Logits`]; any other error is an error.
fn screened<X>(r: Result<X>) -> core::result::Result<X, Stop> {
    r.map_err(|e| match e {
        Error::NonFinite { .. } | Error::Invalid { field: "logits", .. } => Stop::Skip(NonFinite::Logits),
        e => Stop::Fail(e),
    })
}

fn checked_loss(loss: f64) -> core::result::Result<f64, Stop> {
    if loss.is_finite() { Ok(loss) } else { Err(Stop::Skip(NonFinite::Loss)) }
}

/// One optimizer step on the accumulated gradient; its norm, which must be
/// finite (backends report a non-finite one as an error or as the value).
fn optimizer_step<P: Policy>(policy: &mut P, cfg: &RlConfig) -> core::result::Result<f64, Stop> {
    match finite_step(policy, &cfg.optim) {
        Ok(Some(norm)) => Ok(norm),
        Ok(None) => Err(Stop::Skip(NonFinite::Gradient)),
        Err(e) => Err(Stop::Fail(e)),
    }
}

/// One optimizer step of a step's plan: prompts `prompts` of the batch
/// (rows `prompts.start·G..prompts.end·G`, whole groups), scored `way`.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Update {
    pub prompts: Range<usize>,
    /// In the first pass over the batch (which alone feeds the metrics).
    pub first_pass: bool,
    pub way: Way,
}

/// The two ways of the module doc.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Way {
    Logits,
    Tokens,
}

impl Way {
    /// The way of every minibatch of a step with `cfg` on a model of `model`.
    pub(super) fn of(model: &ModelConfig, cfg: &RlConfig) -> Way {
        // The logits objective knows nothing of top-k / top-p: truncated
        // rollouts are scored at token level under the sampler's rule.
        let truncated = cfg.processing().truncates(model.vocab);
        if cfg.micro_batches == 1 && !model.chunked_head() && !truncated { Way::Logits } else { Way::Tokens }
    }
}

/// Takes one planned optimizer step on `batch`; what was non-finite when it
/// was stopped (the caller undoes the step's updates then).
pub(super) fn update<P: Policy>(
    policy: &mut P,
    cfg: &RlConfig,
    batch: &Batch,
    u: &Update,
    totals: &mut Totals,
) -> Result<Option<NonFinite>> {
    let m = Minibatch::<P::T>::upload(&policy.device(), batch, u.prompts.start, u.prompts.end, cfg.group)?;
    let done = match u.way {
        Way::Logits => logits_update(policy, cfg, batch, &m, u.first_pass, totals),
        Way::Tokens => token_update(policy, cfg, batch, &m, u.first_pass, totals),
    };
    match done {
        Ok(()) => Ok(None),
        Err(Stop::Skip(what)) => Ok(Some(what)),
        Err(Stop::Fail(e)) => Err(e),
    }
}

/// What the updates of one step add up to, for its metrics.
pub(super) struct Totals {
    /// Σ of the first pass's minibatch losses.
    pub loss_sum: f64,
    pub clipped: u64,
    pub kept: u64,
    pub grad_norm: f64,
    pub tax: Taxonomy,
    /// The §8 diagnostics of each minibatch of the first pass, averaged.
    pub diag: Metrics,
}

impl Totals {
    /// Empty totals for a batch of `tokens` (N·T) positions.
    pub fn new(tokens: usize) -> Self {
        Totals { loss_sum: 0.0, clipped: 0, kept: 0, grad_norm: 0.0, tax: Taxonomy::new(tokens), diag: Metrics::new() }
    }

    pub fn taxonomy<T: Tensor>(
        &mut self,
        offset: usize,
        stats: &TokenStats,
        mask: &[f64],
        out: &Output<T>,
    ) -> Result<()> {
        self.tax.accumulate(offset, mask, stats, out)
    }

    pub fn diagnostics<T: Tensor>(
        &mut self,
        out: &Output<T>,
        old: &T,
        rewards: &[f64],
        group_ids: &[i64],
        parts: usize,
    ) -> Result<()> {
        add_diagnostics(&mut self.diag, out, old, rewards, group_ids, parts)
    }
}

/// Adds one minibatch's share of the §8 diagnostics to `acc` (their mean
/// over `parts` minibatches).
fn add_diagnostics<T: Tensor>(
    acc: &mut Metrics,
    out: &Output<T>,
    old: &T,
    rewards: &[f64],
    group_ids: &[i64],
    parts: usize,
) -> Result<()> {
    for (k, v) in crate::diagnostics::diagnostics(out, old, rewards, group_ids)? {
        let share = v / parts as f64;
        match acc.iter_mut().find(|(name, _)| *name == k) {
            Some((_, x)) => *x += share,
            None => acc.push((k, share)),
        }
    }
    Ok(())
}

/// Prompts `lo..hi` of a batch (rows `lo·G..hi·G`) on the device.
struct Minibatch<T> {
    prompts: Range<usize>,
    rows: Range<usize>,
    /// (n) the dense group id of each row.
    ids: Vec<f64>,
    groups: Groups<T>,
    rewards: T, // (n)
    mask: T,    // (n, T)
    old: T,     // (n, T)
}

impl<T: Tensor> Minibatch<T> {
    fn upload(dev: &T::Device, batch: &Batch, lo: usize, hi: usize, g: usize) -> Result<Self> {
        let rows = lo * g..hi * g;
        let n = rows.len();
        let ids: Vec<f64> = (0..n).map(|r| (r / g) as f64).collect();
        let groups = Groups::from_dense(T::upload(dev, &ids, Shape::d1(n))?, hi - lo);
        let rewards = T::upload(dev, &batch.rewards[rows.clone()], Shape::d1(n))?;
        let (mask, old) = batch.token_rows::<T>(dev, rows.clone())?;
        Ok(Minibatch { prompts: lo..hi, rows, ids, groups, rewards, mask, old })
    }

    fn group_ids(&self) -> Vec<i64> {
        self.ids.iter().map(|&x| x as i64).collect()
    }
}

/// The logits way, one part.
fn logits_update<P: Policy>(
    policy: &mut P,
    cfg: &RlConfig,
    batch: &Batch,
    m: &Minibatch<P::T>,
    first_pass: bool,
    totals: &mut Totals,
) -> core::result::Result<(), Stop> {
    let (g, t) = (cfg.group, batch.t);
    let tokens = &batch.tokens[m.rows.start * t..m.rows.end * t];
    let logits = policy.forward(batch.prompts.view(m.prompts.start, m.prompts.end), g, tokens)?; // (n, T, V)
    let tok_f: Vec<f64> = tokens.iter().map(|&y| y as f64).collect();
    let tok_t = P::T::upload(&policy.device(), &tok_f, Shape::d2(m.rows.len(), t))?;
    let out = screened(logits_objective(
        &cfg.objective,
        &LogitsBatch {
            groups: &m.groups,
            rewards: &m.rewards,
            mask: &m.mask,
            logits: &logits,
            tokens: &tok_t,
            old_logprobs: &m.old,
        },
    ))?;
    record(totals, cfg, batch, m, &out, first_pass, || output_stats(&out))?;
    let grad =
        out.grad_logits.as_ref().ok_or(Error::Backend("the logits objective returned no ∂loss/∂logits".into()))?;
    policy.zero_grad();
    policy.backward(grad)?;
    totals.grad_norm += optimizer_step(policy, cfg)?;
    Ok(())
}

/// The token-level way, in `cfg.micro_batches` parts under the minibatch's plan.
fn token_update<P: Policy>(
    policy: &mut P,
    cfg: &RlConfig,
    batch: &Batch,
    m: &Minibatch<P::T>,
    first_pass: bool,
    totals: &mut Totals,
) -> core::result::Result<(), Stop> {
    let (k, n, t) = (cfg.micro_batches, m.rows.len(), batch.t);
    let tau = cfg.processing();
    let dev = policy.device();
    // Local rows of each part: whole sequences, any cut between rows.
    let parts: Vec<Range<usize>> = (0..k).map(|j| j * n / k..(j + 1) * n / k).collect();
    let global = |r: &Range<usize>| m.rows.start + r.start..m.rows.start + r.end;

    // Kept-token weights with token bins read every row's ℓ: a first
    // forward over the parts, before any part's objective.
    let mut stats: Vec<Option<TokenStats>> = (0..k).map(|_| None).collect();
    let early = cfg.objective.weights_read_logprobs();
    if early {
        for (j, part) in parts.iter().enumerate() {
            let call = Call::of(batch, global(part), cfg.group);
            let (prompts, group) = call.prompts(batch);
            stats[j] = Some(policy.forward_stats(prompts, group, batch.completions(global(part)), tau)?);
        }
    }
    let all = if early { Some(StatsTensors::of(&dev, &concat(&stats), n, t)?) } else { None };
    let plan = screened(Plan::new(
        &cfg.objective,
        &PlanBatch {
            groups: &m.groups,
            rewards: &m.rewards,
            mask: &m.mask,
            logprobs: all.as_ref().map(|s| &s.logprobs),
            sum_p_sq: all.as_ref().map(|s| &s.sum_p_sq),
        },
    ))?;

    policy.zero_grad();
    let mut single = None;
    // After the first forward the last part's is still the policy's live
    // one: that part goes first, without a second forward.
    let order: Vec<usize> = if early { (0..k).map(|j| (j + k - 1) % k).collect() } else { (0..k).collect() };
    for (i, &j) in order.iter().enumerate() {
        let rows = global(&parts[j]);
        let call = Call::of(batch, rows.clone(), cfg.group);
        let (prompts, group) = call.prompts(batch);
        let completions = batch.completions(rows.clone());
        let s = match stats[j].take() {
            Some(s) if i == 0 => s,
            _ => policy.forward_stats(prompts, group, completions, tau)?,
        };
        let part = StatsTensors::of(&dev, &s, rows.len(), t)?;
        let (mask, old) =
            if k == 1 { (m.mask.clone(), m.old.clone()) } else { batch.token_rows::<P::T>(&dev, rows)? };
        let out = screened(rows_objective(
            &cfg.objective,
            &plan,
            parts[j].clone(),
            &RowsBatch { mask: &mask, logprobs: &part.logprobs, old_logprobs: &old, sum_p_sq: Some(&part.sum_p_sq) },
        ))?;
        checked_loss(out.loss.item()?)?;
        let grad: Vec<f32> = download(&out.grad_logprobs)?.iter().map(|&x| x as f32).collect();
        policy.backward_logprobs(prompts, group, completions, &grad, tau)?;
        stats[j] = Some(s);
        if k == 1 {
            single = Some(out);
        }
    }

    // The step's metrics read the whole minibatch's evaluation: the one
    // part's, or the parts' statistics evaluated together under the plan.
    let stats = concat(&stats);
    let out = match single {
        Some(out) => out,
        None => {
            let whole = StatsTensors::of(&dev, &stats, n, t)?;
            screened(rows_objective(
                &cfg.objective,
                &plan,
                0..n,
                &RowsBatch {
                    mask: &m.mask,
                    logprobs: &whole.logprobs,
                    old_logprobs: &m.old,
                    sum_p_sq: Some(&whole.sum_p_sq),
                },
            ))?
        }
    };
    record(totals, cfg, batch, m, &out, first_pass, || Ok(stats))?;
    totals.grad_norm += optimizer_step(policy, cfg)?;
    Ok(())
}

/// Adds a minibatch's evaluation to the step's totals (the taxonomy and the
/// diagnostics from the first pass only); its loss must be finite.
fn record<T: Tensor>(
    totals: &mut Totals,
    cfg: &RlConfig,
    batch: &Batch,
    m: &Minibatch<T>,
    out: &Output<T>,
    first_pass: bool,
    stats: impl FnOnce() -> Result<TokenStats>,
) -> core::result::Result<(), Stop> {
    let summary = out.summary()?;
    checked_loss(summary.loss)?;
    totals.clipped += summary.clipped_tokens;
    totals.kept += summary.bins.kept.iter().sum::<u64>();
    if first_pass {
        totals.loss_sum += summary.loss;
        let t = batch.t;
        totals.taxonomy(m.rows.start * t, &stats()?, &batch.mask[m.rows.start * t..m.rows.end * t], out)?;
        totals.diagnostics(out, &m.old, &batch.rewards[m.rows.clone()], &m.group_ids(), cfg.minibatches)?;
    }
    Ok(())
}

/// How rows of a batch go to the policy in one call. The pieces of
/// consecutive groups share their prompts, as in a full batch, when the
/// pieces are equal in size (whole groups, or one part of one group);
/// otherwise each row gets its own copy of its prompt (a group of 1), which
/// computes the same.
enum Call {
    Shared { prompts: Range<usize>, group: usize },
    Copied(Padded),
}

impl Call {
    fn of(batch: &Batch, rows: Range<usize>, g: usize) -> Call {
        let (first, last) = (rows.start / g, (rows.end - 1) / g);
        let piece = |q: usize| rows.end.min((q + 1) * g) - rows.start.max(q * g);
        let size = piece(first);
        if (first..=last).all(|q| piece(q) == size) {
            return Call::Shared { prompts: first..last + 1, group: size };
        }
        let p = &batch.prompts;
        let mut tokens = Vec::with_capacity(rows.len() * p.len);
        let mut pad = Vec::new();
        for r in rows {
            let q = r / g;
            tokens.extend_from_slice(&p.tokens[q * p.len..(q + 1) * p.len]);
            if !p.pad.is_empty() {
                pad.push(p.pad[q]);
            }
        }
        Call::Copied(Padded { tokens, pad, len: p.len })
    }

    fn prompts<'a>(&'a self, batch: &'a Batch) -> (Prompts<'a>, usize) {
        match self {
            Call::Shared { prompts, group } => (batch.prompts.view(prompts.start, prompts.end), *group),
            Call::Copied(p) => (p.view(0, p.tokens.len() / p.len.max(1)), 1),
        }
    }
}

/// The ℓ and Σp² of some rows on the device.
struct StatsTensors<T> {
    logprobs: T, // (n, T)
    sum_p_sq: T, // (n, T)
}

impl<T: Tensor> StatsTensors<T> {
    fn of(dev: &T::Device, s: &TokenStats, n: usize, t: usize) -> Result<Self> {
        let wide = |x: &[f32]| x.iter().map(|&v| v as f64).collect::<Vec<f64>>();
        Ok(StatsTensors {
            logprobs: T::upload(dev, &wide(&s.logprobs), Shape::d2(n, t))?,
            sum_p_sq: T::upload(dev, &wide(&s.sum_p_sq), Shape::d2(n, t))?,
        })
    }
}

/// The parts' statistics in row order.
fn concat(parts: &[Option<TokenStats>]) -> TokenStats {
    let mut all = TokenStats::default();
    for s in parts.iter().flatten() {
        all.logprobs.extend_from_slice(&s.logprobs);
        all.entropy.extend_from_slice(&s.entropy);
        all.sum_p_sq.extend_from_slice(&s.sum_p_sq);
        all.sum_p_sq_logp.extend_from_slice(&s.sum_p_sq_logp);
    }
    all
}

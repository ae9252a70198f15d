//! One RL step, written once for every backend: sample prompts, generate G
//! completions per prompt, score them, then `epochs` × `minibatches`
//! optimizer steps on the configured objective ([`super::minibatch`]), with
//! the token taxonomy of `OBJECTIVE.md` §7 in the metrics.

use alloc::format;
use alloc::vec;
use alloc::vec::Vec;

use core::ops::Range;

use crate::error::{Error, Result};
use crate::logits::row_stats;
use crate::objective::{BinSpec, ObjectiveConfig};
use crate::rl::entropy_pred::{self, Taxonomy};
use crate::rl::policy::{Named, OptimConfig, OptimState, Policy, Prompts, Sampling, TokenStats};
use crate::rl::state::{NonFinite, TrainState};
use crate::rl::truncate::Processing;
use crate::rl::{Clock, Metrics, metric, push};
use crate::shape::Shape;
use crate::task::{Example, Split, Task};
use crate::tensor::Tensor;

/// Knobs of the RL step.
#[derive(Clone, Debug, PartialEq)]
pub struct RlConfig {
    /// B, prompts per step.
    pub prompts: usize,
    /// G, completions per prompt.
    pub group: usize,
    /// Passes over the batch (> 1 moves ratios off 1, so clipping is real).
    pub epochs: usize,
    /// Optimizer steps per pass; each takes `prompts / minibatches` whole groups.
    pub minibatches: usize,
    /// Parts each minibatch's rows are processed in, their gradients summed
    /// into its one optimizer step (gradient accumulation, for memory); the
    /// update is the same for any number (up to float roundoff).
    pub micro_batches: usize,
    /// The objective; its `temperature` is also the sampling temperature.
    pub objective: ObjectiveConfig,
    pub optim: OptimConfig,
    /// One extra forward after the update to measure the entropy change.
    pub measure_entropy: bool,
    /// Top-k / top-p of the rollouts (the task adds its stop tokens).
    pub sampling: Sampling,
}

impl RlConfig {
    /// How the rollouts are sampled, and so how the trainer scores them:
    /// the objective's temperature under the rollouts' top-k / top-p.
    pub fn processing(&self) -> Processing {
        Processing::of(self.objective.temperature, &self.sampling)
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |field, reason| Err(Error::Config { field, reason });
        if self.prompts == 0 || self.group == 0 {
            return bad("rl.prompts", "prompts and group must be ≥ 1");
        }
        if self.epochs == 0 {
            return bad("rl.epochs", "must be ≥ 1");
        }
        if self.minibatches == 0 || self.minibatches > self.prompts {
            return bad("rl.minibatches", "must be in 1..=prompts");
        }
        if self.micro_batches == 0 || self.micro_batches > (self.prompts / self.minibatches).saturating_mul(self.group)
        {
            return bad("rl.micro_batches", "must be in 1..=rows of a minibatch (prompts / minibatches · group)");
        }
        self.sampling.validate()?;
        self.objective.validate()
    }
}

/// A sampled batch: examples, rollouts and rewards.
pub(super) struct Batch {
    pub prompts: Padded,  // (B, P)
    pub tokens: Vec<u32>, // (N, T)
    pub old_logprobs: Vec<f32>,
    /// (N, T) 1 up to where each completion ended.
    pub mask: Vec<f64>,
    pub rewards: Vec<f64>, // (N)
    pub t: usize,
}

impl Batch {
    /// (n, T) completion tokens of rows `rows`.
    pub fn completions(&self, rows: Range<usize>) -> &[u32] {
        &self.tokens[rows.start * self.t..rows.end * self.t]
    }

    /// The (n, T) mask and ℓ° of rows `rows` on the device.
    pub fn token_rows<T: Tensor>(&self, dev: &T::Device, rows: Range<usize>) -> Result<(T, T)> {
        let (t, n) = (self.t, rows.len());
        let span = rows.start * t..rows.end * t;
        let mask = T::upload(dev, &self.mask[span.clone()], Shape::d2(n, t))?;
        let old: Vec<f64> = self.old_logprobs[span].iter().map(|&l| l as f64).collect();
        Ok((mask, T::upload(dev, &old, Shape::d2(n, t))?))
    }
}

/// What the updates of one step add up to, for its metrics.
pub(super) struct Totals {
    /// Σ of the first pass's minibatch losses.
    pub loss_sum: f64,
    pub clipped: u64,
    pub kept: u64,
    pub grad_norm: f64,
    tax: Taxonomy,
    /// The §8 diagnostics of each minibatch of the first pass, averaged.
    diag: Metrics,
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
        out: &crate::objective::Output<T>,
    ) -> Result<()> {
        self.tax.accumulate(offset, mask, stats, out)
    }

    pub fn diagnostics<T: Tensor>(
        &mut self,
        out: &crate::objective::Output<T>,
        old: &T,
        rewards: &[f64],
        group_ids: &[i64],
        parts: usize,
    ) -> Result<()> {
        add_diagnostics(&mut self.diag, out, old, rewards, group_ids, parts)
    }
}

/// One RL step; advances `state` (RNG, `rl_steps`) and the policy's weights.
///
/// When the logits, the loss, the gradient or the updated parameters turn
/// NaN or infinite, the step's update is undone (weights and optimizer as
/// before the step) and recorded in `state` ([`TrainState::record_update`]);
/// `objective/skipped_updates` counts such steps.
pub fn rl_step<P: Policy>(
    policy: &mut P,
    task: &dyn Task,
    cfg: &RlConfig,
    state: &mut TrainState,
    clock: Option<Clock>,
) -> Result<Metrics> {
    cfg.validate()?;
    let now = || clock.map_or(0.0, |c| c());
    let t0 = now();
    let batch = sample_batch(policy, task, cfg, state)?;
    let t1 = now();

    let (b, g) = (cfg.prompts, cfg.group);
    let mut totals = Totals::new(batch.tokens.len());
    let pre = if cfg.measure_entropy {
        entropy_pred::before(policy, batch.prompts.view(0, b), g, &batch.tokens, cfg.processing())?
    } else {
        None
    };
    let before_update = Snapshot::take(policy)?;
    let mut skipped = super::minibatch::update_all(policy, cfg, &batch, &mut totals)?;
    if skipped.is_none() && !all_finite(&policy.parameters()?) {
        skipped = Some(NonFinite::Parameters);
    }
    if skipped.is_some() {
        before_update.restore(policy)?;
    }
    state.record_update(skipped);
    let t2 = now();
    let updates = (cfg.epochs * cfg.minibatches) as f64;
    state.rl_steps += 1;

    let mut m = Metrics::new();
    push(&mut m, "step/rl", state.rl_steps as f64);
    reward_metrics(&mut m, &batch.rewards, g);
    let Totals { loss_sum, clipped, kept, grad_norm, tax, diag } = totals;
    push(&mut m, "objective/loss", loss_sum / cfg.minibatches as f64);
    push(&mut m, "objective/clipped_fraction", clipped as f64 / kept.max(1) as f64);
    push(&mut m, "objective/kept_tokens", kept as f64 / cfg.epochs as f64);
    push(&mut m, "objective/grad_norm", grad_norm / updates);
    push(&mut m, "objective/skipped_updates", state.skipped_updates as f64);
    push(&mut m, "entropy/mean", tax.mean_entropy());
    for (code, name) in BinSpec::NAMES.iter().enumerate() {
        push(&mut m, &format!("bins/{name}_count"), tax.count[code] as f64);
        push(&mut m, &format!("bins/{name}_kept"), tax.kept[code] as f64);
    }
    // The diagnostics this step does not already report (it reports the
    // loss, the clipped fraction, the entropy and the bins over the step).
    for (k, v) in diag {
        if metric(&m, &k).is_none() {
            m.push((k, v));
        }
    }
    if cfg.measure_entropy {
        let prompts = batch.prompts.view(0, b);
        entropy_pred::after(
            policy,
            prompts,
            g,
            &batch.tokens,
            &batch.mask,
            cfg.processing(),
            pre.as_ref(),
            &tax,
            &mut m,
        )?;
    }
    let t3 = now();
    if clock.is_some() {
        push(&mut m, "time/generate_s", t1 - t0);
        push(&mut m, "time/train_s", t2 - t1);
        push(&mut m, "time/entropy_s", t3 - t2);
        push(&mut m, "time/step_s", t3 - t0);
    }
    Ok(m)
}

/// The weights and optimizer state before an update, to undo it.
pub(crate) struct Snapshot {
    params: Vec<Named>,
    optim: OptimState,
}

impl Snapshot {
    pub(crate) fn take<P: Policy>(policy: &P) -> Result<Self> {
        Ok(Snapshot { params: policy.parameters()?, optim: policy.optimizer_state()? })
    }

    pub(crate) fn restore<P: Policy>(&self, policy: &mut P) -> Result<()> {
        policy.zero_grad();
        policy.load_parameters(&self.params)?;
        policy.load_optimizer_state(&self.optim)
    }
}

pub(crate) fn all_finite(params: &[Named]) -> bool {
    params.iter().all(|t| t.data.iter().all(|x| x.is_finite()))
}

/// Draws B training prompts and the N·T sampling uniforms from `state`, then
/// generates and scores.
fn sample_batch<P: Policy>(policy: &mut P, task: &dyn Task, cfg: &RlConfig, state: &mut TrainState) -> Result<Batch> {
    let (p, t) = (task.prompt_len(), task.completion_len());
    let examples: Vec<Example> =
        state.indices(cfg.prompts).into_iter().map(|i| task.example(Split::Train, i)).collect();
    let prompts = flatten_prompts(&examples, p)?;
    let n = cfg.prompts * cfg.group;
    let uniforms = state.uniforms(n * t);
    let prompt_view = prompts.view(0, cfg.prompts);
    let sampling = Sampling { stop: task.stop_tokens().to_vec(), ..cfg.sampling.clone() };
    let r = policy.generate(prompt_view, cfg.group, t, cfg.objective.temperature, &uniforms, &sampling)?;
    let rewards = (0..n).map(|i| task.reward(&examples[i / cfg.group], &r.tokens[i * t..(i + 1) * t])).collect();
    let mask = r.mask();
    Ok(Batch { prompts, tokens: r.tokens, old_logprobs: r.logprobs, mask, rewards, t })
}

/// Prompts of a batch, left-padded to the longest (see [`Prompts::pad`]).
pub(crate) struct Padded {
    pub tokens: Vec<u32>, // (B, P)
    /// (B) padding per prompt; empty when every prompt has the same length.
    pub pad: Vec<usize>,
    pub len: usize,
}

impl Padded {
    pub fn view(&self, lo: usize, hi: usize) -> Prompts<'_> {
        let pad = if self.pad.is_empty() { &[][..] } else { &self.pad[lo..hi] };
        Prompts { tokens: &self.tokens[lo * self.len..hi * self.len], batch: hi - lo, len: self.len, pad }
    }
}

/// The (B, P) prompt tokens of `examples`, left-padded to the longest; fails
/// when a prompt is empty or longer than the task's `max_len`.
pub(crate) fn flatten_prompts(examples: &[Example], max_len: usize) -> Result<Padded> {
    let len = examples.iter().map(|e| e.prompt.len()).max().unwrap_or(0);
    if let Some(e) = examples.iter().find(|e| e.prompt.is_empty() || e.prompt.len() > max_len) {
        return Err(Error::Shape {
            field: "task.prompt",
            expected: Shape::d1(max_len),
            got: Shape::d1(e.prompt.len()),
        });
    }
    let refs: Vec<&[u32]> = examples.iter().map(|e| e.prompt.as_slice()).collect();
    let (tokens, mut pad) = crate::rl::left_pad(&refs, 0);
    if pad.iter().all(|&q| q == 0) {
        pad.clear();
    }
    Ok(Padded { tokens, pad, len })
}

fn reward_metrics(m: &mut Metrics, rewards: &[f64], g: usize) {
    let n = rewards.len().max(1) as f64;
    push(m, "rollout/reward_mean", rewards.iter().sum::<f64>() / n);
    let (mut solved, mut no_signal) = (0usize, 0usize);
    let groups = rewards.chunks(g.max(1));
    let count = groups.len().max(1) as f64;
    for grp in groups {
        solved += usize::from(grp.iter().any(|&r| crate::task::solves(r)));
        no_signal += usize::from(grp.iter().all(|&r| r == grp[0]));
    }
    push(m, "rollout/groups_solved", solved as f64 / count);
    push(m, "rollout/groups_no_signal", no_signal as f64 / count);
}

/// The token statistics a logits-level evaluation already computed (its
/// fused kernel's ℓ, H, Σp², Σp²·log p): the taxonomy reads these rather
/// than downloading the (N, T, V) logits.
pub(super) fn output_stats<T: Tensor>(out: &crate::objective::Output<T>) -> Result<TokenStats> {
    let narrow = |x: Option<&T>, what: &'static str| -> Result<Vec<f32>> {
        let x = x.ok_or(Error::Backend(format!("the logits objective returned no {what}")))?;
        Ok(download(x)?.iter().map(|&v| v as f32).collect())
    };
    Ok(TokenStats {
        logprobs: narrow(Some(&out.logprobs), "log-probs")?,
        entropy: narrow(out.entropy.as_ref(), "entropy")?,
        sum_p_sq: narrow(out.sum_p_sq.as_ref(), "Σp²")?,
        sum_p_sq_logp: narrow(out.sum_p_sq_logp.as_ref(), "Σp²·log p")?,
    })
}

/// Adds one minibatch's share of the §8 diagnostics to `acc` (their mean
/// over `parts` minibatches).
fn add_diagnostics<T: Tensor>(
    acc: &mut Metrics,
    out: &crate::objective::Output<T>,
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

/// Mean entropy of softmax(z/τ) over every position of (N, T, V) logits.
pub fn mean_entropy<T: Tensor>(logits: &T, tokens: &[u32], tau: f64) -> Result<f64> {
    let v = logits.shape().last();
    let z = download(logits)?;
    let rows = z.len() / v.max(1);
    let sum: f64 = (0..rows)
        .map(|i| row_stats(&z[i * v..(i + 1) * v], tokens.get(i).map_or(0, |&y| y as usize), tau).entropy)
        .sum();
    Ok(sum / rows.max(1) as f64)
}

pub(crate) fn download<T: Tensor>(x: &T) -> Result<Vec<f64>> {
    let mut out = vec![0.0; x.shape().numel()];
    x.download(&mut out)?;
    Ok(out)
}

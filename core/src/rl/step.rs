//! One RL step, written once for every backend: sample prompts, generate G
//! completions per prompt, score them, then `epochs` × `minibatches`
//! optimizer steps on the configured objective, with the token taxonomy of
//! `OBJECTIVE.md` §7 in the metrics.

use alloc::format;
use alloc::vec;
use alloc::vec::Vec;

use crate::advantage::Groups;
use crate::error::{Error, Result};
use crate::logits::{LogitsBatch, logits_objective, row_stats};
use crate::objective::{BinSpec, ObjectiveConfig, TokenBatch, token_objective};
use crate::rl::entropy_pred::{self, Taxonomy};
use crate::rl::policy::{Named, OptimConfig, OptimState, Policy, Prompts, Sampling, TokenStats};
use crate::rl::state::{NonFinite, TrainState};
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
    /// The objective; its `temperature` is also the sampling temperature.
    pub objective: ObjectiveConfig,
    pub optim: OptimConfig,
    /// One extra forward after the update to measure the entropy change.
    pub measure_entropy: bool,
    /// Top-k / top-p of the rollouts (the task adds its stop tokens).
    pub sampling: Sampling,
}

impl RlConfig {
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
        self.sampling.validate()?;
        // The importance ratio needs the trainer's ℓ under the same
        // truncation as the sampler's; the trainer computes the full softmax,
        // so the ratio would be biased from the first update.
        const TRUNCATED: &str = "training with top-k / top-p rollouts is not supported yet (the trainer's log-probs would not match the sampler's); use them with `wapo generate`";
        if self.sampling.top_k > 0 {
            return bad("rollout.top_k", TRUNCATED);
        }
        if self.sampling.top_p > 0.0 && self.sampling.top_p < 1.0 {
            return bad("rollout.top_p", TRUNCATED);
        }
        self.objective.validate()
    }
}

/// A sampled batch: examples, rollouts and rewards.
struct Batch {
    prompts: Padded,  // (B, P)
    tokens: Vec<u32>, // (N, T)
    old_logprobs: Vec<f32>,
    /// (N, T) 1 up to where each completion ended.
    mask: Vec<f64>,
    rewards: Vec<f64>, // (N)
    t: usize,
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

    let (b, g, t) = (cfg.prompts, cfg.group, batch.t);
    let mut tax = Taxonomy::new(batch.tokens.len());
    let pre = if cfg.measure_entropy {
        entropy_pred::before(policy, batch.prompts.view(0, b), g, &batch.tokens)?
    } else {
        None
    };
    // The §8 diagnostics of each minibatch of the first pass, averaged.
    let mut diag: Metrics = Metrics::new();
    let (mut loss_sum, mut clipped, mut kept, mut grad_norm) = (0.0, 0u64, 0u64, 0.0);
    let before_update = Snapshot::take(policy)?;
    let mut skipped = None;
    'updates: for epoch in 0..cfg.epochs {
        for mb in 0..cfg.minibatches {
            let (lo, hi) = (mb * b / cfg.minibatches, (mb + 1) * b / cfg.minibatches);
            let prompts = batch.prompts.view(lo, hi);
            let rows = lo * g..hi * g;
            let tokens = &batch.tokens[rows.start * t..rows.end * t];
            let dev = policy.device();
            let ids: Vec<f64> = (0..(hi - lo) * g).map(|n| (n / g) as f64).collect();
            let nm = ids.len();
            let groups = Groups::from_dense(P::T::upload(&dev, &ids, Shape::d1(nm))?, hi - lo);
            let up = |data: &[f64], shape| P::T::upload(&dev, data, shape);
            let rewards = up(&batch.rewards[rows.clone()], Shape::d1(nm))?;
            let mask = up(&batch.mask[rows.start * t..rows.end * t], Shape::d2(nm, t))?;
            let old: Vec<f64> = batch.old_logprobs[rows.start * t..rows.end * t].iter().map(|&l| l as f64).collect();
            let old_t = up(&old, Shape::d2(nm, t))?;
            if policy.config().chunked_head() {
                // The logits never exist: the objective at token level on the
                // policy's statistics, its ∂loss/∂ℓ back to the policy.
                let tau = cfg.objective.temperature;
                let stats = policy.forward_stats(prompts, g, tokens, tau)?;
                let wide = |x: &[f32]| x.iter().map(|&v| v as f64).collect::<Vec<f64>>();
                let out = token_objective(
                    &cfg.objective,
                    &TokenBatch {
                        groups: &groups,
                        rewards: &rewards,
                        mask: &mask,
                        logprobs: &up(&wide(&stats.logprobs), Shape::d2(nm, t))?,
                        old_logprobs: &old_t,
                        sum_p_sq: Some(&up(&wide(&stats.sum_p_sq), Shape::d2(nm, t))?),
                    },
                )?;
                let summary = out.summary()?;
                clipped += summary.clipped_tokens;
                kept += summary.bins.kept.iter().sum::<u64>();
                if epoch == 0 {
                    loss_sum += summary.loss;
                    tax.accumulate(rows.start * t, &batch.mask[rows.start * t..rows.end * t], &stats, &out)?;
                    let gids: Vec<i64> = ids.iter().map(|&x| x as i64).collect();
                    add_diagnostics(&mut diag, &out, &old_t, &batch.rewards[rows.clone()], &gids, cfg.minibatches)?;
                }
                let grad: Vec<f32> = download(&out.grad_logprobs)?.iter().map(|&x| x as f32).collect();
                policy.zero_grad();
                policy.backward_logprobs(prompts, g, tokens, &grad, tau)?;
                grad_norm += policy.optimizer_step(&cfg.optim)?;
                continue;
            }
            let logits = policy.forward(prompts, g, tokens)?; // (Nm, T, V)
            let tok_f: Vec<f64> = tokens.iter().map(|&y| y as f64).collect();
            let tok_t = up(&tok_f, Shape::d2(nm, t))?;
            let out = logits_objective(
                &cfg.objective,
                &LogitsBatch {
                    groups: &groups,
                    rewards: &rewards,
                    mask: &mask,
                    logits: &logits,
                    tokens: &tok_t,
                    old_logprobs: &old_t,
                },
            );
            let out = match out {
                Err(Error::NonFinite { .. } | Error::Invalid { field: "logits", .. }) => {
                    skipped = Some(NonFinite::Logits);
                    break 'updates;
                }
                other => other?,
            };
            let summary = out.summary()?;
            if !summary.loss.is_finite() {
                skipped = Some(NonFinite::Loss);
                break 'updates;
            }
            clipped += summary.clipped_tokens;
            kept += summary.bins.kept.iter().sum::<u64>();
            if epoch == 0 {
                loss_sum += summary.loss;
                let stats = output_stats(&out)?;
                tax.accumulate(rows.start * t, &batch.mask[rows.start * t..rows.end * t], &stats, &out)?;
                let gids: Vec<i64> = ids.iter().map(|&x| x as i64).collect();
                add_diagnostics(&mut diag, &out, &old_t, &batch.rewards[rows.clone()], &gids, cfg.minibatches)?;
            }
            let grad = out
                .grad_logits
                .as_ref()
                .ok_or(Error::Backend("the logits objective returned no ∂loss/∂logits".into()))?;
            policy.zero_grad();
            policy.backward(grad)?;
            let norm = policy.optimizer_step(&cfg.optim)?;
            if !norm.is_finite() {
                skipped = Some(NonFinite::Gradient);
                break 'updates;
            }
            grad_norm += norm;
        }
    }
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
        let (prompts, tau) = (batch.prompts.view(0, b), cfg.objective.temperature);
        entropy_pred::after(policy, prompts, g, &batch.tokens, &batch.mask, tau, pre.as_ref(), &tax, &mut m)?;
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
    let r = policy.generate_with(prompt_view, cfg.group, t, cfg.objective.temperature, &uniforms, &sampling)?;
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
fn output_stats<T: Tensor>(out: &crate::objective::Output<T>) -> Result<TokenStats> {
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

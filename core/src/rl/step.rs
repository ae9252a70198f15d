//! One RL step, written once for every backend and read top to bottom in
//! [`rl_step`]: sample G completions of B prompts, score them, plan the
//! `epochs` × `minibatches` optimizer steps, update (each step in
//! [`super::minibatch`]), and measure: the metrics, with the token taxonomy
//! of `OBJECTIVE.md` §7 and the entropy change of [`super::entropy_pred`].

use alloc::format;
use alloc::vec::Vec;

use crate::error::Result;
use crate::objective::BinSpec;
use crate::rl::batch::{Batch, Padded, flatten_prompts};
use crate::rl::config::RlConfig;
use crate::rl::entropy_pred::{self, Before};
use crate::rl::guard::{Snapshot, all_finite};
use crate::rl::metrics::{Clock, Metrics, metric, push};
use crate::rl::minibatch::{self, Totals, Update, Way};
use crate::rl::policy::{Policy, Rollout};
use crate::rl::state::{NonFinite, TrainState};
use crate::rl::truncate::Sampling;
use crate::task::{Example, Split, Task};

/// One RL step; advances `state` (RNG, `rl_steps`) and the policy's weights.
///
/// When the logits, the loss, the gradient or the updated parameters turn
/// NaN or infinite, the step's update is undone (weights and optimizer as
/// before the step) and recorded in `state` ([`TrainState::record_update`]);
/// `objective/skipped_updates` counts such steps, `objective/update_skipped`
/// is 1 for this one. A batch without gradient makes no update and leaves
/// the count of skips in a row as it was ([`TrainState::record_no_update`]).
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
    let sampled = sample(policy, task, cfg, state)?;
    let batch = score(task, cfg, sampled);
    let t1 = now();
    let plan = plan(policy, cfg);
    let before = measure_before(policy, cfg, &batch)?;
    let totals = update(policy, cfg, &batch, &plan, state)?;
    let t2 = now();
    state.rl_steps += 1;
    let mut m = measure(policy, cfg, &batch, before.as_ref(), totals, state)?;
    let t3 = now();
    if clock.is_some() {
        push(&mut m, "time/generate_s", t1 - t0);
        push(&mut m, "time/train_s", t2 - t1);
        push(&mut m, "time/entropy_s", t3 - t2);
        push(&mut m, "time/step_s", t3 - t0);
    }
    Ok(m)
}

/// The rollouts of a step before scoring: the examples drawn, their prompts
/// and the G completions of each.
struct Sampled {
    examples: Vec<Example>,
    prompts: Padded,
    rollout: Rollout,
}

/// Sample: B training prompts and the N·T uniforms from `state`, then G completions of each prompt.
fn sample<P: Policy>(policy: &mut P, task: &dyn Task, cfg: &RlConfig, state: &mut TrainState) -> Result<Sampled> {
    let (p, t) = (task.prompt_len(), task.completion_len());
    let examples: Vec<Example> =
        state.indices(cfg.prompts).into_iter().map(|i| task.example(Split::Train, i)).collect();
    let prompts = flatten_prompts(&examples, p)?;
    let uniforms = state.uniforms(cfg.prompts * cfg.group * t);
    let sampling = Sampling { stop: task.stop_tokens().to_vec(), ..cfg.sampling.clone() };
    let view = prompts.view(0, cfg.prompts);
    let rollout = policy.generate(view, cfg.group, t, cfg.objective.temperature, &uniforms, &sampling)?;
    Ok(Sampled { examples, prompts, rollout })
}

/// Score: the task's reward of every completion, in the batch the updates read.
fn score(task: &dyn Task, cfg: &RlConfig, sampled: Sampled) -> Batch {
    let Sampled { examples, prompts, rollout: r } = sampled;
    let (n, t) = (cfg.prompts * cfg.group, task.completion_len());
    let rewards = (0..n).map(|i| task.reward(&examples[i / cfg.group], &r.tokens[i * t..(i + 1) * t])).collect();
    let mask = r.mask();
    Batch { prompts, tokens: r.tokens, old_logprobs: r.logprobs, mask, rewards, t }
}

/// Plan: the optimizer steps in order, `epochs` passes of `minibatches` slices of whole groups.
fn plan<P: Policy>(policy: &P, cfg: &RlConfig) -> Vec<Update> {
    let (b, k) = (cfg.prompts, cfg.minibatches);
    let way = Way::of(policy.config(), cfg);
    (0..cfg.epochs)
        .flat_map(|epoch| {
            (0..k).map(move |mb| Update { prompts: mb * b / k..(mb + 1) * b / k, first_pass: epoch == 0, way })
        })
        .collect()
}

/// Measure, before the update: the batch's logits, when the step measures its entropy change.
fn measure_before<P: Policy>(policy: &mut P, cfg: &RlConfig, batch: &Batch) -> Result<Option<Before>> {
    if !cfg.measure_entropy {
        return Ok(None);
    }
    entropy_pred::before(policy, batch.prompts.view(0, cfg.prompts), cfg.group, &batch.tokens, cfg.processing())
}

/// Update: the plan's optimizer steps, undone together when one turns NaN or ±inf (recorded in `state`).
fn update<P: Policy>(
    policy: &mut P,
    cfg: &RlConfig,
    batch: &Batch,
    plan: &[Update],
    state: &mut TrainState,
) -> Result<Totals> {
    let mut totals = Totals::new(batch.tokens.len());
    let before_update = Snapshot::take(policy)?;
    let mut skipped = None;
    for u in plan {
        skipped = minibatch::update(policy, cfg, batch, u, &mut totals)?;
        if skipped.is_some() {
            break;
        }
    }
    if skipped.is_none() && !all_finite(&policy.parameters()?) {
        skipped = Some(NonFinite::Parameters);
    }
    if skipped.is_some() {
        before_update.restore(policy)?;
    }
    // Norms are ≥ 0: a zero sum means no planned step had a gradient.
    if skipped.is_none() && totals.grad_norm == 0.0 {
        state.record_no_update();
    } else {
        state.record_update(skipped);
    }
    Ok(totals)
}

/// Measure: the step's metrics, and the entropy change against `before` when asked.
fn measure<P: Policy>(
    policy: &mut P,
    cfg: &RlConfig,
    batch: &Batch,
    before: Option<&Before>,
    totals: Totals,
    state: &TrainState,
) -> Result<Metrics> {
    let (b, g) = (cfg.prompts, cfg.group);
    let updates = (cfg.epochs * cfg.minibatches) as f64;
    let mut m = Metrics::new();
    push(&mut m, "step/rl", state.rl_steps as f64);
    reward_metrics(&mut m, &batch.rewards, g);
    let Totals { loss_sum, clipped, kept, grad_norm, tax, diag } = totals;
    push(&mut m, "objective/loss", loss_sum / cfg.minibatches as f64);
    push(&mut m, "objective/clipped_fraction", clipped as f64 / kept.max(1) as f64);
    push(&mut m, "objective/kept_tokens", kept as f64 / cfg.epochs as f64);
    push(&mut m, "objective/grad_norm", grad_norm / updates);
    push(&mut m, "objective/skipped_updates", state.skipped_updates as f64);
    push(&mut m, "objective/update_skipped", f64::from(u8::from(state.last_skip.is_some())));
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
        entropy_pred::after(policy, prompts, g, &batch.tokens, &batch.mask, cfg.processing(), before, &tax, &mut m)?;
    }
    Ok(m)
}

/// The rollouts' rewards: their mean, and the share of groups solved or
/// without signal (every reward equal).
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

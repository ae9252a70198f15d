//! One RL step, written once for every backend: sample prompts, generate G
//! completions per prompt, score them, then `epochs` × `minibatches`
//! optimizer steps on the configured objective ([`super::minibatch`]), with
//! the token taxonomy of `OBJECTIVE.md` §7 in the metrics.

use alloc::format;
use alloc::vec::Vec;

use crate::error::Result;
use crate::objective::BinSpec;
use crate::rl::batch::{Batch, flatten_prompts};
use crate::rl::config::RlConfig;
use crate::rl::entropy_pred;
use crate::rl::guard::{Snapshot, all_finite};
use crate::rl::metrics::{Clock, Metrics, metric, push};
use crate::rl::minibatch::{self, Totals};
use crate::rl::policy::Policy;
use crate::rl::state::{NonFinite, TrainState};
use crate::rl::truncate::Sampling;
use crate::task::{Example, Split, Task};

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
    let mut skipped = minibatch::update_all(policy, cfg, &batch, &mut totals)?;
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

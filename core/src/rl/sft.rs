//! The SFT warm start: cross-entropy on gold completions until the policy
//! reaches a target held-out greedy accuracy (RL needs a policy that
//! sometimes succeeds) or a step cap.
//!
//! A text task pads its gold completion after the answer with its stop
//! token up to `completion_len()`; only the positions up to and including
//! the first stop token count in the loss ([`counted_len`]), so that the
//! model learns to stop but not to repeat the padding.

use alloc::vec::Vec;

use crate::error::{Error, Result};
use crate::rl::batch::flatten_prompts;
use crate::rl::eval::greedy_accuracy;
use crate::rl::guard::{Snapshot, all_finite, finite_step};
use crate::rl::metrics::{Clock, Metrics, push};
use crate::rl::policy::{OptimConfig, Policy};
use crate::rl::state::{NonFinite, TrainState};
use crate::task::{Example, Split, Task};

#[derive(Clone, Debug, PartialEq)]
pub struct SftConfig {
    /// Examples per step.
    pub batch: usize,
    /// Stop after this many SFT steps in all (counted in [`TrainState::sft_steps`]).
    pub max_steps: u64,
    /// Stop once held-out greedy exact match reaches this.
    pub target_accuracy: f64,
    /// Held-out check every this many steps (0: never; run to `max_steps`).
    pub eval_every: u64,
    /// Held-out examples in that check.
    pub eval_examples: usize,
    pub optim: OptimConfig,
}

impl SftConfig {
    pub fn validate(&self) -> Result<()> {
        if self.batch == 0 {
            return Err(Error::Config { field: "sft.batch", reason: "must be ≥ 1" });
        }
        Ok(())
    }
}

/// How many leading positions of a gold completion count in the SFT loss:
/// every position up to and including its first token in `stop` (the model
/// must learn to stop), all of them when none occurs (the fixed-length toy
/// tasks have no stop tokens, so every position counts). The positions
/// after the first stop token are padding and do not count.
pub fn counted_len(gold: &[u32], stop: &[u32]) -> usize {
    gold.iter().position(|y| stop.contains(y)).map_or(gold.len(), |i| i + 1)
}

/// One SFT step on `cfg.batch` training examples drawn from `state`. An
/// update whose loss, gradient or parameters turn NaN or infinite is undone
/// and recorded in `state` (`sft/skipped_updates` counts them).
pub fn sft_step<P: Policy>(
    policy: &mut P,
    task: &dyn Task,
    cfg: &SftConfig,
    state: &mut TrainState,
) -> Result<Metrics> {
    cfg.validate()?;
    let examples: Vec<Example> = state.indices(cfg.batch).into_iter().map(|i| task.example(Split::Train, i)).collect();
    let (p, t) = (task.prompt_len(), task.completion_len());
    let prompts = flatten_prompts(&examples, p)?;
    let mut gold = Vec::with_capacity(cfg.batch * t);
    let mut lengths = Vec::with_capacity(cfg.batch);
    for e in &examples {
        if e.gold.len() != t {
            return Err(Error::Config {
                field: "task.gold",
                reason: "gold completion length differs from completion_len()",
            });
        }
        gold.extend_from_slice(&e.gold);
        lengths.push(counted_len(&e.gold, task.stop_tokens()));
    }
    let before_update = Snapshot::take(policy)?;
    policy.zero_grad();
    let loss = policy.sft(prompts.view(0, cfg.batch), &gold, &lengths)?;
    let mut skipped = None;
    let mut norm = f64::NAN;
    if !loss.is_finite() {
        skipped = Some(NonFinite::Loss);
    } else {
        match finite_step(policy, &cfg.optim)? {
            None => skipped = Some(NonFinite::Gradient),
            Some(n) => norm = n,
        }
        if skipped.is_none() && !all_finite(&policy.parameters()?) {
            skipped = Some(NonFinite::Parameters);
        }
    }
    if skipped.is_some() {
        before_update.restore(policy)?;
    }
    state.record_update(skipped);
    state.sft_steps += 1;
    let mut m = Metrics::new();
    push(&mut m, "step/sft", state.sft_steps as f64);
    push(&mut m, "sft/loss", loss);
    push(&mut m, "sft/grad_norm", norm);
    push(&mut m, "sft/skipped_updates", state.skipped_updates as f64);
    Ok(m)
}

/// SFT until the held-out greedy accuracy reaches `cfg.target_accuracy` or
/// `state.sft_steps` reaches `cfg.max_steps`; `on_step` sees every step's
/// metrics (with `eval/greedy_exact` on check steps). Returns the last check.
pub fn warm_start<P: Policy>(
    policy: &mut P,
    task: &dyn Task,
    cfg: &SftConfig,
    state: &mut TrainState,
    clock: Option<Clock>,
    on_step: &mut dyn FnMut(&Metrics),
) -> Result<Metrics> {
    warm_start_until(policy, task, cfg, state, clock, &mut |m, _| {
        on_step(m);
        true
    })
}

/// [`warm_start`], stopping early when `on_step` (which also sees the
/// state, e.g. its skipped updates) returns false.
pub fn warm_start_until<P: Policy>(
    policy: &mut P,
    task: &dyn Task,
    cfg: &SftConfig,
    state: &mut TrainState,
    clock: Option<Clock>,
    on_step: &mut dyn FnMut(&Metrics, &TrainState) -> bool,
) -> Result<Metrics> {
    let now = || clock.map_or(0.0, |c| c());
    let mut last = Metrics::new();
    while state.sft_steps < cfg.max_steps {
        let t0 = now();
        let mut m = sft_step(policy, task, cfg, state)?;
        if clock.is_some() {
            push(&mut m, "time/sft_step_s", now() - t0);
        }
        let check = cfg.eval_every > 0 && state.sft_steps.is_multiple_of(cfg.eval_every);
        let mut done = false;
        if check {
            let acc = greedy_accuracy(policy, task, cfg.eval_examples, cfg.batch)?;
            push(&mut m, "eval/greedy_exact", acc);
            done = acc >= cfg.target_accuracy;
            last = m.clone();
        }
        if !on_step(&m, state) || done {
            break;
        }
    }
    Ok(last)
}

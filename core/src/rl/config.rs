//! The knobs of the RL step ([`RlConfig`]): batch shape, passes and
//! minibatches, the objective, the optimizer and the rollouts' sampling.

use crate::error::{Error, Result};
use crate::objective::ObjectiveConfig;
use crate::rl::policy::OptimConfig;
use crate::rl::truncate::{Processing, Sampling};

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

//! The training loop, written once over any backend's [`Policy`] and
//! [`crate::Tensor`]: the SFT warm start ([`warm_start`]), the RL step
//! ([`rl_step`]; its minibatch and micro-batch updates in `minibatch.rs`),
//! the top-k / top-p rule shared by sampler and trainer ([`truncate`]), the
//! entropy-change prediction of a step ([`entropy_pred`]) and held-out
//! evaluation ([`evaluate`]).
//!
//! Each file imports only files listed before it, so they form no circle:
//! `arch`, `rows`, `state`, `metrics` and `truncate` import none;
//! `policy` (the trait and its defaults); `checks`, `layout`, `batch`,
//! `guard` (the non-finite guard), `readback` and `config`;
//! `entropy_pred`; `minibatch` (one optimizer step); `step` (the RL step:
//! sample, score, plan, update, measure); `eval`; `sft`. This file only
//! declares them and re-exports.
//!
//! Metrics are a flat list of namespaced `(name, value)` pairs
//! (`rollout/reward_mean`, `objective/clipped_fraction`, `entropy/mean`,
//! `bins/pos_peak_count`, `entropy/delta_pred`, `entropy/delta_measured`,
//! `eval/greedy_exact`, `eval/pass@k`, `time/generate_s`, ...), ready for one
//! `metrics.jsonl` record per step.
//!
//! A run, with the CPU policy (`wapo_cpu::model::CpuModel`) and some [`Task`]:
//!
//! ```ignore
//! use wapo_core::rl::*;
//! use wapo_core::{Objective, ObjectiveConfig};
//!
//! let task: &dyn Task = &my_task;
//! let model = ModelConfig::toy(task.vocab_size(), task.prompt_len() + task.completion_len());
//! // Logits come out as `CpuTensor` (the fused objective) or `HostTensor<f32>` (the default).
//! let mut policy: wapo_cpu::model::CpuModel<wapo_cpu::CpuTensor> = wapo_cpu::model::CpuModel::new(model, /* init seed */ 0)?;
//! let mut state = TrainState::new(/* seed */ 1);
//! let optim = OptimConfig { lr: 1e-3, ..OptimConfig::default() };
//! let sft = SftConfig { batch: 64, max_steps: 500, target_accuracy: 0.3,
//!                       eval_every: 25, eval_examples: 256, optim };
//! warm_start(&mut policy, task, &sft, &mut state, Some(wall_clock), &mut |m| log(m))?;
//! let mut objective = ObjectiveConfig::new(Objective::Wapo, task.completion_len());
//! objective.temperature = 1.0;
//! let rl = RlConfig { prompts: 64, group: 8, epochs: 1, minibatches: 1, micro_batches: 1, objective,
//!                     optim: OptimConfig { lr: 1e-4, ..optim }, measure_entropy: true,
//!                     sampling: Default::default() };
//! for _ in 0..100 {
//!     let metrics = rl_step(&mut policy, task, &rl, &mut state, Some(wall_clock))?;
//! }
//! let eval = EvalConfig { examples: 512, k: 8, temperature: 1.0, seed: 0, batch: 64 };
//! let metrics = evaluate(&mut policy, task, &eval)?;
//! // Resume: save policy.parameters(), policy.optimizer_state() and
//! // state.to_text() (wapo_io::checkpoint does all three atomically).
//! ```

pub mod arch;
mod batch;
mod checks;
mod config;
pub mod entropy_pred;
mod eval;
mod guard;
pub mod layout;
mod metrics;
mod minibatch;
mod policy;
mod readback;
mod rows;
mod sft;
mod state;
mod step;
pub mod truncate;

pub use crate::task::{Example, Split, Task};
pub use arch::{Family, ModelConfig, RopeScaling};
pub use checks::Generation;
pub use config::RlConfig;
pub use eval::{EvalConfig, evaluate, greedy_accuracy};
pub use layout::Layout;
#[cfg(feature = "std")]
pub use metrics::wall_clock;
pub use metrics::{Clock, Metrics, metric};
pub use policy::{
    Named, OptimConfig, OptimState, Policy, Prompts, Rollout, TokenStats, backward_via_logits, check_tokens, left_pad,
    sft_via_stats, stats_via_logits,
};
pub use readback::mean_entropy;
pub use rows::Rows;
pub use sft::{SftConfig, counted_len, sft_step, warm_start, warm_start_until};
pub use state::{NonFinite, TrainState, uniform};
pub use step::rl_step;
pub use truncate::{Processing, Sampling};

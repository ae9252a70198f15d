//! Evaluation on the held-out split: greedy exact match, pass@k with
//! sampling, mean reward and mean entropy. It draws from its own seeded RNG,
//! so evaluating never perturbs the training stream.

use alloc::vec::Vec;

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;

use crate::error::{Error, Result};
use crate::rl::batch::flatten_prompts;
use crate::rl::metrics::{Metrics, push};
use crate::rl::policy::Policy;
use crate::rl::readback::mean_entropy;
use crate::rl::state::uniform;
use crate::rl::truncate::{Processing, Sampling};
use crate::task::{Example, Split, Task};

#[derive(Clone, Debug, PartialEq)]
pub struct EvalConfig {
    /// Held-out examples 0..examples.
    pub examples: usize,
    /// Samples per prompt for pass@k, mean reward and entropy (0: greedy only).
    pub k: usize,
    pub temperature: f64,
    pub seed: u64,
    /// Prompts per generation call.
    pub batch: usize,
}

/// `eval/greedy_exact`, `eval/pass@k`, `eval/k`, `eval/reward_mean`,
/// `eval/entropy_mean`; for a task whose completions end at a stop token,
/// also `eval/length_mean` (tokens of a greedy completion, its stop token
/// included) and `eval/truncated_fraction` (greedy completions cut at the
/// completion length before any stop token).
pub fn evaluate<P: Policy>(policy: &mut P, task: &dyn Task, cfg: &EvalConfig) -> Result<Metrics> {
    if cfg.examples == 0 || cfg.batch == 0 {
        return Err(Error::Config { field: "eval.examples", reason: "examples and batch must be ≥ 1" });
    }
    let mut m = Metrics::new();
    let greedy = greedy_eval(policy, task, cfg.examples, cfg.batch)?;
    push(&mut m, "eval/greedy_exact", greedy.accuracy);
    if !task.stop_tokens().is_empty() {
        push(&mut m, "eval/length_mean", greedy.length_mean);
        push(&mut m, "eval/truncated_fraction", greedy.truncated_fraction);
    }
    if cfg.k == 0 {
        return Ok(m);
    }
    let sampling = stopping(task).unwrap_or_default();
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let (p, t, k) = (task.prompt_len(), task.completion_len(), cfg.k);
    let (mut passed, mut reward, mut entropy) = (0usize, 0.0, 0.0);
    for chunk in heldout(task, cfg.examples).chunks(cfg.batch) {
        let prompts = flatten_prompts(chunk, p)?;
        let view = prompts.view(0, chunk.len());
        let uniforms: Vec<f32> = (0..chunk.len() * k * t).map(|_| uniform(&mut rng)).collect();
        let r = policy.generate(view, k, t, cfg.temperature, &uniforms, &sampling)?;
        for (b, e) in chunk.iter().enumerate() {
            let rewards: Vec<f64> = (0..k)
                .map(|j| {
                    let n = b * k + j;
                    task.reward(e, &r.tokens[n * t..(n + 1) * t])
                })
                .collect();
            passed += usize::from(rewards.iter().any(|&x| crate::task::solves(x)));
            reward += rewards.iter().sum::<f64>();
        }
        // Greedy sampling (τ = 0) reports the entropy of the untempered policy.
        let tau = if cfg.temperature > 0.0 { cfg.temperature } else { 1.0 };
        let mean = if policy.config().chunked_head() {
            let h = policy.forward_stats(view, k, &r.tokens, Processing::temperature(tau))?.entropy;
            // Positions after a row stopped repeat its stop token: not generated.
            let mask = r.mask();
            let real = mask.iter().sum::<f64>().max(1.0);
            h.iter().zip(&mask).map(|(&x, &w)| x as f64 * w).sum::<f64>() / real
        } else {
            mean_entropy(&policy.forward(view, k, &r.tokens)?, &r.tokens, tau)?
        };
        entropy += mean * chunk.len() as f64;
    }
    let n = cfg.examples as f64;
    push(&mut m, "eval/pass@k", passed as f64 / n);
    push(&mut m, "eval/k", k as f64);
    push(&mut m, "eval/reward_mean", reward / (n * k as f64));
    push(&mut m, "eval/entropy_mean", entropy / n);
    Ok(m)
}

/// What greedy decoding of the held-out examples shows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GreedyEval {
    /// Share whose greedy completion earns reward 1.
    pub accuracy: f64,
    /// Mean tokens generated, the stop token included.
    pub length_mean: f64,
    /// Share cut at the completion length before a stop token.
    pub truncated_fraction: f64,
}

/// Share of held-out examples 0..examples whose greedy completion earns reward 1.
pub fn greedy_accuracy<P: Policy>(policy: &mut P, task: &dyn Task, examples: usize, batch: usize) -> Result<f64> {
    Ok(greedy_eval(policy, task, examples, batch)?.accuracy)
}

/// Greedy decoding of held-out examples 0..examples, stopping a row at the
/// task's stop tokens (when it has any).
pub fn greedy_eval<P: Policy>(policy: &mut P, task: &dyn Task, examples: usize, batch: usize) -> Result<GreedyEval> {
    let (p, t) = (task.prompt_len(), task.completion_len());
    let stops = stopping(task);
    let (mut correct, mut tokens, mut cut) = (0usize, 0usize, 0usize);
    let all = heldout(task, examples);
    for chunk in all.chunks(batch.max(1)) {
        let prompts = flatten_prompts(chunk, p)?;
        let view = prompts.view(0, chunk.len());
        let (out, lengths) = match &stops {
            Some(sampling) => {
                let r = policy.generate(view, 1, t, 0.0, &[], sampling)?;
                (r.tokens, r.lengths)
            }
            None => (policy.greedy(view, t)?, alloc::vec![t; chunk.len()]),
        };
        for (b, e) in chunk.iter().enumerate() {
            let row = &out[b * t..(b + 1) * t];
            correct += usize::from(crate::task::solves(task.reward(e, row)));
            let len = lengths[b].min(t);
            tokens += len;
            let stopped = len > 0 && task.stop_tokens().contains(&row[len - 1]);
            cut += usize::from(stops.is_some() && !stopped);
        }
    }
    let n = all.len().max(1) as f64;
    Ok(GreedyEval { accuracy: correct as f64 / n, length_mean: tokens as f64 / n, truncated_fraction: cut as f64 / n })
}

/// Generation that ends a row at the task's stop tokens; `None` for a task
/// of fixed-length completions.
fn stopping(task: &dyn Task) -> Option<Sampling> {
    let stop = task.stop_tokens();
    (!stop.is_empty()).then(|| Sampling { stop: stop.to_vec(), ..Sampling::default() })
}

fn heldout(task: &dyn Task, n: usize) -> Vec<Example> {
    (0..n as u64).map(|i| task.example(Split::Heldout, i)).collect()
}

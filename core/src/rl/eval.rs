//! Evaluation on the held-out split: greedy exact match, pass@k with
//! sampling, mean reward and mean entropy. It draws from its own seeded RNG,
//! so evaluating never perturbs the training stream.

use alloc::vec::Vec;

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;

use crate::error::{Error, Result};
use crate::rl::policy::Policy;
use crate::rl::state::uniform;
use crate::rl::step::{flatten_prompts, mean_entropy};
use crate::rl::{Metrics, push};
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
/// `eval/entropy_mean`.
pub fn evaluate<P: Policy>(policy: &mut P, task: &dyn Task, cfg: &EvalConfig) -> Result<Metrics> {
    if cfg.examples == 0 || cfg.batch == 0 {
        return Err(Error::Config { field: "eval.examples", reason: "examples and batch must be ≥ 1" });
    }
    let mut m = Metrics::new();
    push(&mut m, "eval/greedy_exact", greedy_accuracy(policy, task, cfg.examples, cfg.batch)?);
    if cfg.k == 0 {
        return Ok(m);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let (p, t, k) = (task.prompt_len(), task.completion_len(), cfg.k);
    let (mut passed, mut reward, mut entropy) = (0usize, 0.0, 0.0);
    for chunk in heldout(task, cfg.examples).chunks(cfg.batch) {
        let prompts = flatten_prompts(chunk, p)?;
        let view = prompts.view(0, chunk.len());
        let uniforms: Vec<f32> = (0..chunk.len() * k * t).map(|_| uniform(&mut rng)).collect();
        let r = policy.generate(view, k, t, cfg.temperature, &uniforms)?;
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
            let h = policy.forward_stats(view, k, &r.tokens, crate::rl::Processing::temperature(tau))?.entropy;
            h.iter().map(|&x| x as f64).sum::<f64>() / h.len().max(1) as f64
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

/// Share of held-out examples 0..examples whose greedy completion earns reward 1.
pub fn greedy_accuracy<P: Policy>(policy: &mut P, task: &dyn Task, examples: usize, batch: usize) -> Result<f64> {
    let (p, t) = (task.prompt_len(), task.completion_len());
    let mut correct = 0usize;
    let all = heldout(task, examples);
    for chunk in all.chunks(batch.max(1)) {
        let prompts = flatten_prompts(chunk, p)?;
        let view = prompts.view(0, chunk.len());
        let out = policy.greedy(view, t)?;
        for (b, e) in chunk.iter().enumerate() {
            correct += usize::from(crate::task::solves(task.reward(e, &out[b * t..(b + 1) * t])));
        }
    }
    Ok(correct as f64 / all.len().max(1) as f64)
}

fn heldout(task: &dyn Task, n: usize) -> Vec<Example> {
    (0..n as u64).map(|i| task.example(Split::Heldout, i)).collect()
}

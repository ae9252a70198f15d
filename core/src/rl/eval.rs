//! Evaluation on the held-out split: greedy exact match; from n sampled
//! completions per prompt, pass@k for k ≤ n (the unbiased estimator),
//! mean@n, maj@n (a majority vote over the answers the task reads), mean
//! reward and mean entropy. It draws from its own seeded RNG, so evaluating
//! never perturbs the training stream.

use alloc::format;
use alloc::string::String;
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

/// `eval/greedy_exact`, `eval/pass@k` (any of the n = `cfg.k` samples
/// solves), `eval/k`, `eval/pass@{k}` for k = 1, 2, 4, … < n and n
/// ([`pass_at_k`]), `eval/mean@{n}` (the share of samples that solve),
/// `eval/maj@{n}` ([`majority_solves`]), `eval/reward_mean`,
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
    let (mut reward, mut entropy) = (0.0, 0.0);
    let sizes = pass_sizes(k);
    let (mut pass, mut solved, mut majority) = (alloc::vec![0.0; sizes.len()], 0usize, 0usize);
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
            let solves: Vec<bool> = rewards.iter().map(|&x| crate::task::solves(x)).collect();
            let c = solves.iter().filter(|&&s| s).count();
            solved += c;
            for (acc, &size) in pass.iter_mut().zip(&sizes) {
                *acc += pass_at_k(k, c, size);
            }
            let answers: Vec<Option<String>> =
                (0..k).map(|j| task.answer(e, &r.tokens[(b * k + j) * t..(b * k + j + 1) * t])).collect();
            majority += usize::from(majority_solves(&answers, &solves));
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
    // pass@n is 1 exactly when any sample solves, 0 otherwise: "any of n".
    push(&mut m, "eval/pass@k", pass.last().copied().unwrap_or(0.0) / n);
    push(&mut m, "eval/k", k as f64);
    for (acc, size) in pass.iter().zip(&sizes) {
        push(&mut m, &format!("eval/pass@{size}"), acc / n);
    }
    push(&mut m, &format!("eval/mean@{k}"), solved as f64 / (n * k as f64));
    push(&mut m, &format!("eval/maj@{k}"), majority as f64 / n);
    push(&mut m, "eval/reward_mean", reward / (n * k as f64));
    push(&mut m, "eval/entropy_mean", entropy / n);
    Ok(m)
}

/// pass@k of one problem from `n` samples of which `c` solve it: the
/// unbiased estimator 1 − C(n−c, k)/C(n, k) of Chen et al. (2021), as the
/// product 1 − Π_{i=n−c+1..n} (1 − k/i), which never overflows. `k` ≤ `n`.
pub fn pass_at_k(n: usize, c: usize, k: usize) -> f64 {
    if n - c < k {
        return 1.0;
    }
    1.0 - ((n - c + 1)..=n).map(|i| 1.0 - k as f64 / i as f64).product::<f64>()
}

/// The k of pass@k reported for `n` samples: 1, 2, 4, … below n, and n.
fn pass_sizes(n: usize) -> Vec<usize> {
    let mut ks: Vec<usize> =
        core::iter::successors(Some(1usize), |k| k.checked_mul(2)).take_while(|&k| k < n).collect();
    ks.push(n);
    ks
}

/// Whether the answer most samples give solves the problem: `None` answers
/// do not vote, a tie goes to the answer given first, and the answer solves
/// when the first sample that gives it does. No answer at all: false.
pub fn majority_solves(answers: &[Option<String>], solves: &[bool]) -> bool {
    let mut best: Option<(usize, usize)> = None; // (votes, first sample)
    for (i, a) in answers.iter().enumerate() {
        let Some(a) = a else { continue };
        if answers[..i].iter().any(|b| b.as_ref() == Some(a)) {
            continue; // counted at its first sample
        }
        let votes = answers[i..].iter().filter(|b| b.as_ref() == Some(a)).count();
        if best.is_none_or(|(v, _)| votes > v) {
            best = Some((votes, i));
        }
    }
    best.is_some_and(|(_, i)| solves[i])
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

#[cfg(test)]
mod tests {
    use alloc::string::ToString;

    use super::*;

    /// The exact binomial form, in Python:
    /// `from math import comb; 1 - comb(n - c, k) / comb(n, k)`.
    #[test]
    fn pass_at_k_is_the_unbiased_estimator() {
        let cases = [
            ((16, 0, 1), 0.0),
            ((16, 3, 1), 0.1875),
            ((16, 3, 4), 0.6071428571428572),
            ((16, 3, 8), 0.9),
            ((16, 15, 2), 1.0),
            ((16, 16, 16), 1.0),
            ((10, 1, 10), 1.0),
            ((8, 2, 3), 0.6428571428571428),
            ((100, 7, 10), 0.5332595856827855),
        ];
        for ((n, c, k), want) in cases {
            let got = pass_at_k(n, c, k);
            assert!((got - want).abs() < 1e-12, "pass@{k} of {c}/{n}: {got}, want {want}");
        }
        assert_eq!(pass_sizes(16), [1, 2, 4, 8, 16]);
        assert_eq!(pass_sizes(12), [1, 2, 4, 8, 12]);
        assert_eq!(pass_sizes(1), [1]);
    }

    #[test]
    fn the_majority_answer_decides() {
        let a = |xs: &[Option<&str>]| xs.iter().map(|x| x.map(|s| s.to_string())).collect::<Vec<_>>();
        // "4" twice beats "5" once, whichever solves.
        assert!(majority_solves(&a(&[Some("5"), Some("4"), Some("4")]), &[false, true, true]));
        assert!(!majority_solves(&a(&[Some("5"), Some("4"), Some("4")]), &[true, false, false]));
        // A tie goes to the answer given first; no answer does not vote.
        assert!(majority_solves(&a(&[None, Some("7"), Some("8"), None, None]), &[false, true, false, false, false]));
        assert!(!majority_solves(&a(&[None, None]), &[true, true]));
    }
}

//! The bin-ablation experiment: on one sampled batch, for each bin of
//! `OBJECTIVE.md` §3 in turn, one small update restricted to that bin's
//! tokens (`include_bins`), its measured effect on the entropy and the
//! sampled tokens' log-probs of those positions, next to §7's first-order
//! prediction for the same gradient; the weights go back before the next
//! bin, and every batch starts from the same weights.

use wapo_core::advantage::Groups;
use wapo_core::logits::{LogitsBatch, logits_objective, row_stats};
use wapo_core::objective::{BinSpec, ObjectiveConfig, Output};
use wapo_core::rl::{Named, OptimConfig, OptimState, Policy, Prompts, Sampling, Split, Task, TrainState, left_pad};
use wapo_core::taxonomy::bin_deltas;
use wapo_core::{Error, Result, Shape, Tensor};

/// How the restricted update is taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Optimizer {
    /// θ − lr·∇θ loss, unclipped: the setting §7's first order describes.
    Sgd,
    /// One AdamW step from fresh moments (≈ lr per coordinate), clipped as in training.
    Adamw,
}

impl Optimizer {
    pub fn name(self) -> &'static str {
        match self {
            Optimizer::Sgd => "sgd",
            Optimizer::Adamw => "adamw",
        }
    }
}

/// The experiment's knobs.
#[derive(Clone, Debug)]
pub struct Setup {
    /// Batches sampled, B prompts × G completions each.
    pub batches: usize,
    pub prompts: usize,
    pub group: usize,
    /// The objective; its `include_bins` is set per bin, its τ samples.
    pub objective: ObjectiveConfig,
    pub optimizer: Optimizer,
    /// AdamW's knobs; `optim.lr` is the step size of either optimizer.
    pub optim: OptimConfig,
}

/// One bin's update on one batch: sums over the bin's updated tokens
/// (those with ∂loss/∂ℓ ≠ 0) of the predicted and measured changes.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Trial {
    pub batch: usize,
    /// Code of the bin, the index into [`BinSpec::NAMES`].
    pub bin: usize,
    pub tokens: u64,
    pub pred_dentropy: f64,
    pub pred_dlogp: f64,
    pub meas_dentropy: f64,
    pub meas_dlogp: f64,
}

/// Runs the experiment from the policy's current weights, which it leaves
/// as they were; `state` draws the prompts and sampling uniforms.
/// `on_batch` sees each finished batch's index.
pub fn run<P: Policy>(
    policy: &mut P,
    task: &dyn Task,
    setup: &Setup,
    state: &mut TrainState,
    on_batch: &mut dyn FnMut(usize),
) -> Result<Vec<Trial>> {
    if policy.config().chunked_head() {
        return Err(Error::Config {
            field: "model",
            reason: "the taxonomy experiment reads the logits, which a chunked (large-vocabulary) head never forms",
        });
    }
    let theta = policy.parameters()?;
    let moments = policy.optimizer_state()?;
    let mut trials = Vec::new();
    for batch in 0..setup.batches {
        let result = one_batch(policy, task, setup, state, &theta, &moments, batch, &mut trials);
        restore(policy, &theta, &moments)?;
        result?;
        on_batch(batch);
    }
    Ok(trials)
}

fn restore<P: Policy>(policy: &mut P, theta: &[Named], moments: &OptimState) -> Result<()> {
    policy.zero_grad();
    policy.load_parameters(theta)?;
    policy.load_optimizer_state(moments)
}

#[allow(clippy::too_many_arguments, reason = "the experiment's state, threaded through")]
fn one_batch<P: Policy>(
    policy: &mut P,
    task: &dyn Task,
    setup: &Setup,
    state: &mut TrainState,
    theta: &[Named],
    moments: &OptimState,
    batch: usize,
    trials: &mut Vec<Trial>,
) -> Result<()> {
    let (b, g, t) = (setup.prompts, setup.group, task.completion_len());
    let n = b * g;
    let tau = setup.objective.temperature;
    let examples: Vec<_> = state.indices(b).into_iter().map(|i| task.example(Split::Train, i)).collect();
    let refs: Vec<&[u32]> = examples.iter().map(|e| e.prompt.as_slice()).collect();
    let (prompt_tokens, pad) = left_pad(&refs, 0);
    let len = prompt_tokens.len() / b.max(1);
    let pad = if pad.iter().all(|&q| q == 0) { Vec::new() } else { pad };
    let prompts = Prompts { tokens: &prompt_tokens, batch: b, len, pad: &pad };
    let uniforms = state.uniforms(n * t);
    let sampling = Sampling { stop: task.stop_tokens().to_vec(), ..Sampling::default() };
    let r = policy.generate(prompts, g, t, tau, &uniforms, &sampling)?;
    let rewards: Vec<f64> = (0..n).map(|i| task.reward(&examples[i / g], &r.tokens[i * t..(i + 1) * t])).collect();
    let mask = r.mask();

    let dev = policy.device();
    let up = |data: &[f64], shape| P::T::upload(&dev, data, shape);
    let ids: Vec<f64> = (0..n).map(|i| (i / g) as f64).collect();
    let groups = Groups::from_dense(up(&ids, Shape::d1(n))?, b);
    let rewards_t = up(&rewards, Shape::d1(n))?;
    let mask_t = up(&mask, Shape::d2(n, t))?;
    let old: Vec<f64> = r.logprobs.iter().map(|&l| l as f64).collect();
    let old_t = up(&old, Shape::d2(n, t))?;
    let tok: Vec<f64> = r.tokens.iter().map(|&y| y as f64).collect();
    let tok_t = up(&tok, Shape::d2(n, t))?;

    for bin in 0..4 {
        let mut objective = setup.objective.clone();
        objective.include_bins = BinSpec(1 << bin);
        objective.exclude_bins = BinSpec::NONE;
        // Forward again at θ: the last forward was the previous bin's after the update.
        let logits = policy.forward(prompts, g, &r.tokens)?; // (N, T, V)
        let batch_in = LogitsBatch {
            groups: &groups,
            rewards: &rewards_t,
            mask: &mask_t,
            logits: &logits,
            tokens: &tok_t,
            old_logprobs: &old_t,
        };
        let out = logits_objective(&objective, &batch_in)?;
        let pred = bin_deltas(&logits, &tok_t, tau, &out, setup.optim.lr)?[bin];
        if pred.tokens == 0 {
            continue;
        }
        let z0 = host(&logits)?;
        update(policy, setup, &out, theta, moments)?;
        let z1 = host(&policy.forward(prompts, g, &r.tokens)?)?;
        let grad = host(&out.grad_logprobs)?;
        let v = z0.len() / (n * t).max(1);
        let (mut dh, mut dl) = (0.0, 0.0);
        for (row, &y) in r.tokens.iter().enumerate() {
            if grad[row] == 0.0 {
                continue;
            }
            let (a, c) = (&z0[row * v..(row + 1) * v], &z1[row * v..(row + 1) * v]);
            let (s0, s1) = (row_stats(a, y as usize, tau), row_stats(c, y as usize, tau));
            dh += s1.entropy - s0.entropy;
            dl += s1.logp - s0.logp;
        }
        trials.push(Trial {
            batch,
            bin,
            tokens: pred.tokens,
            pred_dentropy: pred.dentropy,
            pred_dlogp: pred.dlogp,
            meas_dentropy: dh,
            meas_dlogp: dl,
        });
        restore(policy, theta, moments)?;
    }
    Ok(())
}

/// One update of `setup`'s optimizer from θ along `out`'s ∂loss/∂logits.
fn update<P: Policy>(
    policy: &mut P,
    setup: &Setup,
    out: &Output<P::T>,
    theta: &[Named],
    moments: &OptimState,
) -> Result<()> {
    let grad =
        out.grad_logits.as_ref().ok_or(Error::Backend("the logits objective returned no ∂loss/∂logits".into()))?;
    policy.zero_grad();
    policy.backward(grad)?;
    match setup.optimizer {
        Optimizer::Sgd => {
            let grads = policy.gradients()?;
            let mut next = theta.to_vec();
            for p in &mut next {
                let g = grads
                    .iter()
                    .find(|g| g.name == p.name)
                    .ok_or(Error::Backend(format!("the policy's gradients lack parameter {}", p.name)))?;
                if g.data.len() != p.data.len() {
                    return Err(Error::Backend(format!("gradient of {} has the wrong size", p.name)));
                }
                for (x, d) in p.data.iter_mut().zip(&g.data) {
                    *x = (*x as f64 - setup.optim.lr * *d as f64) as f32;
                }
            }
            policy.load_parameters(&next)
        }
        Optimizer::Adamw => {
            let mut fresh = moments.clone();
            fresh.step = 0;
            for m in &mut fresh.moments {
                m.data.fill(0.0);
            }
            policy.load_optimizer_state(&fresh)?;
            policy.optimizer_step(&setup.optim).map(|_| ())
        }
    }
}

fn host<T: Tensor>(x: &T) -> Result<Vec<f64>> {
    let mut h = vec![0.0; x.shape().numel()];
    x.download(&mut h)?;
    Ok(h)
}

//! Training a model made of dfdx's own `nn` modules with the WAPO objective.
//!
//! The model (an embedding of (prompt, position), a tanh MLP, an LM head) runs
//! its forward on dfdx's tape. The objective is evaluated on its logits by
//! `wapo-cpu` (`CpuTensor`, the fused logits kernel), which returns
//! ∂loss/∂z. dfdx then backpropagates the surrogate Σ z · stop_grad(∂loss/∂z),
//! whose gradient in every parameter θ is Σ (∂loss/∂z)(∂z/∂θ) = ∂loss/∂θ,
//! and an Adam step updates the model.
//!
//! The toy task: for each of a few prompts, emit the token `TARGET` at every
//! one of `T` positions; the reward of a completion is the share of its
//! tokens that are `TARGET`. `G` completions per prompt form a group.
//!
//! `cargo run -p wapo-cpu --example dfdx_native` prints the probability of
//! the target token as training goes; `tests/dfdx_native.rs` checks the
//! gradients against finite differences and that the reward rises.

use std::error::Error;

use dfdx::nn::builders::{Embedding, Linear, Tanh};
use dfdx::optim::{Adam, AdamConfig, Optimizer};
use dfdx::prelude::{
    BuildOnDevice, Const, Cpu, DeviceBuildExt, Gradients, Module, PutTape, ReshapeTo, SplitTape, SumTo, Tensor,
    TensorFromVec, Trace, ZeroGrads,
};
use dfdx::tensor_ops::Backward;
use wapo_core::Tensor as _;
use wapo_core::advantage::Groups;
use wapo_core::logits::{LogitsBatch, logits_objective};
use wapo_core::objective::{ObjectiveConfig, wapo};
use wapo_core::{Error as WapoError, Shape};
use wapo_cpu::CpuTensor;

/// Vocabulary size.
pub const V: usize = 8;
/// Prompts of the task.
pub const PROMPTS: usize = 4;
/// Completion length.
pub const T: usize = 4;
/// Completions per prompt (a group).
pub const G: usize = 8;
/// The token every position should emit.
pub const TARGET: usize = 3;
const C: usize = 16;
const H: usize = 32;

/// (prompt, position) → embedding → tanh MLP → logits over V.
pub type Arch = (Embedding<{ PROMPTS * T }, C>, Linear<C, H>, Tanh, Linear<H, V>);
pub type Policy = <Arch as BuildOnDevice<Cpu, f32>>::Built;

pub type Result<X> = std::result::Result<X, Box<dyn Error>>;

/// A batch of sampled completions: `prompts` (N), `tokens` (N·T),
/// `old_logprobs` (N·T) under the sampling policy, `rewards` (N).
#[derive(Clone, Debug)]
pub struct Rollout {
    pub prompts: Vec<usize>,
    pub tokens: Vec<usize>,
    pub old_logprobs: Vec<f64>,
    pub rewards: Vec<f64>,
}

impl Rollout {
    pub fn n(&self) -> usize {
        self.prompts.len()
    }
}

/// SplitMix64: a seeded stream, enough to sample a toy policy.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) as f64 / (u64::MAX as f64 + 1.0)
    }
}

pub fn new_policy(dev: &Cpu) -> Policy {
    dev.build_module::<Arch, f32>()
}

/// The model's input: one id per (sequence, position), `prompt · T + t`. (N·T)
pub fn inputs(dev: &Cpu, prompts: &[usize]) -> Result<Tensor<(usize,), usize, Cpu>> {
    let ids: Vec<usize> = prompts.iter().flat_map(|p| (0..T).map(move |t| p * T + t)).collect();
    let len = ids.len();
    Ok(dev.try_tensor_from_vec(ids, (len,))?)
}

/// Logits without a tape. (N·T·V), row-major.
pub fn logits(model: &Policy, dev: &Cpu, prompts: &[usize]) -> Result<Vec<f32>> {
    Ok(model.try_forward(inputs(dev, prompts)?)?.as_vec())
}

/// log softmax of one row at `y`, in f64.
fn log_prob(row: &[f32], y: usize) -> f64 {
    let m = row.iter().fold(f32::NEG_INFINITY, |a, b| a.max(*b)) as f64;
    let lse = m + row.iter().map(|z| (*z as f64 - m).exp()).sum::<f64>().ln();
    row[y] as f64 - lse
}

pub fn reward(completion: &[usize]) -> f64 {
    completion.iter().filter(|y| **y == TARGET).count() as f64 / completion.len() as f64
}

/// `G` completions of every prompt, sampled from the current policy.
pub fn sample(model: &Policy, dev: &Cpu, rng: &mut Rng) -> Result<Rollout> {
    let prompts: Vec<usize> = (0..PROMPTS).flat_map(|p| std::iter::repeat_n(p, G)).collect();
    let z = logits(model, dev, &prompts)?;
    let (mut tokens, mut old_logprobs) = (Vec::new(), Vec::new());
    for row in z.chunks(V) {
        let m = row.iter().fold(f32::NEG_INFINITY, |a, b| a.max(*b));
        let p: Vec<f64> = row.iter().map(|x| ((x - m) as f64).exp()).collect();
        let mut u = rng.uniform() * p.iter().sum::<f64>();
        let y = p.iter().position(|pv| {
            u -= pv;
            u < 0.0
        });
        let y = y.unwrap_or(V - 1);
        tokens.push(y);
        old_logprobs.push(log_prob(row, y));
    }
    let rewards = tokens.chunks(T).map(reward).collect();
    Ok(Rollout { prompts, tokens, old_logprobs, rewards })
}

/// The objective's configuration: WAPO with ε = 0.2 and L_max = T.
pub fn config() -> ObjectiveConfig {
    wapo::config(0.2, T)
}

/// The objective on (N·T, V) logits given as f32 values: loss and ∂loss/∂z.
pub fn objective(cfg: &ObjectiveConfig, dev: &Cpu, z: CpuTensor, r: &Rollout) -> Result<(f64, CpuTensor)> {
    let n = r.n();
    let up = |v: &[f64], s: Shape| CpuTensor::upload(dev, v, s);
    let group_ids: Vec<i64> = r.prompts.iter().map(|p| *p as i64).collect();
    let tokens: Vec<f64> = r.tokens.iter().map(|y| *y as f64).collect();
    let out = logits_objective(
        cfg,
        &LogitsBatch {
            groups: &Groups::from_ids(dev, &group_ids)?,
            rewards: &up(&r.rewards, Shape::d1(n))?,
            mask: &up(&vec![1.0; n * T], Shape::d2(n, T))?,
            logits: &z,
            tokens: &up(&tokens, Shape::d2(n, T))?,
            old_logprobs: &up(&r.old_logprobs, Shape::d2(n, T))?,
        },
    )?;
    let grad = out.grad_logits.ok_or(WapoError::Backend("the logits objective returned no ∂loss/∂z".into()))?;
    Ok((out.loss.item()?, grad))
}

/// One forward on the tape and one backward through dfdx: the loss and the
/// parameter gradients of `loss(model(prompts))`.
pub fn loss_and_grads(
    model: &Policy,
    dev: &Cpu,
    cfg: &ObjectiveConfig,
    r: &Rollout,
    grads: Gradients<f32, Cpu>,
) -> Result<(f64, Gradients<f32, Cpu>)> {
    let n = r.n();
    let z = model.try_forward(inputs(dev, &r.prompts)?.traced(grads))?; // (N·T, V) on the tape
    let (z, tape) = z.split_tape();
    let z3 = z.clone().try_reshape_like(&(n, T, Const::<V>))?; // (N, T, V)
    let (loss, dz) = objective(cfg, dev, CpuTensor::from_dfdx(&z3)?, r)?;
    let dz = dz.to_dfdx((n * T, Const::<V>))?; // stop_grad(∂loss/∂z)
    let surrogate = (z.put_tape(tape) * dz).try_sum::<(), _>()?;
    Ok((loss, surrogate.try_backward()?))
}

/// Sample, evaluate, backpropagate, step: returns the batch's mean reward.
pub fn train_step(
    model: &mut Policy,
    opt: &mut Adam<Policy, f32, Cpu>,
    dev: &Cpu,
    rng: &mut Rng,
    grads: &mut Option<Gradients<f32, Cpu>>,
) -> Result<f64> {
    let r = sample(model, dev, rng)?;
    let g = grads.take().unwrap_or_else(|| model.alloc_grads());
    let (_, mut g) = loss_and_grads(model, dev, &config(), &r, g)?;
    opt.update(model, &g).map_err(|e| format!("adam step: {e:?}"))?;
    model.zero_grads(&mut g);
    *grads = Some(g);
    Ok(r.rewards.iter().sum::<f64>() / r.n() as f64)
}

/// The policy's mean probability of `TARGET` over every prompt and position:
/// its expected reward.
pub fn target_probability(model: &Policy, dev: &Cpu) -> Result<f64> {
    let prompts: Vec<usize> = (0..PROMPTS).collect();
    let z = logits(model, dev, &prompts)?;
    let p: f64 = z.chunks(V).map(|row| log_prob(row, TARGET).exp()).sum();
    Ok(p / (PROMPTS * T) as f64)
}

pub fn new_optimizer(model: &Policy) -> Adam<Policy, f32, Cpu> {
    Adam::new(model, AdamConfig { lr: 3e-2, ..Default::default() })
}

// Unused where tests/dfdx_native.rs includes this file as a module.
#[allow(dead_code)]
fn main() -> Result<()> {
    let dev = Cpu::seed_from_u64(0);
    let mut model = new_policy(&dev);
    let mut opt = new_optimizer(&model);
    let mut rng = Rng::new(1);
    let mut grads = None;
    println!("step  0: p(target) {:.3}", target_probability(&model, &dev)?);
    for step in 1..=30 {
        let reward = train_step(&mut model, &mut opt, &dev, &mut rng, &mut grads)?;
        if step % 5 == 0 {
            println!("step {step:2}: batch reward {reward:.3}  p(target) {:.3}", target_probability(&model, &dev)?);
        }
    }
    Ok(())
}

//! The `Policy` trait: what a backend's language model provides to the
//! training loop (generation, training forward/backward, SFT, optimizer,
//! named parameters).

use alloc::string::String;
use alloc::vec::Vec;

use crate::error::{Error, Result};
use crate::tensor::Tensor;

use super::ModelConfig;

/// AdamW with global gradient-norm clipping.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OptimConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Decoupled weight decay, applied to matrices only (not to biases and
    /// LayerNorm gains).
    pub weight_decay: f64,
    /// Gradients are scaled by `min(1, grad_clip / ‖g‖)`; 0 disables clipping.
    pub grad_clip: f64,
}

impl Default for OptimConfig {
    fn default() -> Self {
        OptimConfig { lr: 1e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0, grad_clip: 1.0 }
    }
}

/// One named tensor in host memory (checkpoints, cross-backend tests).
#[derive(Clone, Debug, PartialEq)]
pub struct Named {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// The optimizer's state: its step count and moments (`m.<param>`, `v.<param>`).
#[derive(Clone, Debug, PartialEq)]
pub struct OptimState {
    pub step: u64,
    pub moments: Vec<Named>,
}

/// Sampled completions: `n = B·G` rows of `len` tokens, sample `j` of prompt
/// `b` in row `b·G + j`.
#[derive(Clone, Debug, PartialEq)]
pub struct Rollout {
    pub n: usize,
    pub len: usize,
    /// (N, T) sampled token ids.
    pub tokens: Vec<u32>,
    /// (N, T) log-probs of the sampled tokens at the sampling temperature
    /// (the behaviour policy's ℓ°).
    pub logprobs: Vec<f32>,
}

/// Prompts of one batch: `batch` rows of `len` tokens.
#[derive(Clone, Copy, Debug)]
pub struct Prompts<'a> {
    /// (B, P) token ids.
    pub tokens: &'a [u32],
    pub batch: usize,
    pub len: usize,
}

impl Prompts<'_> {
    pub fn check(&self, vocab: usize) -> Result<()> {
        if self.batch == 0 || self.len == 0 {
            return Err(Error::Empty { field: "prompts" });
        }
        if self.tokens.len() != self.batch * self.len {
            return Err(Error::Shape {
                field: "prompts",
                expected: crate::Shape::d2(self.batch, self.len),
                got: crate::Shape::d1(self.tokens.len()),
            });
        }
        check_tokens("prompts", self.tokens, vocab)
    }
}

/// Fails at the first token id ≥ `vocab`.
pub fn check_tokens(field: &'static str, tokens: &[u32], vocab: usize) -> Result<()> {
    match tokens.iter().position(|&t| t as usize >= vocab) {
        None => Ok(()),
        Some(i) => Err(Error::Invalid { field, pos: crate::error::Pos::at1(i), reason: "token id must be < vocab" }),
    }
}

/// A language-model policy on some backend.
///
/// Gradients accumulate across [`Policy::backward`] and [`Policy::sft`]
/// calls until [`Policy::zero_grad`]; [`Policy::optimizer_step`] clips and
/// applies them. Every method is deterministic in its inputs, so that a run
/// resumed from a checkpoint repeats an uninterrupted one bit for bit.
pub trait Policy {
    /// The backend tensor the logits come in.
    type T: Tensor;

    fn config(&self) -> &ModelConfig;
    fn device(&self) -> <Self::T as Tensor>::Device;

    /// Samples `group` completions of `steps` tokens for each prompt with a
    /// KV cache. Token `t` of row `n` is drawn by inverse CDF from
    /// softmax(z/τ) with `uniforms[n·steps + t]` ∈ [0, 1), so that two
    /// backends fed the same uniforms draw the same tokens. `temperature = 0`
    /// decodes greedily (`uniforms` may then be empty) and records ℓ at τ = 1.
    fn generate(
        &mut self,
        prompts: Prompts<'_>,
        group: usize,
        steps: usize,
        temperature: f64,
        uniforms: &[f32], // (N, steps)
    ) -> Result<Rollout>;

    /// Training forward over prompt + completion, the `group` completions of
    /// a prompt sharing its prompt positions. Returns the logits that score
    /// each completion token (the logits at positions P−1 .. P+T−2), ready
    /// for [`crate::logits::logits_objective`]; keeps what
    /// [`Policy::backward`] needs.
    fn forward(
        &mut self,
        prompts: Prompts<'_>,
        group: usize,
        completions: &[u32], // (N, T)
    ) -> Result<Self::T>; // (N, T, V)

    /// Accumulates parameter gradients from ∂loss/∂logits of the last
    /// [`Policy::forward`].
    fn backward(&mut self, grad_logits: &Self::T) -> Result<()>; // (N, T, V)

    /// Mean cross-entropy of the gold completions (one per prompt) and its
    /// gradient, accumulated.
    fn sft(&mut self, prompts: Prompts<'_>, gold: &[u32] /* (B, T) */) -> Result<f64>;

    fn zero_grad(&mut self);

    /// Clips the accumulated gradient to the global norm and takes one AdamW
    /// step; returns the norm before clipping.
    fn optimizer_step(&mut self, cfg: &OptimConfig) -> Result<f64>;

    /// Parameters under their checkpoint names (`wte`, `h.0.ln_1.weight`, ...).
    fn parameters(&self) -> Result<Vec<Named>>;
    /// Loads every parameter by name; shapes must match.
    fn load_parameters(&mut self, params: &[Named]) -> Result<()>;
    fn optimizer_state(&self) -> Result<OptimState>;
    fn load_optimizer_state(&mut self, state: &OptimState) -> Result<()>;

    /// Greedy decoding of `steps` tokens per prompt: (B, steps).
    fn greedy(&mut self, prompts: Prompts<'_>, steps: usize) -> Result<Vec<u32>> {
        Ok(self.generate(prompts, 1, steps, 0.0, &[])?.tokens)
    }
}

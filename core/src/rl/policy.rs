//! The `Policy` trait: what a backend's language model provides to the
//! training loop (generation, training forward/backward, SFT, optimizer,
//! named parameters), its inputs and outputs, and the defaults of its
//! methods ([`stats_via_logits`], [`backward_via_logits`],
//! [`sft_via_stats`]).

use alloc::string::String;
use alloc::vec::Vec;

use crate::error::{Error, Result};
use crate::tensor::Tensor;

use super::arch::ModelConfig;
use super::truncate::{Processing, Sampling, Truncated, truncated_stats};

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
    /// (N, T) log-probs of the sampled tokens under the distribution
    /// actually sampled (temperature, then top-k / top-p renormalized): the
    /// behaviour policy's ℓ°.
    pub logprobs: Vec<f32>,
    /// (N) tokens each row generated, its stop token included (`len` when
    /// it never stopped); positions from there on repeat the stop token
    /// with ℓ° = 0 and are masked out of the loss.
    pub lengths: Vec<usize>,
}

impl Rollout {
    /// (N, T) 1 where a row generated the token, 0 after it stopped.
    pub fn mask(&self) -> Vec<f64> {
        let mut m = alloc::vec![0.0; self.n * self.len];
        for (i, &l) in self.lengths.iter().enumerate() {
            m[i * self.len..i * self.len + l.min(self.len)].fill(1.0);
        }
        m
    }
}

/// Prompts of one batch: `batch` rows of `len` tokens, prompts of different
/// lengths left-padded to the longest.
#[derive(Clone, Copy, Debug)]
pub struct Prompts<'a> {
    /// (B, P) token ids.
    pub tokens: &'a [u32],
    pub batch: usize,
    pub len: usize,
    /// (B) the first `pad[b]` tokens of prompt b are padding: no query
    /// attends to them and positions count from the first real token, so a
    /// padded prompt computes what it would alone. Empty: no padding.
    pub pad: &'a [usize],
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
        if !self.pad.is_empty() && self.pad.len() != self.batch {
            return Err(Error::Shape {
                field: "prompts.pad",
                expected: crate::Shape::d1(self.batch),
                got: crate::Shape::d1(self.pad.len()),
            });
        }
        if let Some(b) = self.pad.iter().position(|&q| q >= self.len) {
            return Err(Error::Invalid {
                field: "prompts.pad",
                pos: crate::error::Pos::at1(b),
                reason: "a prompt needs at least one real token",
            });
        }
        check_tokens("prompts", self.tokens, vocab)
    }

    /// Padding of prompt `b` (0 without padding).
    pub fn pad_of(&self, b: usize) -> usize {
        self.pad.get(b).copied().unwrap_or(0)
    }

    /// Whether any prompt is padded.
    pub fn padded(&self) -> bool {
        self.pad.iter().any(|&q| q > 0)
    }
}

/// Prompts of different lengths left-padded with `fill` to the longest:
/// the (B, P) tokens and the (B) pads of [`Prompts::pad`].
pub fn left_pad(prompts: &[&[u32]], fill: u32) -> (Vec<u32>, Vec<usize>) {
    let p = prompts.iter().map(|x| x.len()).max().unwrap_or(0);
    let mut tokens = Vec::with_capacity(prompts.len() * p);
    let mut pads = Vec::with_capacity(prompts.len());
    for x in prompts {
        pads.push(p - x.len());
        tokens.extend(core::iter::repeat_n(fill, p - x.len()));
        tokens.extend_from_slice(x);
    }
    (tokens, pads)
}

/// Fails at the first token id ≥ `vocab`.
pub fn check_tokens(field: &'static str, tokens: &[u32], vocab: usize) -> Result<()> {
    match tokens.iter().position(|&t| t as usize >= vocab) {
        None => Ok(()),
        Some(i) => Err(Error::Invalid { field, pos: crate::error::Pos::at1(i), reason: "token id must be < vocab" }),
    }
}

/// Per-token statistics of scored completion tokens under the
/// [`Processing`] of the logits (softmax(z/τ), renormalized over the kept
/// set when it truncates), each (N, T) row-major: what the objective and
/// the taxonomy need of the logits, without the logits.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TokenStats {
    /// ℓ = log p(y); [`super::truncate::OUTSIDE_LOGP`] for a token outside
    /// the kept set of a truncating processing.
    pub logprobs: Vec<f32>,
    /// H = −Σ p log p.
    pub entropy: Vec<f32>,
    /// Σ p².
    pub sum_p_sq: Vec<f32>,
    /// Σ p² log p (the taxonomy's ΔH prediction).
    pub sum_p_sq_logp: Vec<f32>,
}

impl TokenStats {
    /// The statistics of (N·T, V) logits rows `z` for tokens `y`, in f64.
    pub fn of_logits(z: &[f64], tokens: &[u32], processing: Processing) -> Self {
        let v = z.len() / tokens.len().max(1);
        let truncates = processing.truncates(v);
        let mut s = TokenStats::default();
        for (i, &y) in tokens.iter().enumerate() {
            let row = &z[i * v..(i + 1) * v];
            let r = if truncates {
                truncated_stats(row, y as usize, processing)
            } else {
                crate::logits::row_stats(row, y as usize, processing.temperature)
            };
            s.logprobs.push(r.logp as f32);
            s.entropy.push(r.entropy as f32);
            s.sum_p_sq.push(r.sum_p_sq as f32);
            s.sum_p_sq_logp.push(r.sum_p_sq_logp as f32);
        }
        s
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
    /// softmax(z/τ), truncated to `sampling`'s top-k / top-p and
    /// renormalized, with `uniforms[n·steps + t]` ∈ [0, 1), so that two
    /// backends fed the same uniforms draw the same tokens. `temperature = 0`
    /// decodes greedily (`uniforms` may then be empty) and records ℓ at τ = 1.
    /// A row stops at its first token in `sampling.stop`, and generation
    /// ends once every row has; `Sampling::default()` draws from the whole
    /// softmax and never stops early.
    fn generate(
        &mut self,
        prompts: Prompts<'_>,
        group: usize,
        steps: usize,
        temperature: f64,
        uniforms: &[f32], // (N, steps)
        sampling: &Sampling,
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

    /// [`Policy::forward`] reduced to the statistics of the scored tokens
    /// under `processing` (the sampler's temperature and truncation, so that
    /// ℓ is the behaviour policy's ℓ° before any update), keeping what
    /// [`Policy::backward_logprobs`] needs. The kept set of a truncating
    /// processing is recomputed from the current logits. A backend with a
    /// large vocabulary overrides the pair to compute the LM head in row
    /// chunks, so that the (N, T, V) logits never exist at once.
    fn forward_stats(
        &mut self,
        prompts: Prompts<'_>,
        group: usize,
        completions: &[u32], // (N, T)
        processing: Processing,
    ) -> Result<TokenStats> {
        stats_via_logits(self, prompts, group, completions, processing)
    }

    /// Accumulates parameter gradients from ∂loss/∂ℓ (N, T) of the batch of
    /// the last [`Policy::forward_stats`] (passed again with its
    /// processing: the default runs the forward once more and goes through
    /// the logits). Under truncation ∂ℓ_y/∂z_v = (1[v = y] − p̃_v)/τ for kept
    /// v and 0 elsewhere, and 0 throughout for a token outside the kept set.
    fn backward_logprobs(
        &mut self,
        prompts: Prompts<'_>,
        group: usize,
        completions: &[u32],   // (N, T)
        grad_logprobs: &[f32], // (N, T)
        processing: Processing,
    ) -> Result<()> {
        backward_via_logits(self, prompts, group, completions, grad_logprobs, processing)
    }

    /// Mean cross-entropy of the gold completions (one per prompt) over
    /// their counted positions, and its gradient, accumulated: the first
    /// `lengths[b]` tokens of gold row b count ([`super::sft::counted_len`]:
    /// up to and including its first stop token; T for every position), and
    /// the loss is Σ_counted −log p(gold) / Σ_b lengths[b]. The default
    /// ([`sft_via_stats`]) goes through
    /// [`Policy::forward_stats`] and [`Policy::backward_logprobs`], so a
    /// backend with a chunked LM head never holds the (B·T, V) logits.
    fn sft(
        &mut self,
        prompts: Prompts<'_>,
        gold: &[u32],      // (B, T)
        lengths: &[usize], // (B)
    ) -> Result<f64> {
        sft_via_stats(self, prompts, gold, lengths)
    }

    fn zero_grad(&mut self);

    /// Clips the accumulated gradient to the global norm and takes one AdamW
    /// step; returns the norm before clipping.
    fn optimizer_step(&mut self, cfg: &OptimConfig) -> Result<f64>;

    /// Parameters under their checkpoint names (`wte`, `h.0.ln_1.weight`, ...).
    fn parameters(&self) -> Result<Vec<Named>>;
    /// Loads every parameter by name; shapes must match.
    fn load_parameters(&mut self, params: &[Named]) -> Result<()>;
    /// The gradient accumulated since the last [`Policy::zero_grad`], under
    /// the parameters' names and shapes, unclipped: what a plain SGD step
    /// θ − lr·g (the first-order setting of `OBJECTIVE.md` §7) needs. The
    /// default has none.
    fn gradients(&self) -> Result<Vec<Named>> {
        Err(Error::Backend("this backend does not expose its gradients".into()))
    }
    fn optimizer_state(&self) -> Result<OptimState>;
    fn load_optimizer_state(&mut self, state: &OptimState) -> Result<()>;

    /// Greedy decoding of `steps` tokens per prompt: (B, steps).
    fn greedy(&mut self, prompts: Prompts<'_>, steps: usize) -> Result<Vec<u32>> {
        Ok(self.generate(prompts, 1, steps, 0.0, &[], &Sampling::default())?.tokens)
    }
}

/// [`Policy::forward_stats`] through the (N, T, V) logits on the host: the
/// trait's default, and the fallback of a backend's own version for what it
/// does not compute itself.
pub fn stats_via_logits<P: Policy + ?Sized>(
    policy: &mut P,
    prompts: Prompts<'_>,
    group: usize,
    completions: &[u32],
    processing: Processing,
) -> Result<TokenStats> {
    processing.validate()?;
    let z = policy.forward(prompts, group, completions)?;
    let mut host = alloc::vec![0.0; z.shape().numel()];
    z.download(&mut host)?;
    Ok(TokenStats::of_logits(&host, completions, processing))
}

/// [`Policy::backward_logprobs`] through the logits (the forward once more):
/// the trait's default and a backend's fallback.
pub fn backward_via_logits<P: Policy + ?Sized>(
    policy: &mut P,
    prompts: Prompts<'_>,
    group: usize,
    completions: &[u32],
    grad_logprobs: &[f32],
    processing: Processing,
) -> Result<()> {
    processing.validate()?;
    let temperature = processing.temperature;
    let z = policy.forward(prompts, group, completions)?;
    let shape = z.shape();
    let v = shape.last();
    let truncates = processing.truncates(v);
    let mut host = alloc::vec![0.0; shape.numel()];
    z.download(&mut host)?;
    for (i, &y) in completions.iter().enumerate() {
        let row = &mut host[i * v..(i + 1) * v];
        let c = grad_logprobs.get(i).copied().unwrap_or(0.0) as f64 / temperature;
        if truncates {
            let t = Truncated::new(row, processing);
            row.fill(0.0);
            for (k, d) in t.iter().flat_map(|t| t.grad(y as usize, c)) {
                row[k] = d;
            }
            continue;
        }
        let s = crate::logits::row_stats(row, y as usize, temperature);
        // ∂ℓ/∂z_v = (1[v = y] − p_v)/τ.
        for (k, x) in row.iter_mut().enumerate() {
            let p = libm::exp(*x / temperature - s.lse);
            *x = c * (f64::from(u8::from(k == y as usize)) - p);
        }
    }
    policy.backward(&P::T::upload(&policy.device(), &host, shape)?)
}

/// [`Policy::sft`] through the token statistics, the trait's default:
/// with processing none (τ = 1, no truncation) ∂(−ℓ_t)/∂z = p − onehot(y_t),
/// the cross-entropy's gradient, so the loss Σ_counted −ℓ_t / count is
/// [`Policy::forward_stats`] of the gold and its gradient
/// [`Policy::backward_logprobs`] with ∂loss/∂ℓ_t = −1/count at the counted
/// positions and 0 elsewhere. A backend whose pair runs the LM head in row
/// chunks never holds the (B·T, V) logits in SFT either.
pub fn sft_via_stats<P: Policy + ?Sized>(
    policy: &mut P,
    prompts: Prompts<'_>,
    gold: &[u32],
    lengths: &[usize],
) -> Result<f64> {
    let grad = sft_weights(prompts.batch, gold.len(), lengths)?;
    let none = Processing::temperature(1.0);
    let stats = policy.forward_stats(prompts, 1, gold, none)?;
    if stats.logprobs.len() != gold.len() {
        return Err(Error::Shape {
            field: "forward_stats logprobs",
            expected: crate::Shape::d1(gold.len()),
            got: crate::Shape::d1(stats.logprobs.len()),
        });
    }
    let count: usize = lengths.iter().sum();
    let t = gold.len() / prompts.batch;
    let mut sum = 0.0f64;
    for (b, &l) in lengths.iter().enumerate() {
        sum += stats.logprobs[b * t..b * t + l].iter().map(|&x| f64::from(x)).sum::<f64>();
    }
    policy.backward_logprobs(prompts, 1, gold, &grad, none)?;
    Ok(-sum / count as f64)
}

/// ∂loss/∂ℓ (B, T) of the SFT loss: −1/count where a position counts, 0
/// elsewhere; checks `lengths` against the batch.
fn sft_weights(batch: usize, gold: usize, lengths: &[usize]) -> Result<Vec<f32>> {
    if batch == 0 || gold == 0 {
        return Err(Error::Empty { field: "sft.gold" });
    }
    if lengths.len() != batch || !gold.is_multiple_of(batch) {
        return Err(Error::Shape {
            field: "sft.lengths",
            expected: crate::Shape::d1(batch),
            got: crate::Shape::d1(lengths.len()),
        });
    }
    let t = gold / batch;
    if let Some(b) = lengths.iter().position(|&l| l > t) {
        return Err(Error::Invalid {
            field: "sft.lengths",
            pos: crate::error::Pos::at1(b),
            reason: "a counted length exceeds the completion length",
        });
    }
    let count: usize = lengths.iter().sum();
    if count == 0 {
        return Err(Error::Invalid {
            field: "sft.lengths",
            pos: crate::error::Pos::NONE,
            reason: "no gold position counts (every length is 0)",
        });
    }
    let w = -(1.0 / count as f64) as f32;
    let mut grad = alloc::vec![0.0f32; gold];
    for (b, &l) in lengths.iter().enumerate() {
        grad[b * t..b * t + l].fill(w);
    }
    Ok(grad)
}

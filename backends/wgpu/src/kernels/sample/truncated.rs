//! Sampling from the top-k / top-p truncation of softmax(z/τ) on the
//! device (truncated.wgsl), with ℓ of the distribution actually sampled.

use wapo_core::{Error, Result};

use super::super::View;
use super::StepParams;
use crate::launch::{Kernel, idx32, kernel_params};

const SOURCE: &str = concat!(
    include_str!("../common.wgsl"),
    include_str!("math.wgsl"),
    include_str!("step.wgsl"),
    include_str!("truncated.wgsl")
);

kernel_params! {
    /// P of truncated.wgsl.
    struct TruncParams {
        step: StepParams,
        top_k: u32,
        top_p: f32,
    }
}

/// How a row's distribution is truncated before the draw.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Truncation {
    /// Keep the k most likely tokens (0: all).
    pub top_k: usize,
    /// Keep the shortest most-likely-first prefix whose mass reaches p of
    /// the kept mass (0 or ≥ 1: all).
    pub top_p: f32,
}

/// [`super::sample`] (rows, layout, views and uniforms the same; τ > 0) from
/// the truncation of softmax(z/τ), renormalized, by the CPU's rule: tokens
/// with mass sorted most likely first, ties by id; the first k kept, then
/// the shortest prefix whose mass reaches p·(kept mass); the token drawn
/// by inverse CDF over the kept tokens in id order, ℓ = log of its
/// renormalized probability. A token differs from the f64 reference only
/// when a cut's mass or u·Σ lies within a few ulp of a boundary.
#[allow(clippy::too_many_arguments)]
pub fn sample_truncated(
    tokens: View<'_>,
    logprobs: View<'_>,
    logits: View<'_>,
    uniforms: View<'_>,
    n: usize,
    v: usize,
    div: usize,
    steps: usize,
    s: usize,
    temperature: f32,
    cut: Truncation,
) -> Result<()> {
    let (n, v, div, steps, s) = (n as u64, v as u64, div as u64, steps as u64, s as u64);
    if n == 0 {
        return Ok(());
    }
    if v == 0 || div == 0 || s >= steps || !(temperature.is_finite() && temperature > 0.0) {
        return Err(Error::Backend(format!(
            "sample_truncated: v {v}, div {div}, step {s} of {steps}, τ {temperature}: need v, div ≥ 1, s < steps, τ > 0"
        )));
    }
    if !(cut.top_p.is_finite() && cut.top_p >= 0.0) {
        return Err(Error::Backend(format!("sample_truncated: top_p {} must be ≥ 0", cut.top_p)));
    }
    let step = super::Step { tokens, logprobs, logits, uniforms, n, v, div, steps, s };
    let k = Kernel { name: "gpt_sample_truncated", source: SOURCE, entry: "sample_truncated", constants: vec![] };
    let top_k = idx32((cut.top_k as u64).min(v))?;
    step.dispatch(&k, true, temperature, |step| TruncParams { step, top_k, top_p: cut.top_p })
}

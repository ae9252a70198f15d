//! [`Policy::forward_stats`](wapo_core::rl::Policy::forward_stats) on the
//! device: the fused objective's row-statistics kernel reads the logits
//! where the forward left them, and only the (N, T) statistics come back
//! (the trait's default would download all (N, T, V) logits, at V = 49,152
//! the largest transfer of an RL step). What the kernel saves per row (the
//! max and log-sum) stays on the device for the gradient kernel of
//! [`HeadStats::grad_logits`].

use wapo_core::rl::TokenStats;
use wapo_core::{Error, Result, Shape, Tensor};

use crate::fused::{grad, stats};
use crate::tensor::WgpuTensor;

/// What the backward of one [`token_stats`] needs: its temperature and
/// tokens, and the per-row shift of the stats kernel.
pub(crate) struct HeadStats {
    pub temperature: f64,
    pub completions: Vec<u32>,
    tokens: WgpuTensor,
    st: stats::Stats,
}

pub(crate) fn check_temperature(t: f64) -> Result<()> {
    if t.is_finite() && t > 0.0 {
        Ok(())
    } else {
        Err(Error::Config { field: "temperature", reason: "must be a finite number > 0" })
    }
}

/// The statistics under softmax(z/τ) of (N, T, V) `logits` at the
/// completion tokens (N·T ids, already checked to be < V).
pub(crate) fn token_stats(logits: &WgpuTensor, completions: &[u32], tau: f64) -> Result<(TokenStats, HeadStats)> {
    check_temperature(tau)?;
    let rows = logits.shape().without_last();
    if rows.numel() != completions.len() {
        return Err(Error::Shape { field: "completions", expected: rows, got: Shape::d1(completions.len()) });
    }
    let ids: Vec<f64> = completions.iter().map(|&y| f64::from(y)).collect();
    let tokens = WgpuTensor::upload(&logits.store.dev, &ids, rows)?;
    let st = stats::row_stats(logits, &tokens, (1.0 / tau) as f32)?;
    let out = TokenStats {
        logprobs: st.logp.to_vec()?,
        entropy: st.entropy.to_vec()?,
        sum_p_sq: st.sum_p_sq.to_vec()?,
        sum_p_sq_logp: st.sum_p_sq_logp.to_vec()?,
    };
    Ok((out, HeadStats { temperature: tau, completions: completions.to_vec(), tokens, st }))
}

impl HeadStats {
    /// ∂loss/∂z (N, T, V) = g/τ·(1[v = y] − p) from ∂loss/∂ℓ `g` (N·T) and
    /// the same `logits` the statistics were taken of.
    pub(crate) fn grad_logits(&self, logits: &WgpuTensor, grad_logprobs: &[f32]) -> Result<WgpuTensor> {
        let rows = logits.shape().without_last();
        if grad_logprobs.len() != rows.numel() {
            return Err(Error::Shape { field: "grad_logprobs", expected: rows, got: Shape::d1(grad_logprobs.len()) });
        }
        let inv_t = 1.0 / self.temperature;
        let g: Vec<f64> = grad_logprobs.iter().map(|&x| f64::from(x) * inv_t).collect();
        let g = WgpuTensor::upload(&logits.store.dev, &g, rows)?;
        grad::grad_logits(logits, &self.tokens, &self.st, &g, inv_t as f32)
    }
}

#[cfg(test)]
mod tests;

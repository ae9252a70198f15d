//! The logits-level objective with one streaming pass per row on the host
//! ([`row_stats`]), then the token-level engine, then ∂loss/∂z written once.
//! It is the reference backend's path and the model the fused GPU and CPU
//! kernels follow; an equivalence test pins it to [`super::composed`].

use alloc::vec;
use alloc::vec::Vec;

use super::{LogitsBatch, check_logits_batch, row_stats, sampled_logit_error};
use crate::error::Result;
use crate::objective::{ObjectiveConfig, Output, TokenBatch, token_objective};
use crate::tensor::Tensor;

fn host<T: Tensor>(x: &T) -> Result<Vec<f64>> {
    let mut h = vec![0.0; x.shape().numel()];
    x.download(&mut h)?;
    Ok(h)
}

pub fn streamed<T: Tensor>(cfg: &ObjectiveConfig, b: &LogitsBatch<'_, T>) -> Result<Output<T>> {
    cfg.validate()?;
    let v = check_logits_batch(b)?;
    let dev = b.logits.device();
    let rows_shape = b.tokens.shape(); // (N, T)
    let (z, y) = (host(b.logits)?, host(b.tokens)?); // (N·T·V), (N·T)
    let rows = y.len();
    let (mut logp, mut entropy, mut sum_p_sq, mut sum_p_sq_logp, mut lse) =
        (vec![0.0; rows], vec![0.0; rows], vec![0.0; rows], vec![0.0; rows], vec![0.0; rows]);
    for r in 0..rows {
        let s = row_stats(&z[r * v..(r + 1) * v], y[r] as usize, cfg.temperature);
        (logp[r], entropy[r], sum_p_sq[r], sum_p_sq_logp[r], lse[r]) =
            (s.logp, s.entropy, s.sum_p_sq, s.sum_p_sq_logp, s.lse);
    }
    let logprobs = T::upload(&dev, &logp, rows_shape)?;
    let sq = T::upload(&dev, &sum_p_sq, rows_shape)?;
    let tok = TokenBatch {
        groups: b.groups,
        rewards: b.rewards,
        mask: b.mask,
        logprobs: &logprobs,
        old_logprobs: b.old_logprobs,
        sum_p_sq: Some(&sq),
    };
    let mut out = token_objective(cfg, &tok).map_err(|e| sampled_logit_error(e, b.tokens))?;
    // ∂loss/∂z = g · (onehot(y) − p) / τ; rows without gradient stay zero,
    // whatever their logits hold.
    let g = host(&out.grad_logprobs)?;
    let inv_t = 1.0 / cfg.temperature;
    let mut grad = vec![0.0; z.len()];
    for r in (0..rows).filter(|&r| g[r] != 0.0) {
        let gr = g[r] * inv_t;
        for k in 0..v {
            let p = libm::exp(z[r * v + k] * inv_t - lse[r]);
            let onehot = if k == y[r] as usize { 1.0 } else { 0.0 };
            grad[r * v + k] = gr * (onehot - p);
        }
    }
    out.grad_logits = Some(T::upload(&dev, &grad, b.logits.shape())?);
    out.entropy = Some(T::upload(&dev, &entropy, rows_shape)?);
    out.sum_p_sq_logp = Some(T::upload(&dev, &sum_p_sq_logp, rows_shape)?);
    Ok(out)
}

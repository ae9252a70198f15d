//! The fused logits-level objective of the CPU backend: the same numbers as
//! [`wapo_core::logits::composed`] with one read of the logits for the row
//! statistics and one read plus one write for ∂loss/∂logits, and no other
//! (N, T, V) buffer.
//!
//! 1. per row, in parallel: max, log Σe, ℓ, H, Σp², Σp²·log p ([`row::stats`]);
//! 2. the per-sequence objective from the core on the (N, T) results
//!    ([`wapo_core::objective::token_objective`], the code every backend runs);
//! 3. per row, in parallel: ∂loss/∂z = (g/τ)·(onehot(y) − p) ([`row::grad`]).

mod exp;
mod row;
pub(crate) use row::{Stats as RowStats, grad as grad_row, stats as row_stats};

use rayon::prelude::*;
use wapo_core::logits::{LogitsBatch, check_logits_batch, sampled_logit_error};
use wapo_core::objective::{ObjectiveConfig, Output, TokenBatch, token_objective};
use wapo_core::{Result, Tensor};

use crate::tensor::CpuTensor;
use row::Stats;

/// Logits values per rayon task (rows are never split).
const PAR_GRAIN: usize = 1 << 16;

/// Evaluates the objective from logits (N, T, V) in f32; see the module docs.
pub fn logits_objective(cfg: &ObjectiveConfig, b: &LogitsBatch<'_, CpuTensor>) -> Result<Output<CpuTensor>> {
    cfg.validate()?;
    let v = check_logits_batch(b)?;
    let shape = b.logits.shape(); // (N, T, V)
    let rows_shape = shape.without_last(); // (N, T)
    let logits = b.logits.data();
    let tokens = b.tokens.data();
    let inv_t = (1.0 / cfg.temperature) as f32;
    let min_rows = PAR_GRAIN.div_ceil(v);

    let stats: Vec<Stats> = logits
        .par_chunks(v)
        .zip(tokens.par_iter())
        .with_min_len(min_rows)
        .map(|(row, y)| row::stats(row, *y as usize, inv_t))
        .collect();

    let dev = b.logits.device();
    let column = |f: fn(&Stats) -> f32| CpuTensor::from_vec(&dev, stats.iter().map(f).collect(), rows_shape);
    let logprobs = column(|s| s.logp)?;
    let entropy = column(|s| s.entropy)?;
    let sum_p_sq = column(|s| s.sum_p_sq)?;
    let sum_p_sq_logp = column(|s| s.sum_p_sq_logp)?;
    let tok = TokenBatch {
        groups: b.groups,
        rewards: b.rewards,
        mask: b.mask,
        logprobs: &logprobs,
        old_logprobs: b.old_logprobs,
        sum_p_sq: Some(&sum_p_sq),
    };
    // A non-finite ℓ at a real token fails the engine's validation; it is
    // reported at its cause, `logits[i][t][y]`.
    let mut out = token_objective(cfg, &tok).map_err(|e| sampled_logit_error(e, b.tokens))?;

    let g = out.grad_logprobs.data(); // (N, T)
    let mut grad = wapo_core::host::take_buffer(shape.numel());
    grad.par_chunks_mut(v)
        .zip(logits.par_chunks(v))
        .enumerate()
        .with_min_len(min_rows)
        .for_each(|(r, (o, z))| row::grad(z, o, tokens[r] as usize, inv_t, stats[r], g[r] * inv_t));
    out.grad_logits = Some(CpuTensor::from_vec(&dev, grad, shape)?);
    out.entropy = Some(entropy);
    out.sum_p_sq_logp = Some(sum_p_sq_logp);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::row;

    /// Row statistics against core's f64 `row_stats`, on rows that need the
    /// online rescale (the max in a late block), −inf entries and τ ≠ 1.
    #[test]
    fn row_stats_match_core() {
        let v = 5000;
        let row: Vec<f32> = (0..v)
            .map(|i| match i % 7 {
                0 => f32::NEG_INFINITY,
                _ => ((i * 37 % 101) as f32 - 50.0) * 0.1 + (i / 1000) as f32,
            })
            .collect();
        let row64: Vec<f64> = row.iter().map(|z| *z as f64).collect();
        for (y, tau) in [(1, 1.0f64), (4999, 0.7), (2346, 1.3)] {
            let want = wapo_core::logits::row_stats(&row64, y, tau);
            let got = row::stats(&row, y, (1.0 / tau) as f32);
            let close = |a: f32, b: f64| (a as f64 - b).abs() <= 1e-5 * (1.0 + b.abs());
            assert!(close(got.logp, want.logp), "{got:?} {want:?}");
            assert!(close(got.entropy, want.entropy), "{got:?} {want:?}");
            assert!(close(got.sum_p_sq, want.sum_p_sq), "{got:?} {want:?}");
            assert!(close(got.sum_p_sq_logp, want.sum_p_sq_logp), "{got:?} {want:?}");
            assert!(close(got.max * (1.0 / tau) as f32 + got.log_sum, want.lse), "{got:?} {want:?}");
        }
    }

    /// Non-finite rows: +inf wins over NaN, NaN poisons, all −inf is empty.
    #[test]
    fn non_finite_rows() {
        let s = row::stats(&[1.0, f32::NAN, f32::INFINITY], 0, 1.0);
        assert_eq!((s.logp, s.entropy, s.sum_p_sq), (f32::NEG_INFINITY, 0.0, 0.0));
        let s = row::stats(&[1.0, f32::NAN, 2.0], 0, 1.0);
        assert!(s.logp.is_nan() && s.entropy.is_nan() && s.sum_p_sq.is_nan());
        let s = row::stats(&[f32::NEG_INFINITY; 3], 1, 1.0);
        assert_eq!((s.logp, s.entropy, s.sum_p_sq), (f32::NEG_INFINITY, 0.0, 0.0));
        let s = row::stats(&[3.0], 0, 0.5);
        assert_eq!((s.logp, s.entropy, s.sum_p_sq), (0.0, 0.0, 1.0));
    }
}

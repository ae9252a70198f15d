//! The logits level (`OBJECTIVE.md` §6): from logits z (N, T, V), sampled
//! tokens y and temperature τ to ℓ = z_y/τ − logsumexp(z/τ), the entropy H,
//! Σp², and ∂loss/∂z = g · (onehot(y) − p) / τ with g = ∂loss/∂ℓ.
//!
//! [`row_stats`] is the one-pass streaming form (max, Σe, Σe·(z−m), Σe²,
//! Σe²·(z−m) with rescaling), stable for ±1e4 and −inf entries; fused
//! backends implement exactly it. [`composed`] builds the same numbers from
//! the [`Tensor`] primitives and is the default of [`Tensor::logits_objective`];
//! [`streamed`] runs `row_stats` row by row on the host and is the reference
//! backend's path.

#[cfg(feature = "alloc")]
mod streamed;
#[cfg(feature = "alloc")]
pub use streamed::streamed;

use crate::advantage::Groups;
use crate::error::{Error, Pos, Result};
use crate::objective::{ObjectiveConfig, Output, TokenBatch, expect_shape, token_objective};
use crate::shape::Shape;
use crate::tensor::{Binary, Reduce, Tensor, Unary};

/// A batch at logits level.
pub struct LogitsBatch<'a, T> {
    pub groups: &'a Groups<T>,
    /// (N) rewards.
    pub rewards: &'a T,
    /// (N, T) completion mask.
    pub mask: &'a T,
    /// (N, T, V) logits; −inf marks a masked vocabulary entry.
    pub logits: &'a T,
    /// (N, T) sampled token ids.
    pub tokens: &'a T,
    /// (N, T) behaviour-policy log-probs.
    pub old_logprobs: &'a T,
}

/// Evaluates the objective from logits, through the backend's override of
/// [`Tensor::logits_objective`] when it has one.
pub fn logits_objective<T: Tensor>(cfg: &ObjectiveConfig, batch: &LogitsBatch<'_, T>) -> Result<Output<T>> {
    T::logits_objective(cfg, batch)
}

/// Per-position statistics of one logits row at temperature τ.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RowStats {
    /// logsumexp(z/τ).
    pub lse: f64,
    /// ℓ = z_y/τ − lse.
    pub logp: f64,
    /// H = −Σ p log p.
    pub entropy: f64,
    /// Σ p².
    pub sum_p_sq: f64,
    /// Σ p² log p (for the ΔH prediction of the taxonomy).
    pub sum_p_sq_logp: f64,
}

/// One online pass over a row of logits (f64). −inf entries contribute
/// nothing; a row of only −inf gives lse = −inf and H = Σp² = 0.
pub fn row_stats(row: &[f64], token: usize, temperature: f64) -> RowStats {
    let inv_t = 1.0 / temperature;
    let (mut m, mut s0, mut s1, mut s2, mut s3) = (f64::NEG_INFINITY, 0.0, 0.0, 0.0, 0.0);
    for &z in row {
        let x = z * inv_t;
        if x == f64::NEG_INFINITY {
            continue;
        }
        if x > m {
            // Rescale the sums to the new max; shift the (z − m) moments.
            let f = if m == f64::NEG_INFINITY { 0.0 } else { libm::exp(m - x) };
            let dm = if m == f64::NEG_INFINITY { 0.0 } else { m - x };
            s1 = f * (s1 + dm * s0);
            s3 = f * f * (s3 + dm * s2);
            s0 *= f;
            s2 *= f * f;
            m = x;
        }
        let d = x - m;
        let e = libm::exp(d);
        s0 += e;
        s1 += e * d;
        s2 += e * e;
        s3 += e * e * d;
    }
    if m == f64::NEG_INFINITY {
        let logp = f64::NEG_INFINITY;
        return RowStats { lse: m, logp, entropy: 0.0, sum_p_sq: 0.0, sum_p_sq_logp: 0.0 };
    }
    let log_s0 = libm::log(s0);
    let lse = m + log_s0;
    let zy = row.get(token).map_or(f64::NAN, |z| z * inv_t);
    let s0sq = s0 * s0;
    RowStats {
        lse,
        logp: zy - lse,
        entropy: log_s0 - s1 / s0,
        sum_p_sq: s2 / s0sq,
        sum_p_sq_logp: (s3 - log_s0 * s2) / s0sq,
    }
}

/// The logits-level objective built from primitives.
pub fn composed<T: Tensor>(cfg: &ObjectiveConfig, b: &LogitsBatch<'_, T>) -> Result<Output<T>> {
    cfg.validate()?;
    check_logits_batch(b)?;
    let zt = b.logits.mul_scalar(1.0 / cfg.temperature)?; // (N, T, V)
    // Shift by the row max first: in f32, logsumexp of logits near 1e4 is
    // itself rounded to 1e-3, which would move every ℓ by as much.
    let m = zt.reduce_last(Reduce::Max)?; // (N, T)
    let m = T::select(&m.unary(Unary::IsFinite)?, &m, &m.scalar(0.0)?)?; // all −inf rows: 0
    let zt = zt.sub(&m)?;
    let lse = zt.reduce_last(Reduce::LogSumExp)?; // (N, T)
    let logp_all = zt.sub(&lse)?;
    let finite = zt.unary(Unary::IsFinite)?;
    let zero = zt.scalar(0.0)?;
    let p = T::select(&finite, &logp_all.exp()?, &zero)?; // (N, T, V)
    let entropy = logp_all.binary(&p, Binary::MaskMul)?.sum_last()?.mul_scalar(-1.0)?;
    let p_sq = p.unary(Unary::Sqr)?;
    let sum_p_sq = p_sq.sum_last()?;
    let sum_p_sq_logp = logp_all.binary(&p_sq, Binary::MaskMul)?.sum_last()?;
    let logprobs = logp_all.gather_last(b.tokens)?; // (N, T)

    let tok = TokenBatch {
        groups: b.groups,
        rewards: b.rewards,
        mask: b.mask,
        logprobs: &logprobs,
        old_logprobs: b.old_logprobs,
        sum_p_sq: Some(&sum_p_sq),
    };
    let mut out = token_objective(cfg, &tok).map_err(|e| sampled_logit_error(e, b.tokens))?;
    let onehot = T::iota_last(&b.logits.device(), b.logits.shape())?.binary(b.tokens, Binary::Eq)?;
    let g = out.grad_logprobs.mul_scalar(1.0 / cfg.temperature)?; // (N, T)
    out.grad_logits = Some(onehot.sub(&p)?.binary(&g, Binary::MaskMul)?);
    out.entropy = Some(entropy);
    out.sum_p_sq_logp = Some(sum_p_sq_logp);
    Ok(out)
}

/// Maps the token-level engine's error for a non-finite ℓ at a real token to
/// the logits-level cause: that token's logit is −inf (or its row holds NaN
/// or +inf), reported at `logits[i][t][y]`. Other errors pass through.
pub fn sampled_logit_error<T: Tensor>(e: Error, tokens: &T) -> Error {
    if let Error::NonFinite { field: "logprobs", pos } = e {
        let idx = pos.indices();
        if idx.len() == 2 {
            let y = token_at(tokens, idx[0], idx[1]).unwrap_or(0);
            return Error::Invalid {
                field: "logits",
                pos: Pos::at3(idx[0], idx[1], y),
                reason: "the sampled token of a real (mask = 1) position has a −inf, NaN or +inf logit (or its row does)",
            };
        }
    }
    e
}

#[cfg(feature = "alloc")]
fn token_at<T: Tensor>(tokens: &T, i: usize, t: usize) -> Option<usize> {
    let mut host = alloc::vec![0.0; tokens.shape().numel()];
    tokens.download(&mut host).ok()?;
    host.get(i * tokens.shape().last() + t).map(|y| *y as usize)
}

#[cfg(not(feature = "alloc"))]
fn token_at<T: Tensor>(_tokens: &T, _i: usize, _t: usize) -> Option<usize> {
    None
}

/// Shapes, 0/1 mask and token ids in 0..V; returns V.
pub fn check_logits_batch<T: Tensor>(b: &LogitsBatch<'_, T>) -> Result<usize> {
    let ls = b.logits.shape();
    if ls.rank() != 3 {
        return Err(Error::Shape {
            field: "logits",
            expected: Shape::d3(b.mask.shape().rows(), b.mask.shape().last(), 0),
            got: ls,
        });
    }
    let [n, t, v] = [ls.dims()[0], ls.dims()[1], ls.dims()[2]];
    if n == 0 {
        return Err(Error::Empty { field: "logits" });
    }
    if t == 0 || v == 0 {
        return Err(Error::Empty { field: "logits" });
    }
    expect_shape("mask", b.mask, Shape::d2(n, t))?;
    expect_shape("tokens", b.tokens, Shape::d2(n, t))?;
    expect_shape("old_logprobs", b.old_logprobs, Shape::d2(n, t))?;
    expect_shape("rewards", b.rewards, Shape::d1(n))?;
    let mut checks = crate::objective::Checks::new();
    checks.mask("mask", b.mask)?;
    checks.index("tokens", b.tokens, v, "token id must be an integer in 0..V")?;
    checks.run()?;
    Ok(v)
}

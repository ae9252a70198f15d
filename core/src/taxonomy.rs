//! The peak/valley token taxonomy (`OBJECTIVE.md` §3 and §7).
//!
//! A token is a *peak* when its probability is at least the collision
//! probability Σ_v p_v² of its position, else a *valley*; its *sign* is that
//! of its sequence's advantage. The first-order effect of one logit-gradient
//! step on the sampled token and on the entropy depends on exactly these.

use crate::error::Result;
use crate::logits::RowStats;
use crate::objective::BinSpec;
use crate::tensor::{Binary, Tensor};

/// (N, T) bin code of every token: `2·is_neg + is_valley`, the index into
/// [`BinSpec::NAMES`]. `adv` (N); `logprobs` and `sum_p_sq` (N, T); without
/// `sum_p_sq` every token counts as a peak.
pub fn bin_codes<T: Tensor>(adv: &T, logprobs: &T, sum_p_sq: Option<&T>) -> Result<T> {
    let neg = adv.binary(&adv.scalar(0.0)?, Binary::Lt)?.mul_scalar(2.0)?; // (N)
    let valley = match sum_p_sq {
        Some(s) => logprobs.exp()?.binary(s, Binary::Lt)?,
        None => T::full(&logprobs.device(), logprobs.shape(), 0.0)?,
    };
    valley.add(&neg)
}

/// (N, T) 1 where the token's bin is in `bins`.
pub fn in_bins<T: Tensor>(codes: &T, bins: BinSpec) -> Result<T> {
    let mut acc = codes.mul_scalar(0.0)?;
    for code in 0..4 {
        if bins.contains_code(code) {
            acc = acc.add(&codes.binary(&codes.scalar(code as f64)?, Binary::Eq)?)?;
        }
    }
    Ok(acc)
}

/// First-order predictions for one token under Δz = η·c·(onehot(y) − p).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TokenDelta {
    /// Δp_y of the sampled token.
    pub dp_sampled: f64,
    /// Δ log p_y ≈ Δp_y / p_y.
    pub dlogp_sampled: f64,
    /// Δp_k of another token k with probability `p_other` (given).
    pub dp_other: f64,
    /// ΔH of the position.
    pub dentropy: f64,
}

/// §7: Δp_y = η c p_y (1 − 2p_y + Σp²); Δp_k = η c p_k (Σp² − p_y − p_k);
/// ΔH = −η c [p_y (log p_y + H) − Σ_k p_k² (log p_k + H)], from a row's
/// statistics (its ℓ, Σp², H and Σ_k p_k² log p_k; the lse is not read).
pub fn predict(stats: RowStats, c: f64, eta: f64, p_other: f64) -> TokenDelta {
    let RowStats { logp, sum_p_sq: s2, entropy: h, sum_p_sq_logp, .. } = stats;
    let py = libm::exp(logp);
    let ec = eta * c;
    let dlogp = ec * (1.0 - 2.0 * py + s2);
    let py_term = if py > 0.0 { py * (libm::log(py) + h) } else { 0.0 };
    TokenDelta {
        dp_sampled: dlogp * py,
        dlogp_sampled: dlogp,
        dp_other: ec * p_other * (s2 - py - p_other),
        dentropy: -ec * (py_term - (sum_p_sq_logp + h * s2)),
    }
}

/// Sums of the first-order predictions over the tokens of one bin.
#[cfg(feature = "alloc")]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BinDelta {
    /// Kept tokens of the bin (those with an update, c ≠ 0).
    pub tokens: u64,
    /// Σ Δ log p_y over the bin's tokens.
    pub dlogp: f64,
    /// Σ ΔH over the bin's tokens (each position's entropy change, summed).
    pub dentropy: f64,
}

/// Per bin (in [`BinSpec::NAMES`] order), the predicted effect of the step
/// Δz = −η · ∂loss/∂z on the sampled tokens and the entropy, token by token
/// (§7 with c = −∂loss/∂ℓ). Downloads the logits: for diagnostics, not the
/// hot path.
#[cfg(feature = "alloc")]
pub fn bin_deltas<T: Tensor>(
    logits: &T, // (N, T, V)
    tokens: &T, // (N, T)
    temperature: f64,
    out: &crate::objective::Output<T>,
    eta: f64,
) -> Result<[BinDelta; 4]> {
    use alloc::vec;
    let v = logits.shape().last();
    let host = |x: &T| -> Result<alloc::vec::Vec<f64>> {
        let mut h = vec![0.0; x.shape().numel()];
        x.download(&mut h)?;
        Ok(h)
    };
    let (z, y, g, codes) = (host(logits)?, host(tokens)?, host(&out.grad_logprobs)?, host(&out.bins)?);
    let mut sums = [BinDelta::default(); 4];
    for (r, row) in z.chunks(v.max(1)).enumerate() {
        if g[r] == 0.0 {
            continue;
        }
        let stats = crate::logits::row_stats(row, y[r] as usize, temperature);
        // The step Δz = −η·g·(onehot − p)/τ moves the scaled logits z/τ (in
        // which §7 is written) by −η·g/τ²·(onehot − p): c = −g/τ².
        let d = predict(stats, -g[r] / (temperature * temperature), eta, 0.0);
        let bin = &mut sums[(codes[r] as usize).min(3)];
        bin.tokens += 1;
        bin.dlogp += d.dlogp_sampled;
        bin.dentropy += d.dentropy;
    }
    Ok(sums)
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logits::row_stats;
    use alloc::vec::Vec;

    /// One token's loss L = −A·ℓ (g = ∂L/∂ℓ = −A) stepped by plain gradient
    /// descent on the raw logits z, Δz = −η ∂L/∂z = −η g (onehot − p)/τ.
    /// The scaled logits z/τ, in which §7 is written, then move by
    /// −η g/τ² (onehot − p): c = −g/τ². The finite difference pins that
    /// factor (c = −g/τ would be off by τ).
    #[test]
    fn descent_on_raw_logits_has_coefficient_minus_g_over_tau_squared() {
        let z = [0.4, -0.9, 1.6, 0.1, -0.3, 0.8];
        let eta = 1e-6;
        for (y, tau, adv) in [(0, 0.6, 1.0), (2, 1.0, -0.7), (4, 1.8, 0.5), (2, 0.3, -1.2)] {
            let g = -adv;
            let s = row_stats(&z, y, tau);
            let stepped: Vec<f64> = z
                .iter()
                .enumerate()
                .map(|(k, &a)| {
                    let p = libm::exp(a / tau - s.lse);
                    a - eta * g * (f64::from(u8::from(k == y)) - p) / tau
                })
                .collect();
            let s1 = row_stats(&stepped, y, tau);
            let (dl, dh) = (s1.logp - s.logp, s1.entropy - s.entropy);
            let d = predict(s, -g / (tau * tau), eta, 0.0);
            assert!((d.dlogp_sampled - dl).abs() <= 1e-5 * dl.abs(), "τ = {tau}: Δℓ {} vs {dl}", d.dlogp_sampled);
            assert!((d.dentropy - dh).abs() <= 1e-5 * dh.abs(), "τ = {tau}: ΔH {} vs {dh}", d.dentropy);
            assert!((libm::exp(s1.logp) - libm::exp(s.logp) - d.dp_sampled).abs() <= 1e-5 * d.dp_sampled.abs());
            if tau != 1.0 {
                let wrong = predict(s, -g / tau, eta, 0.0);
                assert!((wrong.dentropy - dh).abs() > 0.1 * dh.abs(), "τ = {tau}: −g/τ should miss");
            }
        }
    }

    /// Δp_k of another token against the finite difference.
    #[test]
    fn other_token_change_matches_finite_differences() {
        let z = [0.2, 1.3, -0.5, 0.0];
        let (y, k, tau, c, eta) = (1, 3, 0.9, 0.8, 1e-6);
        let s = row_stats(&z, y, tau);
        let p = |row: &[f64], i: usize| {
            let r = row_stats(row, i, tau);
            libm::exp(r.logp)
        };
        let stepped: Vec<f64> =
            z.iter().enumerate().map(|(i, &a)| a + tau * eta * c * (f64::from(u8::from(i == y)) - p(&z, i))).collect();
        let d = predict(s, c, eta, p(&z, k));
        let measured = p(&stepped, k) - p(&z, k);
        assert!((d.dp_other - measured).abs() <= 1e-5 * measured.abs(), "{} vs {measured}", d.dp_other);
    }
}

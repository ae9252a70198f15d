//! What an evaluation of the objective returns.

use crate::error::Result;
use crate::objective::BinSpec;
use crate::tensor::{Binary, Tensor};

/// Everything one evaluation produces, as tensors on the backend.
#[derive(Clone)]
pub struct Output<T> {
    /// (N) A_i.
    pub advantages: T,
    /// (N) w_i.
    pub weights: T,
    /// (1) D.
    pub normalizer: T,
    /// (1) Σ_i w_i Σ_t k_it L_it.
    pub loss_sum: T,
    /// (1) loss_sum / D.
    pub loss: T,
    /// (N, T) ∂loss/∂ℓ.
    pub grad_logprobs: T,
    /// (N, T, V) ∂loss/∂z at logits level.
    pub grad_logits: Option<T>,
    /// (N, T) ℓ (the input at token level, computed at logits level).
    pub logprobs: T,
    /// (N, T) entropy H of each position (logits level).
    pub entropy: Option<T>,
    /// (N, T) Σ_v p_v² (logits level, or the token-level input).
    pub sum_p_sq: Option<T>,
    /// (N, T) Σ_v p_v² log p_v, which the taxonomy's first-order ΔH needs
    /// (`OBJECTIVE.md` §7); computed at logits level only.
    pub sum_p_sq_logp: Option<T>,
    /// (N, T) the ratio x (token ρ, or GSPO's s_i on every token).
    pub ratio: T,
    /// (N, T) k, the keep mask.
    pub keep: T,
    /// (N, T) the completion mask.
    pub mask: T,
    /// (N, T) 1 where a kept token's ratio was clipped.
    pub clipped: T,
    /// (N, T) bin code `2·is_neg + is_valley` ([`BinSpec::NAMES`]).
    pub bins: T,
    /// (9) `[clipped_tokens, eligible × 4, kept × 4]`, when a backend computed
    /// them in its fused kernel; `None` makes [`Output::summary`] reduce.
    pub counts: Option<T>,
}

/// Token counts per bin, in [`BinSpec::NAMES`] order.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BinCounts {
    pub eligible: [u64; 4],
    pub kept: [u64; 4],
}

/// The scalars of an evaluation, downloaded.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    pub loss: f64,
    pub loss_sum: f64,
    pub normalizer: f64,
    pub clipped_tokens: u64,
    pub bins: BinCounts,
}

impl<T: Tensor> Output<T> {
    /// The (9) counts tensor: clipped tokens, then eligible and kept per bin.
    pub fn count_values(&self) -> Result<[f64; 9]> {
        let mut out = [0.0; 9];
        if let Some(c) = &self.counts {
            c.download(&mut out)?;
            return Ok(out);
        }
        out[0] = self.clipped.sum_all()?.item()?;
        for code in 0..4 {
            let is = self.bins.binary(&self.bins.scalar(code as f64)?, Binary::Eq)?;
            out[1 + code] = is.mul(&self.mask)?.sum_all()?.item()?;
            out[5 + code] = is.mul(&self.keep)?.sum_all()?.item()?;
        }
        Ok(out)
    }

    pub fn summary(&self) -> Result<Summary> {
        let c = self.count_values()?;
        let mut bins = BinCounts::default();
        for code in 0..4 {
            bins.eligible[code] = c[1 + code] as u64;
            bins.kept[code] = c[5 + code] as u64;
        }
        Ok(Summary {
            loss: self.loss.item()?,
            loss_sum: self.loss_sum.item()?,
            normalizer: self.normalizer.item()?,
            clipped_tokens: c[0] as u64,
            bins,
        })
    }
}

impl BinCounts {
    /// `(name, eligible, kept)` per bin.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64, u64)> + '_ {
        (0..4).map(|c| (BinSpec::NAMES[c], self.eligible[c], self.kept[c]))
    }
}

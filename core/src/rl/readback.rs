//! What the loop reads back from the device: a tensor's values
//! ([`download`]), the token statistics an objective's output already holds
//! ([`output_stats`]) and the mean entropy of logits ([`mean_entropy`]).

use alloc::format;
use alloc::vec;
use alloc::vec::Vec;

use crate::error::{Error, Result};
use crate::logits::row_stats;
use crate::objective::Output;
use crate::rl::policy::TokenStats;
use crate::tensor::Tensor;

/// A tensor's values on the host, as f64.
pub(crate) fn download<T: Tensor>(x: &T) -> Result<Vec<f64>> {
    let mut out = vec![0.0; x.shape().numel()];
    x.download(&mut out)?;
    Ok(out)
}

/// The token statistics a logits-level evaluation already computed (its
/// fused kernel's ℓ, H, Σp², Σp²·log p): the taxonomy reads these rather
/// than downloading the (N, T, V) logits.
pub(crate) fn output_stats<T: Tensor>(out: &Output<T>) -> Result<TokenStats> {
    let narrow = |x: Option<&T>, what: &'static str| -> Result<Vec<f32>> {
        let x = x.ok_or(Error::Backend(format!("the logits objective returned no {what}")))?;
        Ok(download(x)?.iter().map(|&v| v as f32).collect())
    };
    Ok(TokenStats {
        logprobs: narrow(Some(&out.logprobs), "log-probs")?,
        entropy: narrow(out.entropy.as_ref(), "entropy")?,
        sum_p_sq: narrow(out.sum_p_sq.as_ref(), "Σp²")?,
        sum_p_sq_logp: narrow(out.sum_p_sq_logp.as_ref(), "Σp²·log p")?,
    })
}

/// Mean entropy of softmax(z/τ) over every position of (N, T, V) logits.
pub fn mean_entropy<T: Tensor>(logits: &T, tokens: &[u32], tau: f64) -> Result<f64> {
    let v = logits.shape().last();
    let z = download(logits)?;
    let rows = z.len() / v.max(1);
    let sum: f64 = (0..rows)
        .map(|i| row_stats(&z[i * v..(i + 1) * v], tokens.get(i).map_or(0, |&y| y as usize), tau).entropy)
        .sum();
    Ok(sum / rows.max(1) as f64)
}

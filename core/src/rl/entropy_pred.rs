//! What one RL step's update did to the entropy of its own batch, and how
//! much of it the token taxonomy accounts for (`OBJECTIVE.md` §7 and §8).
//!
//! With `measure_entropy`, the step scores its whole batch once before the
//! update and once after, and reports
//!
//! - `entropy/before`, `entropy/after`, `entropy/delta_measured`: the mean
//!   entropy of the batch's positions before and after, and their difference;
//! - `entropy/delta_pred_first_order`: the first-order change given the
//!   update's real logit change, mean over positions of Σ_v ∂H/∂u_v · Δu_v
//!   with u = z/τ and ∂H/∂u_v = −p_v (log p_v + H);
//! - `entropy/delta_pred`: the same linear prediction with the gradient
//!   taken at the midpoint u + Δu/2 (the midpoint rule along the straight
//!   path from the logits before to those after): it differs from the
//!   measured change by third-order terms in Δz, whatever the optimizer,
//!   and stays bounded by |∇H|·|Δu| where a Taylor series in Δz diverges
//!   (a default run's AdamW updates are large enough that the first order
//!   alone is off by a factor of ~2, and its second order worse on some
//!   steps);
//! - `taxonomy/logit_step`: the step size η the taxonomy's model needs to
//!   explain the real change, the least-squares fit of Δu ≈ η·e over all
//!   positions, where e = c (onehot(y) − p) with c = −g/τ² is the scaled
//!   logits' move per unit step of gradient descent on the logits
//!   (g = ∂loss/∂ℓ of the first pass); `taxonomy/alignment` is the cosine
//!   between Δu and e (1: the network moved each position's logits exactly
//!   as §7 assumes);
//! - `bins/<bin>_dH_pred`: §7's ΔH at that step size, summed over the
//!   bin's tokens; their sum over bins divided by the positions is
//!   `entropy/delta_pred_taxonomy`.
//!
//! The chunked (large-vocabulary) head never forms the logits, so neither
//! Δz nor the fit exists there: its steps report `entropy/before`
//! (the first pass's mean), `entropy/after` and `entropy/delta_measured`
//! only.

use alloc::format;
use alloc::vec;
use alloc::vec::Vec;

use crate::error::Result;
use crate::logits::row_stats;
use crate::objective::{BinSpec, Output};
use crate::rl::metrics::{Metrics, push};
use crate::rl::policy::{Policy, Prompts, TokenStats};
use crate::rl::readback::download;
use crate::rl::truncate::Processing;
use crate::taxonomy;
use crate::tensor::Tensor;

/// Per-step bin counts and the first pass's ∂loss/∂ℓ, filled minibatch by
/// minibatch.
pub(crate) struct Taxonomy {
    pub count: [u64; 4],
    pub kept: [u64; 4],
    entropy_sum: f64,
    tokens: u64,
    /// (N, T) ∂loss/∂ℓ and bin code of every token of the batch.
    grad: Vec<f64>,
    codes: Vec<u8>,
}

impl Taxonomy {
    pub fn new(tokens: usize) -> Self {
        Taxonomy {
            count: [0; 4],
            kept: [0; 4],
            entropy_sum: 0.0,
            tokens: 0,
            grad: vec![0.0; tokens],
            codes: vec![0; tokens],
        }
    }

    /// Mean entropy over the first pass's scored positions.
    pub fn mean_entropy(&self) -> f64 {
        self.entropy_sum / self.tokens.max(1) as f64
    }

    /// Adds one minibatch of the first pass, whose tokens start at `offset`
    /// (in tokens) in the batch; `mask` and `stats` are the minibatch's.
    pub fn accumulate<T: Tensor>(
        &mut self,
        offset: usize,
        mask: &[f64],
        stats: &TokenStats,
        out: &Output<T>,
    ) -> Result<()> {
        let grad = download(&out.grad_logprobs)?; // (Nm, T)
        let bins = download(&out.bins)?;
        let keep = download(&out.keep)?;
        for (i, &m) in mask.iter().enumerate().take(stats.entropy.len()) {
            if m == 0.0 {
                continue;
            }
            let code = (bins[i] as usize).min(3);
            self.count[code] += 1;
            self.kept[code] += u64::from(keep[i] != 0.0);
            self.entropy_sum += stats.entropy[i] as f64;
            self.tokens += 1;
            if let (Some(g), Some(c)) = (self.grad.get_mut(offset + i), self.codes.get_mut(offset + i)) {
                *g = grad[i];
                *c = code as u8;
            }
        }
        Ok(())
    }
}

/// The (N·T, V) logits of the whole batch before the update (the logits
/// path only).
pub(crate) struct Before {
    z: Vec<f64>,
}

/// Scores the batch before the update; `None` on the chunked head and under
/// top-k / top-p (whose entropy is that of the truncated distribution, which
/// the logits' change does not give to first order).
pub(crate) fn before<P: Policy>(
    policy: &mut P,
    prompts: Prompts<'_>,
    group: usize,
    tokens: &[u32],
    processing: Processing,
) -> Result<Option<Before>> {
    if policy.config().chunked_head() || processing.truncates(policy.config().vocab) {
        return Ok(None);
    }
    let z = download(&policy.forward(prompts, group, tokens)?)?;
    Ok(Some(Before { z }))
}

/// Scores the batch after the update and pushes the metrics of the module
/// doc.
#[allow(clippy::too_many_arguments, reason = "the batch's parts, as the step holds them")]
pub(crate) fn after<P: Policy>(
    policy: &mut P,
    prompts: Prompts<'_>,
    group: usize,
    tokens: &[u32], // (N, T)
    mask: &[f64],   // (N, T)
    processing: Processing,
    before: Option<&Before>,
    tax: &Taxonomy,
    m: &mut Metrics,
) -> Result<()> {
    let Some(before) = before else {
        let stats = policy.forward_stats(prompts, group, tokens, processing)?;
        let (h0, h1) = (tax.mean_entropy(), masked_mean(&stats.entropy, mask));
        push(m, "entropy/before", h0);
        push(m, "entropy/after", h1);
        push(m, "entropy/delta_measured", h1 - h0);
        return Ok(());
    };
    let tau = processing.temperature;
    let z1 = download(&policy.forward(prompts, group, tokens)?)?;
    let v = before.z.len() / tokens.len().max(1);
    let mut acc = Change::default();
    let mut bin_dh = [0.0; 4];
    for (r, &y) in tokens.iter().enumerate() {
        if mask.get(r).is_none_or(|&x| x == 0.0) {
            continue;
        }
        let (a, b) = (&before.z[r * v..(r + 1) * v], &z1[r * v..(r + 1) * v]);
        let g = tax.grad.get(r).copied().unwrap_or(0.0);
        let row = row_change(a, b, y as usize, -g / (tau * tau), tau);
        acc.add(&row);
        bin_dh[tax.codes.get(r).map_or(0, |&c| c as usize).min(3)] += row.taxonomy_dh;
    }
    let n = acc.positions.max(1.0);
    let eta = if acc.e_sq > 0.0 { acc.along / acc.e_sq } else { 0.0 };
    let cos = if acc.e_sq > 0.0 && acc.du_sq > 0.0 { acc.along / libm::sqrt(acc.e_sq * acc.du_sq) } else { 0.0 };
    push(m, "entropy/before", acc.h0 / n);
    push(m, "entropy/after", acc.h1 / n);
    push(m, "entropy/delta_measured", (acc.h1 - acc.h0) / n);
    push(m, "entropy/delta_pred", acc.dh_midpoint / n);
    push(m, "entropy/delta_pred_first_order", acc.dh_first_order / n);
    push(m, "entropy/delta_pred_taxonomy", eta * bin_dh.iter().sum::<f64>() / n);
    push(m, "taxonomy/logit_step", eta);
    push(m, "taxonomy/alignment", cos);
    for (code, name) in BinSpec::NAMES.iter().enumerate() {
        push(m, &format!("bins/{name}_dH_pred"), eta * bin_dh[code]);
    }
    Ok(())
}

/// One position's entropy change under a logit change, and its terms in
/// the fit of the taxonomy's step size.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RowChange {
    /// H of softmax(z/τ) before and after.
    pub h0: f64,
    pub h1: f64,
    /// Σ_v ∂H/∂u_v · Δu_v at the logits before (u = z/τ).
    pub dh_first_order: f64,
    /// Σ_v ∂H/∂u_v · Δu_v at the midpoint u + Δu/2.
    pub dh_midpoint: f64,
    /// ⟨Δu, e⟩, ⟨e, e⟩ and ⟨Δu, Δu⟩ with e = c (onehot(y) − p).
    pub along: f64,
    pub e_sq: f64,
    pub du_sq: f64,
    /// §7's ΔH at unit step for coefficient c (0 when c = 0).
    pub taxonomy_dh: f64,
}

/// The [`RowChange`] of one position from logits `z0` to `z1` (V each),
/// sampled token `y`, §7 coefficient `c` (per unit step of the scaled
/// logits), temperature τ.
pub fn row_change(z0: &[f64], z1: &[f64], y: usize, c: f64, tau: f64) -> RowChange {
    let s0 = row_stats(z0, y, tau);
    let s1 = row_stats(z1, y, tau);
    let mut r = RowChange { h0: s0.entropy, h1: s1.entropy, ..RowChange::default() };
    r.dh_first_order = dh_along(z0, z1, y, tau);
    let mid: Vec<f64> = z0.iter().zip(z1).map(|(a, b)| 0.5 * (a + b)).collect();
    // ∇H(mid)·Δu = 2·∇H(mid)·(z1 − mid)/τ.
    r.dh_midpoint = 2.0 * dh_along(&mid, z1, y, tau);
    for (k, (&a, &b)) in z0.iter().zip(z1).enumerate() {
        let p = libm::exp(a / tau - s0.lse);
        let du = (b - a) / tau;
        let e = c * (f64::from(u8::from(k == y)) - p);
        r.along += du * e;
        r.e_sq += e * e;
        r.du_sq += du * du;
    }
    if c != 0.0 {
        r.taxonomy_dh = taxonomy::predict(s0, c, 1.0, 0.0).dentropy;
    }
    r
}

/// Σ_v ∂H/∂u_v(z) · (w − z)_v/τ, ∂H/∂u_v = −p_v (log p_v + H) at z.
fn dh_along(z: &[f64], w: &[f64], y: usize, tau: f64) -> f64 {
    let s = row_stats(z, y, tau);
    let mut dh = 0.0;
    for (&a, &b) in z.iter().zip(w) {
        let lp = a / tau - s.lse;
        let p = libm::exp(lp);
        // p log p → 0 as p → 0; exp underflow gives p = 0 with lp finite.
        if p > 0.0 {
            dh -= p * (lp + s.entropy) * (b - a) / tau;
        }
    }
    dh
}

#[derive(Default)]
struct Change {
    positions: f64,
    h0: f64,
    h1: f64,
    dh_first_order: f64,
    dh_midpoint: f64,
    along: f64,
    e_sq: f64,
    du_sq: f64,
}

impl Change {
    fn add(&mut self, r: &RowChange) {
        self.positions += 1.0;
        self.h0 += r.h0;
        self.h1 += r.h1;
        self.dh_first_order += r.dh_first_order;
        self.dh_midpoint += r.dh_midpoint;
        self.along += r.along;
        self.e_sq += r.e_sq;
        self.du_sq += r.du_sq;
    }
}

/// Mean of `x` where `mask` is 1.
fn masked_mean(x: &[f32], mask: &[f64]) -> f64 {
    let (s, n) =
        x.iter().zip(mask).filter(|(_, m)| **m != 0.0).fold((0.0, 0.0), |(s, n), (&v, _)| (s + v as f64, n + 1.0));
    s / f64::max(n, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn softmax_entropy(z: &[f64], tau: f64) -> f64 {
        row_stats(z, 0, tau).entropy
    }

    /// The first-order term against a central finite difference of H along
    /// Δz, and the remainder shrinking as the square of the step.
    #[test]
    fn first_order_term_matches_finite_differences() {
        let z0 = [0.3, -1.2, 2.0, 0.0, 0.7];
        let dir = [0.5, 0.1, -0.8, 0.3, -0.2];
        for tau in [0.5, 1.0, 1.7] {
            let h = 1e-4;
            let plus: Vec<f64> = z0.iter().zip(&dir).map(|(a, d)| a + h * d).collect();
            let minus: Vec<f64> = z0.iter().zip(&dir).map(|(a, d)| a - h * d).collect();
            let fd = (softmax_entropy(&plus, tau) - softmax_entropy(&minus, tau)) / (2.0 * h);
            let r = row_change(&z0, &plus, 2, 0.0, tau);
            assert!((r.dh_first_order / h - fd).abs() < 1e-7, "τ = {tau}: {} vs {fd}", r.dh_first_order / h);
            let rem = |s: f64| {
                let z1: Vec<f64> = z0.iter().zip(&dir).map(|(a, d)| a + s * d).collect();
                let r = row_change(&z0, &z1, 2, 0.0, tau);
                (r.h1 - r.h0 - r.dh_first_order).abs()
            };
            let ratio = rem(1e-2) / rem(2e-2);
            assert!((ratio - 0.25).abs() < 0.02, "τ = {tau}: remainder ratio {ratio}");
            // At the midpoint the remainder is third order.
            let rem2 = |s: f64| {
                let z1: Vec<f64> = z0.iter().zip(&dir).map(|(a, d)| a + s * d).collect();
                let r = row_change(&z0, &z1, 2, 0.0, tau);
                (r.h1 - r.h0 - r.dh_midpoint).abs()
            };
            let ratio = rem2(5e-3) / rem2(1e-2);
            assert!((ratio - 0.125).abs() < 0.01, "τ = {tau}: midpoint remainder ratio {ratio}");
            assert!(rem2(2e-2) < 0.1 * rem(2e-2));
        }
    }

    /// A change along e itself: the fit finds its step, the alignment is 1,
    /// and §7's ΔH at that step is the first-order change.
    #[test]
    fn a_change_along_the_taxonomy_direction_fits_exactly() {
        let z0 = [1.1, -0.4, 0.2, 0.9];
        let (y, tau, c, eta) = (1, 0.8, -0.6, 3e-5);
        let s = row_stats(&z0, y, tau);
        let z1: Vec<f64> = z0
            .iter()
            .enumerate()
            .map(|(k, &a)| {
                let p = libm::exp(a / tau - s.lse);
                a + tau * eta * c * (f64::from(u8::from(k == y)) - p)
            })
            .collect();
        let r = row_change(&z0, &z1, y, c, tau);
        let fit = r.along / r.e_sq;
        assert!((fit / eta - 1.0).abs() < 1e-9, "fit {fit}");
        assert!((r.along / libm::sqrt(r.e_sq * r.du_sq) - 1.0).abs() < 1e-12);
        assert!((eta * r.taxonomy_dh - r.dh_first_order).abs() < 1e-9 * r.dh_first_order.abs());
    }
}

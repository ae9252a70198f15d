//! The per-step diagnostics of `OBJECTIVE.md` §8, namespaced
//! (`objective/clipped_fraction`, `entropy/pos`, `bins/pos_peak_kept`, ...).
//! They read the (N, T) and (N) tensors of an [`Output`] on the host: cheap
//! next to the (N, T, V) work.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use crate::error::Result;
use crate::objective::{BinSpec, Output};
use crate::tensor::Tensor;

/// Probability bins for gradient mass: [0,.01) [.01,.1) [.1,.25) [.25,.5) [.5,1].
pub const PROB_EDGES: [f64; 4] = [0.01, 0.1, 0.25, 0.5];
pub const PROB_BINS: [&str; 5] = ["p0-0.01", "p0.01-0.1", "p0.1-0.25", "p0.25-0.5", "p0.5-1"];

/// Namespaced metrics, in a stable order.
pub type Metrics = Vec<(String, f64)>;

fn host<T: Tensor>(x: &T) -> Result<Vec<f64>> {
    let mut h = vec![0.0; x.shape().numel()];
    x.download(&mut h)?;
    Ok(h)
}

/// Mean of `xs` over `sel`, 0 when nothing is selected.
fn mean(xs: impl Iterator<Item = (f64, bool)>) -> f64 {
    let (mut s, mut n) = (0.0, 0.0);
    for (x, on) in xs {
        if on {
            s += x;
            n += 1.0;
        }
    }
    if n > 0.0 { s / n } else { 0.0 }
}

/// The §8 metrics of one evaluation. `old_logprobs` (N, T), `rewards` and
/// `group_ids` (N) as given to the objective.
pub fn diagnostics<T: Tensor>(
    out: &Output<T>,
    old_logprobs: &T,
    rewards: &[f64],
    group_ids: &[i64],
) -> Result<Metrics> {
    let t = out.mask.shape().last();
    let (mask, keep, clipped) = (host(&out.mask)?, host(&out.keep)?, host(&out.clipped)?);
    let (lp, old, grad, adv) =
        (host(&out.logprobs)?, host(old_logprobs)?, host(&out.grad_logprobs)?, host(&out.advantages)?);
    let entropy = out.entropy.as_ref().map(host).transpose()?;
    let n = adv.len();
    let pos = |k: usize| adv[k / t] >= 0.0;
    let real = |k: usize| mask[k] == 1.0;
    let mut m: Metrics = Vec::new();
    let mut put = |k: &str, v: f64| m.push((k.into(), v));

    let kept = |k: usize| keep[k] != 0.0;
    put("objective/loss", out.loss.item()?);
    put("objective/clipped_fraction", mean((0..n * t).map(|k| (clipped[k], kept(k)))));
    put("objective/clipped_fraction_pos", mean((0..n * t).map(|k| (clipped[k], kept(k) && pos(k)))));
    put("objective/clipped_fraction_neg", mean((0..n * t).map(|k| (clipped[k], kept(k) && !pos(k)))));
    put("objective/kept_fraction", mean((0..n * t).map(|k| (keep[k], real(k)))));

    let rho: Vec<f64> = (0..n * t).map(|k| libm::exp(lp[k] - old[k])).collect();
    let real_rho = || (0..n * t).filter(|&k| real(k)).map(|k| rho[k]);
    put("ratio/mean", mean((0..n * t).map(|k| (rho[k], real(k)))));
    put("ratio/min", real_rho().fold(f64::INFINITY, f64::min).min(f64::MAX));
    put("ratio/max", real_rho().fold(0.0, f64::max));
    put("mismatch/kl", mean((0..n * t).map(|k| (rho[k] - libm::log(rho[k]) - 1.0, real(k)))));
    let per_seq = |f: &dyn Fn(usize) -> f64, agg: fn(&[f64]) -> f64| -> f64 {
        let vals: Vec<f64> = (0..n)
            .filter(|i| (0..t).any(|tt| real(i * t + tt)))
            .map(|i| agg(&(0..t).filter(|tt| real(i * t + tt)).map(|tt| f(i * t + tt)).collect::<Vec<_>>()))
            .collect();
        if vals.is_empty() { 0.0 } else { vals.iter().sum::<f64>() / vals.len() as f64 }
    };
    put(
        "mismatch/tv_max",
        per_seq(&|k| (libm::exp(lp[k]) - libm::exp(old[k])).abs(), |v| v.iter().cloned().fold(0.0, f64::max)),
    );
    put("mismatch/chi2", per_seq(&|k| rho[k] * rho[k], |v| v.iter().sum::<f64>() / v.len() as f64 - 1.0));

    for (name, sel) in [("all", 0u8), ("pos", 1), ("neg", 2)] {
        let on = |k: usize| real(k) && (sel == 0 || (sel == 1) == pos(k));
        if let Some(h) = &entropy {
            let key = if sel == 0 { String::from("entropy/mean") } else { format!("entropy/{name}") };
            put(&key, mean((0..n * t).map(|k| (h[k], on(k)))));
        }
        put(&format!("perplexity/{name}"), libm::exp(-mean((0..n * t).map(|k| (lp[k], on(k))))));
    }
    // Winners and losers in the strict sense (A > 0, A < 0): `pos` above
    // also holds the sequences of groups without signal (A = 0).
    if let Some(h) = &entropy {
        put("entropy/winners", mean((0..n * t).map(|k| (h[k], real(k) && adv[k / t] > 0.0))));
        put("entropy/losers", mean((0..n * t).map(|k| (h[k], real(k) && adv[k / t] < 0.0))));
    }
    let p: Vec<f64> = lp.iter().map(|x| libm::exp(*x)).collect();
    put("p_train/min", (0..n * t).filter(|&k| real(k)).map(|k| p[k]).fold(1.0, f64::min));
    put("p_train/mean", mean((0..n * t).map(|k| (p[k], real(k)))));
    put("p_train/max", (0..n * t).filter(|&k| real(k)).map(|k| p[k]).fold(0.0, f64::max));

    let counts = out.count_values()?;
    for (c, name) in BinSpec::NAMES.iter().enumerate() {
        put(&format!("bins/{name}_eligible"), counts[1 + c]);
        put(&format!("bins/{name}_kept"), counts[5 + c]);
    }

    // Gradient mass and token counts per probability bin, split by sign.
    for (sign, want_pos) in [("pos", true), ("neg", false)] {
        let mut mass = [0.0; 5];
        let mut count = [0.0; 5];
        let (mut strength, mut weighted_p) = (0.0, 0.0);
        for k in (0..n * t).filter(|&k| real(k) && pos(k) == want_pos) {
            let b = PROB_EDGES.iter().filter(|e| p[k] >= **e).count();
            mass[b] += grad[k].abs();
            count[b] += 1.0;
            strength += grad[k].abs();
            weighted_p += grad[k].abs() * p[k];
        }
        for b in 0..5 {
            put(&format!("grad_mass/{sign}/{}", PROB_BINS[b]), mass[b]);
            put(&format!("tokens/{sign}/{}", PROB_BINS[b]), count[b]);
        }
        put(&format!("strength_weighted_p/{sign}"), if strength > 0.0 { weighted_p / strength } else { 0.0 });
    }

    // Groups: any correct answer, no positive signal, no negative signal.
    let mut ids: Vec<i64> = group_ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let (mut correct, mut no_pos, mut no_neg) = (0.0, 0.0, 0.0);
    for g in &ids {
        let members: Vec<usize> = (0..n).filter(|&i| group_ids.get(i) == Some(g)).collect();
        correct +=
            f64::from(u8::from(members.iter().any(|&i| rewards.get(i).is_some_and(|&r| crate::task::solves(r)))));
        no_pos += f64::from(u8::from(!members.iter().any(|&i| adv[i] > 0.0)));
        no_neg += f64::from(u8::from(!members.iter().any(|&i| adv[i] < 0.0)));
    }
    let ng = ids.len().max(1) as f64;
    put("groups/any_correct", correct / ng);
    put("groups/no_positive_signal", no_pos / ng);
    put("groups/no_negative_signal", no_neg / ng);
    Ok(m)
}

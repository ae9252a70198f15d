//! Data-parallel training (`docs/PYTHON.md`, "Many ranks"): each rank holds
//! whole groups and evaluates its own sequences; the counts that the
//! normalizer D of `docs/OBJECTIVE.md` §5 is made of are summed over the
//! ranks (the longest completion: its max), and each rank divides by the
//! global D. The weights w_i, the advantages and the keep mask depend only
//! on a sequence's own group, so the rank losses then add up to the loss of
//! the whole batch on one rank, and so do their gradients.

use wapo_core::advantage::Groups;
use wapo_core::objective::Output;
use wapo_core::{Aggregation, Objective, ObjectiveConfig, Tensor};

use crate::error::bad;

/// Counts of one batch (or, reduced, of all ranks' batches).
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Counts {
    /// N.
    pub sequences: u64,
    /// Σ_i S_i: sequences that pass the sequence filter (seq level).
    pub kept_sequences: u64,
    /// Groups that contribute (group level): for wapo those with a winner,
    /// for the others those with a contributing token.
    pub contributing_groups: u64,
    /// Σ_i S_i · n_i (global level with an explicit `aggregation`).
    pub kept_sequence_tokens: u64,
    /// Σ k, the keep mask (global level with `normalize_by_kept_tokens`).
    pub kept_tokens: u64,
    /// max_i n_i (dr_grpo's default normalizer N · max n_i); reduced with max.
    pub max_tokens: u64,
}

pub const NAMES: [&str; 6] =
    ["sequences", "kept_sequences", "contributing_groups", "kept_sequence_tokens", "kept_tokens", "max_tokens"];

impl Counts {
    pub fn values(&self) -> [u64; 6] {
        [
            self.sequences,
            self.kept_sequences,
            self.contributing_groups,
            self.kept_sequence_tokens,
            self.kept_tokens,
            self.max_tokens,
        ]
    }

    pub fn from_values(v: [u64; 6]) -> Counts {
        Counts {
            sequences: v[0],
            kept_sequences: v[1],
            contributing_groups: v[2],
            kept_sequence_tokens: v[3],
            kept_tokens: v[4],
            max_tokens: v[5],
        }
    }

    /// The counts of several ranks together.
    pub fn reduce(all: &[Counts]) -> Counts {
        let mut out = [0u64; 6];
        for c in all {
            for (k, v) in c.values().into_iter().enumerate() {
                out[k] = if k == 5 { out[k].max(v) } else { out[k].saturating_add(v) };
            }
        }
        Counts::from_values(out)
    }
}

fn host<T: Tensor>(x: &T) -> wapo_core::Result<Vec<f64>> {
    let mut v = vec![0.0; x.shape().numel()];
    x.download(&mut v)?;
    Ok(v)
}

/// The counts of one evaluation. S_i is the sequence filter of
/// `OBJECTIVE.md` §3 (winners only; `mask_positive_advantages`).
pub fn local_counts<T: Tensor>(
    cfg: &ObjectiveConfig,
    out: &Output<T>,
    groups: &Groups<T>,
) -> wapo_core::Result<Counts> {
    let (adv, mask, keep, ids) = (host(&out.advantages)?, host(&out.mask)?, host(&out.keep)?, host(&groups.ids)?);
    let n = adv.len();
    let t = mask.len().checked_div(n).unwrap_or(0);
    let s: Vec<bool> = adv
        .iter()
        .map(|a| (!cfg.objective.winners_only() || *a > 0.0) && (!cfg.mask_positive_advantages || *a < 0.0))
        .collect();
    let n_tok: Vec<u64> = (0..n).map(|i| mask[i * t..(i + 1) * t].iter().sum::<f64>() as u64).collect();
    let mut group_has = vec![false; groups.count];
    for i in 0..n {
        let contributes = if cfg.objective == Objective::Wapo { s[i] } else { s[i] && n_tok[i] > 0 };
        if let Some(g) = group_has.get_mut(ids[i] as usize) {
            *g |= contributes;
        }
    }
    Ok(Counts {
        sequences: n as u64,
        kept_sequences: s.iter().filter(|x| **x).count() as u64,
        contributing_groups: group_has.iter().filter(|x| **x).count() as u64,
        kept_sequence_tokens: (0..n).filter(|i| s[*i]).map(|i| n_tok[i]).sum(),
        kept_tokens: keep.iter().filter(|k| **k != 0.0).count() as u64,
        max_tokens: n_tok.iter().copied().max().unwrap_or(0),
    })
}

/// What the counts fix: D, and for the global level with
/// `normalize_by_kept_tokens` the common weight 1/max(Σk, 1) (then D = 1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Normalizer {
    pub d: f64,
    pub kept_weight: Option<f64>,
}

pub fn normalizer(cfg: &ObjectiveConfig, c: &Counts) -> Normalizer {
    let at_least_one = |x: u64| (x as f64).max(1.0);
    let level = cfg.aggregation();
    if cfg.normalize_by_kept_tokens && level == Aggregation::Global {
        return Normalizer { d: 1.0, kept_weight: Some(1.0 / at_least_one(c.kept_tokens)) };
    }
    let d = match level {
        Aggregation::Seq => at_least_one(c.kept_sequences),
        Aggregation::Group => at_least_one(c.contributing_groups),
        Aggregation::Global if cfg.aggregation.is_none() && cfg.objective == Objective::DrGrpo => {
            c.sequences as f64 * at_least_one(c.max_tokens)
        }
        Aggregation::Global => at_least_one(c.kept_sequence_tokens),
    };
    Normalizer { d, kept_weight: None }
}

/// Checks that the global counts can be the reduction of this rank's.
pub fn check_global(local: &Counts, global: &Counts) -> pyo3::PyResult<()> {
    for ((name, l), g) in NAMES.iter().zip(local.values()).zip(global.values()) {
        if g < l {
            return Err(bad(
                &format!("global_counts.{name}"),
                format!("{g} is below this rank's own count {l}: pass the counts reduced over all ranks"),
            ));
        }
    }
    Ok(())
}

/// Rescales a local evaluation from its own normalizer to the global one:
/// loss and gradients are linear in 1/D (and in the common kept weight).
pub fn rescale<T: Tensor>(
    cfg: &ObjectiveConfig,
    out: Output<T>,
    local: &Counts,
    global: &Counts,
) -> wapo_core::Result<Output<T>> {
    let (lo, gl) = (normalizer(cfg, local), normalizer(cfg, global));
    let (f, weights_too) = match (lo.kept_weight, gl.kept_weight) {
        (Some(l), Some(g)) => (g / l, true),
        _ => (out.normalizer.item()? / gl.d, false),
    };
    let scale = |x: &T| x.mul_scalar(f);
    Ok(Output {
        weights: if weights_too { scale(&out.weights)? } else { out.weights.clone() },
        loss_sum: if weights_too { scale(&out.loss_sum)? } else { out.loss_sum.clone() },
        normalizer: out.normalizer.mul_scalar(0.0)?.add_scalar(gl.d)?,
        loss: scale(&out.loss)?,
        grad_logprobs: scale(&out.grad_logprobs)?,
        grad_logits: out.grad_logits.as_ref().map(scale).transpose()?,
        ..out
    })
}

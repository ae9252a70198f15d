//! A naive per-token loop over `docs/OBJECTIVE.md`, written independently of
//! the core's tensor composites and of its objective table (the tables of
//! §1, §4 and §5 are transcribed here by name), to check them. Float64,
//! token level.

// Index loops mirror the spec's Σ_i Σ_t formulas on purpose.
#![allow(clippy::needless_range_loop)]

use wapo_core::objective::{AdvantageMode, Aggregation, Objective, ObjectiveConfig};

/// A token-level case in plain vectors: (N), (N, T) row-major.
#[derive(Clone, Debug)]
pub struct NaiveCase {
    pub n: usize,
    pub t: usize,
    pub group_ids: Vec<i64>,
    pub rewards: Vec<f64>,
    pub mask: Vec<f64>,
    pub logprobs: Vec<f64>,
    pub old_logprobs: Vec<f64>,
    pub sum_p_sq: Option<Vec<f64>>,
}

pub struct NaiveOut {
    pub advantages: Vec<f64>,
    pub loss: f64,
    pub grad: Vec<f64>,
    pub clipped: usize,
}

pub fn naive(cfg: &ObjectiveConfig, c: &NaiveCase) -> NaiveOut {
    let (n, t) = (c.n, c.t);
    let members = |i: usize| (0..n).filter(move |&j| c.group_ids[j] == c.group_ids[i]);
    // §1 advantages
    let adv: Vec<f64> = (0..n)
        .map(|i| {
            let g: Vec<f64> = members(i).map(|j| c.rewards[j]).collect();
            let mean = g.iter().sum::<f64>() / g.len() as f64;
            let std = (g.iter().map(|r| (r - mean) * (r - mean)).sum::<f64>() / g.len() as f64).sqrt();
            match advantage_mode(cfg.objective) {
                AdvantageMode::Normalized => (c.rewards[i] - mean) / (std + 1e-8),
                AdvantageMode::Centered => c.rewards[i] - mean,
                AdvantageMode::Raw => c.rewards[i],
            }
        })
        .collect();
    // §3 keep mask
    let s: Vec<f64> = (0..n)
        .map(|i| {
            let winners_only = matches!(cfg.objective, Objective::Wapo | Objective::Raft | Objective::RaftPlusPlus);
            let mut keep = !winners_only || adv[i] > 0.0;
            if cfg.mask_positive_advantages && adv[i] >= 0.0 {
                keep = false;
            }
            if keep { 1.0 } else { 0.0 }
        })
        .collect();
    let kept_bins = cfg.kept_bins();
    let mut k = vec![0.0; n * t];
    for i in 0..n {
        for tt in 0..t {
            let idx = i * t + tt;
            let valley = c.sum_p_sq.as_ref().is_some_and(|sq| c.logprobs[idx].exp() < sq[idx]);
            let code = 2 * usize::from(adv[i] < 0.0) + usize::from(valley);
            let b = !cfg.bins_active() || kept_bins.contains_code(code);
            k[idx] = c.mask[idx] * s[i] * if b { 1.0 } else { 0.0 };
        }
    }
    let n_tok: Vec<f64> = (0..n).map(|i| c.mask[i * t..(i + 1) * t].iter().sum()).collect();
    let n_kept: Vec<f64> = (0..n).map(|i| k[i * t..(i + 1) * t].iter().sum()).collect();
    // §5 weights and normalizer
    let level = cfg.aggregation.unwrap_or(default_level(cfg.objective));
    let mut w = vec![0.0; n];
    let mut d;
    let n_groups_with = |pred: &dyn Fn(usize) -> bool| {
        let mut seen: Vec<i64> = Vec::new();
        for i in 0..n {
            if pred(i) && !seen.contains(&c.group_ids[i]) {
                seen.push(c.group_ids[i]);
            }
        }
        seen.len() as f64
    };
    match level {
        Aggregation::Seq => {
            for i in 0..n {
                w[i] = 1.0 / n_tok[i].max(1.0);
            }
            d = s.iter().sum::<f64>().max(1.0);
        }
        Aggregation::Group if cfg.objective == Objective::Wapo => {
            for i in 0..n {
                w[i] = 1.0 / (members(i).count() as f64 * cfg.max_seq_len as f64);
            }
            d = n_groups_with(&|i| s[i] > 0.0).max(1.0);
        }
        Aggregation::Group => {
            let tok_g = |i: usize| members(i).map(|j| s[j] * n_tok[j]).sum::<f64>();
            for i in 0..n {
                w[i] = 1.0 / tok_g(i).max(1.0);
            }
            d = n_groups_with(&|i| tok_g(i) > 0.0).max(1.0);
        }
        Aggregation::Global => {
            w = vec![1.0; n];
            d = if cfg.aggregation.is_none() && cfg.objective == Objective::DrGrpo {
                n as f64 * n_tok.iter().cloned().fold(0.0, f64::max).max(1.0)
            } else {
                (0..n).map(|i| s[i] * n_tok[i]).sum::<f64>().max(1.0)
            };
        }
    }
    if cfg.normalize_by_kept_tokens {
        match level {
            Aggregation::Seq => (0..n).for_each(|i| w[i] = 1.0 / n_kept[i].max(1.0)),
            Aggregation::Group => {
                for i in 0..n {
                    w[i] = 1.0 / members(i).map(|j| n_kept[j].max(1.0)).sum::<f64>();
                }
            }
            Aggregation::Global => {
                let total = n_kept.iter().sum::<f64>().max(1.0);
                w = vec![1.0 / total; n];
                d = 1.0;
            }
        }
    }
    // §4 per-token loss and its derivative
    let (lo, hi) = clip_bounds(cfg);
    let surrogate = |x: f64, a: f64| -> (f64, f64, bool) {
        let cl = x.max(lo).min(hi);
        let (ua, ub) = (x * a, cl * a);
        let inside = lo < x && x < hi;
        let gate = if ua < ub {
            1.0
        } else if ub < ua {
            if inside { 1.0 } else { 0.0 }
        } else if inside {
            1.0
        } else {
            0.5
        };
        (-ua.min(ub), -a * gate, cl != x)
    };
    let mut loss = 0.0;
    let mut grad = vec![0.0; n * t];
    let mut clipped = 0;
    for i in 0..n {
        let scale = w[i] / d;
        if cfg.objective == Objective::Gspo && cfg.importance_sampling {
            let ne = n_tok[i] + 1e-8;
            let lr: f64 =
                (0..t).map(|tt| c.mask[i * t + tt] * (c.logprobs[i * t + tt] - c.old_logprobs[i * t + tt])).sum();
            let si = (lr / ne).exp();
            let (l, dl_ds, is_clipped) = surrogate(si, adv[i]);
            for tt in 0..t {
                loss += scale * k[i * t + tt] * l;
                clipped += usize::from(is_clipped && k[i * t + tt] > 0.0);
            }
            for tt in 0..t {
                grad[i * t + tt] = scale * n_kept[i] * dl_ds * si * c.mask[i * t + tt] / ne;
            }
            continue;
        }
        for tt in 0..t {
            let idx = i * t + tt;
            if k[idx] == 0.0 {
                continue;
            }
            let lp = c.logprobs[idx];
            let (l, g) = if cfg.objective == Objective::Raft {
                (-lp, -1.0)
            } else if !cfg.importance_sampling {
                (-lp * adv[i], -adv[i])
            } else {
                let x = (lp - c.old_logprobs[idx]).exp();
                let (l, dl_dx, is_clipped) = surrogate(x, adv[i]);
                clipped += usize::from(is_clipped);
                (l, dl_dx * x)
            };
            loss += scale * l;
            grad[idx] = scale * g;
        }
    }
    NaiveOut { advantages: adv, loss, grad, clipped }
}

/// §4's advantage column.
fn advantage_mode(o: Objective) -> AdvantageMode {
    match o {
        Objective::Grpo | Objective::Dapo | Objective::Gspo => AdvantageMode::Normalized,
        Objective::Raft | Objective::RaftPlusPlus => AdvantageMode::Raw,
        Objective::DrGrpo | Objective::DrDapo | Objective::DrDapoSeq | Objective::Wapo => AdvantageMode::Centered,
    }
}

/// §5's "default for" column.
fn default_level(o: Objective) -> Aggregation {
    match o {
        Objective::Dapo | Objective::DrDapo | Objective::Wapo => Aggregation::Group,
        Objective::DrGrpo => Aggregation::Global,
        Objective::Grpo | Objective::Gspo | Objective::DrDapoSeq | Objective::Raft | Objective::RaftPlusPlus => {
            Aggregation::Seq
        }
    }
}

/// §4's lo and hi columns (raft has no ratio to clip).
fn clip_bounds(cfg: &ObjectiveConfig) -> (f64, f64) {
    let eps = cfg.clip_eps.unwrap_or(0.2);
    match cfg.objective {
        Objective::Grpo | Objective::DrGrpo | Objective::Gspo => (1.0 - eps, 1.0 + eps),
        Objective::Dapo | Objective::DrDapo | Objective::DrDapoSeq => (cfg.clip_low, cfg.clip_high),
        Objective::RaftPlusPlus | Objective::Wapo => (f64::NEG_INFINITY, 1.0 + eps),
        Objective::Raft => (f64::NEG_INFINITY, f64::INFINITY),
    }
}

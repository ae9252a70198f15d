//! The cases the suite runs: random logits batches near the behaviour
//! policy, hand-built batches, the option grid, and the special values every
//! elementwise primitive must handle.

use wapo_core::case::{Case, CaseInput};
use wapo_core::logits::row_stats;
use wapo_core::{Aggregation, BinSpec, Objective, ObjectiveConfig};

use crate::random::{Rng, logits_case};

/// A logits-level case with behaviour log-probs 0.25 (in log space) from the
/// current ones, so that ratios fall on both sides of every clip bound.
pub fn near_policy_case(seed: u64, objective: Objective, v: Option<usize>, masked: bool) -> Case {
    let mut case = logits_case(seed, objective, v, masked);
    let mut rng = Rng::new(seed ^ 0x5eed);
    if let CaseInput::Logits { logits, tokens, vocab } = &case.input {
        let tau = case.config.temperature;
        for (row, old) in case.old_logprobs.iter_mut().enumerate() {
            let st = row_stats(&logits[row * vocab..(row + 1) * vocab], tokens[row] as usize, tau);
            if st.logp.is_finite() {
                *old = st.logp + rng.range(-0.25, 0.25);
            }
        }
    }
    case.config.mask_positive_advantages = rng.coin(0.1);
    case
}

/// Which options a list of configurations exercised, so a body can assert
/// that none of them went untested.
#[derive(Default)]
pub struct Coverage {
    aggregation: [bool; 3],
    kept_tokens: bool,
    include_bins: bool,
    exclude_bins: bool,
    no_importance_sampling: bool,
    temperature: bool,
    positive_masked: bool,
}

impl Coverage {
    pub fn note(&mut self, c: &ObjectiveConfig) {
        if let Some(a) = c.aggregation {
            self.aggregation[a as usize] = true;
        }
        self.kept_tokens |= c.normalize_by_kept_tokens;
        self.include_bins |= !c.include_bins.is_empty();
        self.exclude_bins |= !c.exclude_bins.is_empty();
        self.no_importance_sampling |= !c.importance_sampling;
        self.temperature |= c.temperature != 1.0;
        self.positive_masked |= c.mask_positive_advantages;
    }
    pub fn assert_complete(&self, what: &str, logits_level: bool) {
        assert!(self.aggregation.iter().all(|a| *a), "{what}: an aggregation override untested");
        assert!(self.kept_tokens, "{what}: normalize_by_kept_tokens untested");
        assert!(self.include_bins && self.exclude_bins, "{what}: bins untested");
        assert!(self.no_importance_sampling, "{what}: importance_sampling = false untested");
        if logits_level {
            assert!(self.temperature, "{what}: temperature untested");
            assert!(self.positive_masked, "{what}: mask_positive_advantages untested");
        }
    }
}

/// A hand-built logits case; `old` is the current log-probs shifted by ±0.1.
pub struct Built {
    pub config: ObjectiveConfig,
    pub group_ids: Vec<i64>,
    pub rewards: Vec<f64>,
    pub t: usize,
    pub v: usize,
    pub logits: Vec<f64>,
    pub tokens: Vec<f64>,
    pub mask: Vec<f64>,
}

impl Built {
    pub fn case(self) -> Case {
        let n = self.group_ids.len();
        let old = (0..n * self.t)
            .map(|row| {
                let z = &self.logits[row * self.v..(row + 1) * self.v];
                let lp = row_stats(z, self.tokens[row] as usize, self.config.temperature).logp;
                if lp.is_finite() { lp + if row % 2 == 0 { 0.1 } else { -0.1 } } else { -1.0 }
            })
            .collect();
        Case {
            name: None,
            config: self.config,
            n,
            t: self.t,
            group_ids: self.group_ids,
            rewards: self.rewards,
            mask: self.mask,
            old_logprobs: old,
            input: CaseInput::Logits { logits: self.logits, tokens: self.tokens, vocab: self.v },
            expected: None,
        }
    }
}

/// The layout of a [`random_batch`]: `groups` × `group_size` sequences of
/// `t` tokens over a vocabulary of `v`.
pub struct BatchShape {
    pub groups: usize,
    pub group_size: usize,
    pub t: usize,
    pub v: usize,
}

/// A logits case under `config`: logits of scale `scale` with a share
/// `masked_vocab` of −inf entries (never the sampled token), behaviour
/// log-probs near the current ones (ratios on both sides of the clip
/// range), binary rewards, and a mask whose first token is always real.
pub fn random_batch(rng: &mut Rng, s: &BatchShape, scale: f64, masked_vocab: f64, config: ObjectiveConfig) -> Case {
    let n = s.groups * s.group_size;
    let (t, v) = (s.t, s.v);
    let group_ids = (0..n).map(|i| (i % s.groups) as i64 * 7 + 3).collect();
    let rewards = (0..n).map(|_| if rng.coin(0.5) { 1.0 } else { 0.0 }).collect();
    let mask: Vec<f64> = (0..n * t).map(|k| if k % t == 0 || rng.coin(0.75) { 1.0 } else { 0.0 }).collect();
    let tokens: Vec<f64> = (0..n * t).map(|_| rng.below(v) as f64).collect();
    let mut logits = vec![0.0; n * t * v];
    for (row, z) in logits.chunks_mut(v).enumerate() {
        let y = tokens[row] as usize;
        for (j, x) in z.iter_mut().enumerate() {
            *x = if j != y && rng.coin(masked_vocab) { f64::NEG_INFINITY } else { scale * rng.normal() };
        }
    }
    let old = (0..n * t)
        .map(|row| row_stats(&logits[row * v..(row + 1) * v], tokens[row] as usize, config.temperature).logp)
        .map(|lp| lp + 0.25 * rng.normal())
        .collect();
    Case {
        name: None,
        config,
        n,
        t,
        group_ids,
        rewards,
        mask,
        old_logprobs: old,
        input: CaseInput::Logits { logits, tokens, vocab: v },
        expected: None,
    }
}

/// Every objective at its defaults, and every option on top of each.
pub fn option_grid(t_len: usize) -> Vec<(String, ObjectiveConfig)> {
    let mut out = Vec::new();
    for obj in Objective::ALL {
        let base = ObjectiveConfig::new(obj, t_len + 2);
        out.push((obj.name().to_string(), base.clone()));
        for agg in [Aggregation::Seq, Aggregation::Group, Aggregation::Global] {
            let mut c = base.clone();
            c.aggregation = Some(agg);
            c.normalize_by_kept_tokens = true;
            out.push((format!("{obj} {agg:?} kept-token weights"), c));
        }
        let mut c = base.clone();
        c.include_bins = BinSpec::parse("pos").unwrap_or_default();
        c.exclude_bins = BinSpec::NEG_VALLEY;
        out.push((format!("{obj} bins"), c));
        let mut c = base.clone();
        c.exclude_bins = BinSpec::parse("valley").unwrap_or_default();
        c.temperature = 0.7;
        out.push((format!("{obj} τ=0.7 no valleys"), c));
        let mut c = base.clone();
        c.mask_positive_advantages = true;
        out.push((format!("{obj} mask_positive_advantages"), c));
    }
    let mut c = ObjectiveConfig::new(Objective::Wapo, 5);
    c.importance_sampling = false;
    out.push(("wapo REINFORCE".into(), c));
    let mut c = ObjectiveConfig::new(Objective::Dapo, 5);
    c.clip_low = 0.9;
    c.clip_high = 1.1;
    c.temperature = 1.5;
    out.push(("dapo tight clip τ=1.5".into(), c));
    out
}

/// Values every elementwise op must treat exactly as the host does: zero,
/// ±inf, NaN, a few fixed numbers, and normal draws of scale 3.
pub fn special_values(rng: &mut Rng, n: usize) -> Vec<f64> {
    (0..n)
        .map(|k| match k % 11 {
            0 => 0.0,
            1 => f64::NEG_INFINITY,
            2 => f64::INFINITY,
            3 => f64::NAN,
            4 => -2.5,
            5 => 1.0,
            6 => 3.0,
            _ => 3.0 * rng.normal(),
        })
        .collect()
}

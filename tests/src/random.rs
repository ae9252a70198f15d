//! Random cases for property tests, from a seed (SplitMix64), covering every
//! objective and option at token and logits level.

use wapo_core::case::{Case, CaseInput};
use wapo_core::objective::{Aggregation, BinSpec, Objective, ObjectiveConfig};

use crate::naive::NaiveCase;

/// SplitMix64: small, seedable, good enough for test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }
    /// Uniform integer in [0, n).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    pub fn coin(&mut self, p: f64) -> bool {
        self.uniform() < p
    }
    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }
    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform().max(1e-12), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

/// A random configuration of `objective` with random options.
pub fn random_config(rng: &mut Rng, objective: Objective, t: usize) -> ObjectiveConfig {
    let mut c = ObjectiveConfig::new(objective, t + rng.below(4));
    c.clip_eps = if objective.needs_clip_eps() { Some(rng.pick(&[0.1, 0.2, 0.28, 1.0])) } else { None };
    c.clip_low = rng.pick(&[0.5, 0.8]);
    c.clip_high = rng.pick(&[1.2, 1.28, 2.0]);
    c.importance_sampling = objective != Objective::Wapo || rng.coin(0.7);
    if rng.coin(0.3) {
        c.aggregation = Some(rng.pick(&[Aggregation::Seq, Aggregation::Group, Aggregation::Global]));
    }
    c.normalize_by_kept_tokens = rng.coin(0.3);
    let specs = ["pos_peak", "pos_valley", "neg_peak", "neg_valley", "peak", "valley", "pos", "neg"];
    if rng.coin(0.25) {
        c.include_bins = BinSpec::parse(rng.pick(&specs)).unwrap_or_default();
    } else if rng.coin(0.2) {
        c.exclude_bins = BinSpec::parse(rng.pick(&specs)).unwrap_or_default();
    }
    c.temperature = rng.pick(&[1.0, 0.7, 1.5]);
    c
}

/// Shape and group layout: B groups of G in shuffled order, T tokens.
fn layout(rng: &mut Rng) -> (usize, usize, Vec<i64>) {
    let (b, g) = (1 + rng.below(4), 1 + rng.below(4));
    let n = b * g;
    let mut ids: Vec<i64> = (0..n).map(|i| 10 * (i / g) as i64 + 3).collect();
    for i in (1..n).rev() {
        ids.swap(i, rng.below(i + 1));
    }
    (n, 1 + rng.below(6), ids)
}

fn rewards(rng: &mut Rng, n: usize) -> Vec<f64> {
    if rng.coin(0.5) {
        (0..n).map(|_| if rng.coin(0.5) { 1.0 } else { 0.0 }).collect()
    } else {
        (0..n).map(|_| rng.range(-1.5, 1.5)).collect()
    }
}

fn mask(rng: &mut Rng, n: usize, t: usize) -> Vec<f64> {
    let mut m = vec![0.0; n * t];
    for i in 0..n {
        let len = rng.below(t + 1);
        for tt in 0..len {
            m[i * t + tt] = 1.0;
        }
    }
    m
}

/// A token-level case (with Σp² half of the time).
pub fn token_case(seed: u64, objective: Objective) -> (ObjectiveConfig, NaiveCase) {
    let mut rng = Rng::new(seed);
    let (n, t, group_ids) = layout(&mut rng);
    let cfg = random_config(&mut rng, objective, t);
    let old: Vec<f64> = (0..n * t).map(|_| rng.range(-4.0, -0.05)).collect();
    let logprobs: Vec<f64> = old.iter().map(|o| (o + rng.range(-0.6, 0.6)).min(-1e-3)).collect();
    let sum_p_sq = rng.coin(0.5).then(|| (0..n * t).map(|_| rng.range(0.05, 0.9)).collect());
    let case = NaiveCase {
        n,
        t,
        group_ids,
        rewards: rewards(&mut rng, n),
        mask: mask(&mut rng, n, t),
        logprobs,
        old_logprobs: old,
        sum_p_sq,
    };
    (cfg, case)
}

/// The token-level case as a core [`Case`].
pub fn to_case(cfg: &ObjectiveConfig, c: &NaiveCase) -> Case {
    Case {
        name: None,
        config: cfg.clone(),
        n: c.n,
        t: c.t,
        group_ids: c.group_ids.clone(),
        rewards: c.rewards.clone(),
        mask: c.mask.clone(),
        old_logprobs: c.old_logprobs.clone(),
        input: CaseInput::Tokens { logprobs: c.logprobs.clone(), sum_p_sq: c.sum_p_sq.clone() },
        expected: None,
    }
}

/// A logits-level case with vocabulary `v` (random when `None`); some
/// unsampled entries are −inf (masked vocabulary) when `masked_vocab`.
pub fn logits_case(seed: u64, objective: Objective, v: Option<usize>, masked_vocab: bool) -> Case {
    let mut rng = Rng::new(seed);
    let (n, t, group_ids) = layout(&mut rng);
    let cfg = random_config(&mut rng, objective, t);
    let v = v.unwrap_or_else(|| 1 + rng.below(12));
    let mut logits: Vec<f64> = (0..n * t * v).map(|_| rng.range(-3.0, 3.0)).collect();
    let tokens: Vec<f64> = (0..n * t).map(|_| rng.below(v) as f64).collect();
    if masked_vocab {
        for (row, y) in tokens.iter().enumerate() {
            for k in 0..v {
                if k != *y as usize && rng.coin(0.3) {
                    logits[row * v + k] = f64::NEG_INFINITY;
                }
            }
        }
    }
    let old: Vec<f64> = (0..n * t).map(|_| rng.range(-3.0, -0.05)).collect();
    Case {
        name: None,
        config: cfg,
        n,
        t,
        group_ids,
        rewards: rewards(&mut rng, n),
        mask: mask(&mut rng, n, t),
        old_logprobs: old,
        input: CaseInput::Logits { logits, tokens, vocab: v },
        expected: None,
    }
}

//! The one definition of how a row of logits becomes the distribution a
//! token is drawn from: softmax(z/τ), truncated to the top-k most likely
//! tokens, then to the smallest most-likely prefix whose mass reaches top-p,
//! then renormalized. The sampler draws from it and the trainer scores the
//! drawn tokens under it, so that the importance ratio of the first update
//! is 1 (a trainer that scores under the full softmax, or at another τ,
//! biases every ratio from the start).
//!
//! [`Sampling`] holds the rollouts' options (top-k, top-p, stop tokens);
//! [`Processing`] is what of them, with τ, shapes the distribution.
//!
//! Everything is f64 from the row's values, whatever their type, so that two
//! callers holding the same logits agree on the kept set bit for bit.

use alloc::vec::Vec;
use core::cmp::Ordering;

use crate::error::{Error, Result};
use crate::logits::RowStats;

/// What the trainer reports as ℓ of a scored token that lies outside the
/// current kept set (possible after an update moved the logits): a finite
/// floor instead of −∞, so that nothing downstream turns NaN and training
/// goes on. Any sampled token has ℓ° ≥ −760 (its weight exp(z/τ − max) is
/// a positive f64), so the ratio exp(ℓ − ℓ°) ≤ exp(−9240) is exactly 0 in
/// f32 and f64: the token adds 0 to a ratio objective's loss and gradient.
/// Its ∂ℓ/∂z is 0 (ℓ is constant while the token stays out), so it moves
/// no parameter under any objective; an objective on ℓ itself (raft, no
/// importance sampling) sees a large finite loss term for it.
pub const OUTSIDE_LOGP: f64 = -1.0e4;

/// How tokens are drawn beyond the temperature, and when a row stops.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sampling {
    /// Keep the k most likely tokens (0: all).
    pub top_k: usize,
    /// Keep the smallest set of most likely tokens whose mass reaches p (0 or 1: all).
    pub top_p: f64,
    /// Token ids that end a row.
    pub stop: Vec<u32>,
}

impl Sampling {
    /// Whether top-k or top-p changes the distribution for a vocabulary of `v`.
    pub fn truncates(&self, v: usize) -> bool {
        Processing::of(1.0, self).truncates(v)
    }

    pub fn validate(&self) -> Result<()> {
        Processing::of(1.0, self).validate()
    }
}

/// How the trainer and the sampler process a row of logits: temperature,
/// then top-k / top-p truncation. Copy, so that it travels with every
/// [`super::Policy::forward_stats`] call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Processing {
    /// τ > 0: the logits are divided by it.
    pub temperature: f64,
    /// Keep the k most likely tokens (0: all).
    pub top_k: usize,
    /// Keep the smallest set of most likely tokens whose mass reaches p (0 or 1: all).
    pub top_p: f64,
}

impl Processing {
    /// softmax(z/τ), untruncated.
    pub const fn temperature(temperature: f64) -> Self {
        Processing { temperature, top_k: 0, top_p: 1.0 }
    }

    /// The processing of rollouts drawn at `temperature` with `sampling`'s
    /// top-k / top-p (its stop tokens play no part here).
    pub fn of(temperature: f64, sampling: &Sampling) -> Self {
        Processing { temperature, top_k: sampling.top_k, top_p: sampling.top_p }
    }

    /// Whether top-k or top-p changes the distribution for a vocabulary of `v`.
    pub fn truncates(&self, v: usize) -> bool {
        self.top_k > 0 && self.top_k < v || self.top_p_active()
    }

    fn top_p_active(&self) -> bool {
        self.top_p > 0.0 && self.top_p < 1.0
    }

    pub fn validate(&self) -> Result<()> {
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(Error::Config { field: "temperature", reason: "must be a finite number > 0" });
        }
        if !(self.top_p.is_finite() && (0.0..=1.0).contains(&self.top_p)) {
            return Err(Error::Config { field: "rollout.top_p", reason: "must be in [0, 1] (0 or 1: off)" });
        }
        Ok(())
    }
}

/// One kept token: its id, d = z/τ − max and its weight e = exp(d).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Kept {
    pub id: u32,
    pub d: f64,
    pub e: f64,
}

/// The kept set of one row and its normalizer.
#[derive(Clone, Debug, PartialEq)]
pub struct Truncated {
    /// The kept tokens in increasing id order.
    pub kept: Vec<Kept>,
    /// Σ e over the kept set, summed in id order.
    pub sum: f64,
    /// max z/τ over the row (the shift of every d).
    pub max: f64,
}

/// Most likely first; equal weights by id, so that the kept set is a
/// function of the row alone.
fn by_weight(a: &Kept, b: &Kept) -> Ordering {
    b.e.total_cmp(&a.e).then(a.id.cmp(&b.id))
}

/// Length of the shortest heaviest prefix of `kept` whose weight reaches
/// `target` (all of it if none does), leaving that prefix sorted by weight
/// at the front. A language model's mass sits in a few tokens, so the
/// prefix is searched among the m heaviest for growing m rather than by
/// sorting a whole vocabulary: each round sorts exactly the sorted order's
/// first m, and sums them in that order, so the answer is the full sort's.
fn heaviest_prefix(kept: &mut [Kept], target: f64) -> usize {
    let n = kept.len();
    let mut m = n.min(64);
    loop {
        if m < n {
            kept.select_nth_unstable_by(m - 1, by_weight);
        }
        kept[..m].sort_unstable_by(by_weight);
        let mut acc = 0.0;
        for (j, x) in kept[..m].iter().enumerate() {
            acc += x.e;
            if acc >= target {
                return j + 1;
            }
        }
        if m == n {
            return n;
        }
        m = n.min(m * 8);
    }
}

impl Truncated {
    /// The kept set of `row` under `p`: tokens with weight e = exp(z/τ −
    /// max) > 0, the `top_k` heaviest (0: all), then the shortest heaviest
    /// prefix whose weight reaches `top_p` of theirs. `None` when the row
    /// has a NaN or an infinite maximum: no distribution to truncate.
    pub fn new<Z: Copy + Into<f64>>(row: &[Z], p: Processing) -> Option<Self> {
        let tau = p.temperature;
        let mut max = f64::NEG_INFINITY;
        for &z in row {
            let x: f64 = z.into();
            if x.is_nan() {
                return None;
            }
            max = max.max(x / tau);
        }
        if !max.is_finite() {
            return None;
        }
        let mut kept: Vec<Kept> = row
            .iter()
            .enumerate()
            .filter_map(|(k, &z)| {
                let d = z.into() / tau - max;
                let e = libm::exp(d);
                (e > 0.0).then_some(Kept { id: k as u32, d, e })
            })
            .collect();
        let top_k = p.top_k > 0 && p.top_k < kept.len();
        if top_k {
            // The k heaviest without sorting the whole row; the order is
            // total (ids are distinct), so this is the sorted prefix.
            kept.select_nth_unstable_by(p.top_k - 1, by_weight);
            kept.truncate(p.top_k);
        }
        if p.top_p_active() {
            // The mass in a fixed order: by weight within the top k (sorted
            // anyway), else by id as built.
            if top_k {
                kept.sort_unstable_by(by_weight);
            }
            let total: f64 = kept.iter().map(|x| x.e).sum();
            let keep = heaviest_prefix(&mut kept, p.top_p * total);
            kept.truncate(keep);
        }
        kept.sort_unstable_by_key(|x| x.id);
        let sum = kept.iter().map(|x| x.e).sum();
        Some(Truncated { kept, sum, max })
    }

    fn find(&self, y: usize) -> Option<&Kept> {
        let y = u32::try_from(y).ok()?;
        self.kept.binary_search_by_key(&y, |x| x.id).ok().map(|j| &self.kept[j])
    }

    /// Whether token `y` is kept.
    pub fn contains(&self, y: usize) -> bool {
        self.find(y).is_some()
    }

    /// ℓ of token `y` under the renormalized distribution; −∞ outside the kept set.
    pub fn logp(&self, y: usize) -> f64 {
        self.find(y).map_or(f64::NEG_INFINITY, |x| x.d - libm::log(self.sum))
    }

    /// The token drawn by inverse CDF with `u` ∈ [0, 1): the first kept
    /// token (in id order) whose running weight exceeds u·Σe.
    pub fn draw(&self, u: f64) -> usize {
        let target = u * self.sum;
        let mut acc = 0.0;
        for x in &self.kept {
            acc += x.e;
            if target < acc {
                return x.id as usize;
            }
        }
        // Rounding can leave the target just above the sum: the last kept token.
        self.kept.last().map_or(0, |x| x.id as usize)
    }

    /// The trainer's statistics of token `y` under the renormalized
    /// distribution p̃: ℓ (floored at [`OUTSIDE_LOGP`] outside the kept
    /// set), H, Σp̃², Σp̃² log p̃, and lse = max + log Σe.
    pub fn stats(&self, y: usize) -> RowStats {
        let log_s = libm::log(self.sum);
        let (mut s1, mut s2, mut s3) = (0.0, 0.0, 0.0);
        for x in &self.kept {
            s1 += x.e * x.d;
            s2 += x.e * x.e;
            s3 += x.e * x.e * x.d;
        }
        let s_sq = self.sum * self.sum;
        let logp = self.logp(y);
        RowStats {
            lse: self.max + log_s,
            logp: if logp == f64::NEG_INFINITY { OUTSIDE_LOGP } else { logp },
            entropy: log_s - s1 / self.sum,
            sum_p_sq: s2 / s_sq,
            sum_p_sq_logp: (s3 - log_s * s2) / s_sq,
        }
    }

    /// The nonzero entries (v, c·∂ℓ_y/∂z_v·τ) = (v, c·(1[v = y] − p̃_v)) for
    /// kept v; none when y is outside the kept set (ℓ does not move with z
    /// there). The kept set is a selection: no gradient flows through it.
    pub fn grad(&self, y: usize, c: f64) -> impl Iterator<Item = (usize, f64)> + '_ {
        let inside = self.contains(y);
        let kept = if inside { &self.kept[..] } else { &[] };
        kept.iter().map(move |x| {
            let onehot = f64::from(u8::from(x.id as usize == y));
            (x.id as usize, c * (onehot - x.e / self.sum))
        })
    }
}

/// The trainer's statistics of token `y` of `row` under `p` when `p`
/// truncates: [`Truncated::stats`], or NaN throughout for a row with no
/// distribution (a NaN or an infinite maximum), which the step's
/// non-finite checks then catch.
pub fn truncated_stats<Z: Copy + Into<f64>>(row: &[Z], y: usize, p: Processing) -> RowStats {
    match Truncated::new(row, p) {
        Some(t) => t.stats(y),
        None => {
            let n = f64::NAN;
            RowStats { lse: n, logp: n, entropy: n, sum_p_sq: n, sum_p_sq_logp: n }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(k: usize, p: f64) -> Processing {
        Processing { temperature: 1.0, top_k: k, top_p: p }
    }

    #[test]
    fn kept_sets_worked_by_hand() {
        // exp weights 1, e^-1, e^-2, e^-3 (ids 2, 0, 3, 1); masses
        // 0.644, 0.237, 0.087, 0.032.
        let z = [2.0f64, 0.0, 3.0, 1.0];
        let ids = |t: Truncated| t.kept.iter().map(|x| x.id).collect::<Vec<_>>();
        assert_eq!(ids(Truncated::new(&z, cut(2, 1.0)).unwrap()), [0, 2]);
        assert_eq!(ids(Truncated::new(&z, cut(0, 0.6)).unwrap()), [2]);
        assert_eq!(ids(Truncated::new(&z, cut(0, 0.7)).unwrap()), [0, 2]);
        assert_eq!(ids(Truncated::new(&z, cut(0, 0.9)).unwrap()), [0, 2, 3]);
        // top-p of the top-2's own mass: 0.731 of it is token 2 alone.
        assert_eq!(ids(Truncated::new(&z, cut(2, 0.7)).unwrap()), [2]);
        assert_eq!(ids(Truncated::new(&z, cut(2, 0.8)).unwrap()), [0, 2]);
        assert_eq!(ids(Truncated::new(&z, cut(9, 1.0)).unwrap()), [0, 1, 2, 3]);
    }

    #[test]
    fn ties_are_broken_by_id() {
        let z = [1.0f32, 5.0, 5.0, 5.0, 0.0];
        let t = Truncated::new(&z, cut(2, 1.0)).unwrap();
        assert_eq!(t.kept.iter().map(|x| x.id).collect::<Vec<_>>(), [1, 2]);
        assert!((t.logp(1) - 0.5f64.ln()).abs() < 1e-15);
        assert_eq!(t.logp(3), f64::NEG_INFINITY);
    }

    #[test]
    fn renormalized_statistics_by_hand() {
        // τ = 2: the kept pair {1, 2} has weights e^0, e^-1 (z/τ = 3, 2).
        let p = Processing { temperature: 2.0, top_k: 2, top_p: 1.0 };
        let t = Truncated::new(&[0.0f64, 6.0, 4.0], p).unwrap();
        let (a, b) = (1.0 / (1.0 + (-1.0f64).exp()), (-1.0f64).exp() / (1.0 + (-1.0f64).exp()));
        let s = t.stats(2);
        assert!((s.logp - b.ln()).abs() < 1e-14);
        assert!((s.entropy + a * a.ln() + b * b.ln()).abs() < 1e-14);
        assert!((s.sum_p_sq - (a * a + b * b)).abs() < 1e-14);
        assert!((s.sum_p_sq_logp - (a * a * a.ln() + b * b * b.ln())).abs() < 1e-14);
        assert_eq!(t.stats(0).logp, OUTSIDE_LOGP);
        let g: Vec<_> = t.grad(2, 1.0).collect();
        assert_eq!(g.len(), 2);
        assert!((g[0].1 + a).abs() < 1e-15 && (g[1].1 - (1.0 - b)).abs() < 1e-15);
        assert_eq!(t.grad(0, 1.0).count(), 0);
    }

    #[test]
    fn draws_walk_the_kept_set_in_id_order() {
        let t = Truncated::new(&[0.0f64, 0.0, 0.0, -50.0], cut(3, 1.0)).unwrap();
        assert_eq!([t.draw(0.0), t.draw(0.34), t.draw(0.67), t.draw(0.999_999)], [0, 1, 2, 2]);
    }

    /// The prefix found among the m heaviest for growing m is the one a
    /// full sort finds, on a long row whose top-p set needs several rounds.
    #[test]
    fn top_p_on_a_long_row_is_the_full_sorts() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let row: Vec<f32> = (0..5000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % 1000) as f32 / 250.0
            })
            .collect();
        for (k, top_p) in [(0, 0.1), (0, 0.5), (0, 0.97), (700, 0.9), (30, 0.3)] {
            let t = Truncated::new(&row, cut(k, top_p)).unwrap();
            let mut all: Vec<(u32, f64)> =
                row.iter().enumerate().map(|(i, &z)| (i as u32, libm::exp(z as f64 - 3.996))).collect();
            all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            if k > 0 {
                all.truncate(k);
            }
            let total: f64 = all.iter().map(|x| x.1).sum();
            let mut acc = 0.0;
            let n = all.iter().position(|x| {
                acc += x.1;
                acc >= top_p * total
            });
            let mut want: Vec<u32> = all[..n.unwrap() + 1].iter().map(|x| x.0).collect();
            want.sort();
            assert!(k == 30 || want.len() > 64, "k {k}, p {top_p}: only {} kept, one round", want.len());
            assert_eq!(t.kept.iter().map(|x| x.id).collect::<Vec<_>>(), want, "k {k}, p {top_p}");
        }
    }

    #[test]
    fn rows_without_a_distribution() {
        assert!(Truncated::new(&[0.0f64, f64::NAN], cut(1, 1.0)).is_none());
        assert!(Truncated::new(&[0.0f64, f64::INFINITY], cut(1, 1.0)).is_none());
        assert!(Truncated::new(&[f64::NEG_INFINITY; 3], cut(1, 1.0)).is_none());
        assert!(truncated_stats(&[f32::NAN], 0, cut(1, 1.0)).logp.is_nan());
        // −inf entries are simply never kept.
        let t = Truncated::new(&[f64::NEG_INFINITY, 1.0], cut(0, 0.5)).unwrap();
        assert_eq!(t.kept.len(), 1);
    }
}

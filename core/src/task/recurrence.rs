//! The WAPO authors' toy task: read a start digit x₀ from a noisy bitmap,
//! then write x₀, x₁, …, xₙ with xᵢ₊₁ = (a·xᵢ + b) mod p.
//!
//! The prompt is a 14×14 image of x₀ (196 tokens, pixel intensities
//! quantized to the ten levels 0..9, which are also the digit tokens). The
//! glyph is drawn at a random size and position, sometimes thickened, with a
//! random stroke intensity, Gaussian pixel noise and random pixel flips, so
//! reading the digit takes real work: a warm start on gold completions gets
//! part of the way and leaves room for RL. Once x₀ is read, the rest of the
//! completion follows from the recurrence alone.

use alloc::string::String;
use alloc::vec::Vec;

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use super::split::{draw, match_reward};
use super::{Example, Split, Task};
use crate::error::{Error, Result};

/// Side of the square prompt image.
pub const SIDE: usize = 14;
/// Number of intensity levels (tokens 0..LEVELS).
pub const LEVELS: u32 = 10;

const GLYPH_W: usize = 5;
const GLYPH_H: usize = 7;

/// A 5×7 font, one row per byte, most significant of the low 5 bits left.
const FONT: [[u8; GLYPH_H]; 10] = [
    [0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e],
    [0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e],
    [0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f],
    [0x1f, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0e],
    [0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02],
    [0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e],
    [0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e],
    [0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
    [0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e],
    [0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c],
];

/// Smallest and largest drawn glyph width and height, in pixels.
pub const WIDTHS: core::ops::RangeInclusive<usize> = 5..=8;
pub const HEIGHTS: core::ops::RangeInclusive<usize> = 7..=12;

#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct RecurrenceConfig {
    /// Modulus p (2..=64); the start digit is drawn from 0..min(p, 10).
    pub p: u32,
    /// Number of recurrence steps n; the completion is x₀..xₙ (n + 1 tokens).
    pub n: usize,
    pub a: u32,
    pub b: u32,
    /// Standard deviation of the Gaussian pixel noise (intensities in [0, 1]).
    pub noise: f64,
    /// Probability that a pixel is replaced by a uniform random intensity.
    pub flip_prob: f64,
    /// Reward the fraction of correct tokens instead of exact match.
    pub partial_credit: bool,
}

impl Default for RecurrenceConfig {
    fn default() -> Self {
        RecurrenceConfig { p: 10, n: 6, a: 3, b: 1, noise: 0.3, flip_prob: 0.04, partial_credit: false }
    }
}

impl RecurrenceConfig {
    pub fn validate(&self) -> Result<()> {
        let bad = |field, reason| Err(Error::Config { field, reason });
        if !(2..=64).contains(&self.p) {
            return bad("recurrence.p", "must be in 2..=64");
        }
        if self.n == 0 || self.n > 256 {
            return bad("recurrence.n", "must be in 1..=256");
        }
        if !self.noise.is_finite() || !(0.0..=2.0).contains(&self.noise) {
            return bad("recurrence.noise", "must be a finite number in [0, 2]");
        }
        if !self.flip_prob.is_finite() || !(0.0..=1.0).contains(&self.flip_prob) {
            return bad("recurrence.flip_prob", "must be in [0, 1]");
        }
        Ok(())
    }
}

/// The recurrence task; see the module docs.
#[derive(Clone, Debug)]
pub struct Recurrence {
    cfg: RecurrenceConfig,
    seed: u64,
}

impl Recurrence {
    pub fn new(cfg: RecurrenceConfig, seed: u64) -> Result<Self> {
        cfg.validate()?;
        Ok(Recurrence { cfg, seed })
    }

    pub fn config(&self) -> &RecurrenceConfig {
        &self.cfg
    }

    /// x₀ … xₙ from `x0`.
    pub fn sequence(&self, x0: u32) -> Vec<u32> {
        let (a, b, p) = (u64::from(self.cfg.a), u64::from(self.cfg.b), u64::from(self.cfg.p));
        let mut x = u64::from(x0);
        let mut out = Vec::with_capacity(self.cfg.n + 1);
        out.push(x0);
        for _ in 0..self.cfg.n {
            x = (a * x + b) % p;
            out.push(x as u32);
        }
        out
    }

    fn generate(&self, rng: &mut ChaCha8Rng) -> Example {
        let digit = rng.random_range(0..self.cfg.p.min(10));
        let pose = Pose::random(rng);
        let clean = render_clean(digit as usize, pose);
        let stroke = rng.random_range(0.55..1.0);
        let mut prompt = Vec::with_capacity(SIDE * SIDE);
        for &on in &clean {
            let mut v = if on { stroke } else { 0.0 } + self.cfg.noise * gaussian(rng);
            if rng.random_bool(self.cfg.flip_prob) {
                v = rng.random_range(0.0..1.0);
            }
            prompt.push(quantize(v));
        }
        Example { prompt, gold: self.sequence(digit) }
    }
}

/// Where and how large the glyph is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pose {
    pub width: usize,
    pub height: usize,
    pub row: usize,
    pub col: usize,
    /// Strokes widened by one pixel to the right.
    pub thick: bool,
}

impl Pose {
    fn random(rng: &mut ChaCha8Rng) -> Pose {
        let width = rng.random_range(WIDTHS);
        let height = rng.random_range(HEIGHTS);
        // A thickened stroke needs one spare column.
        let thick = width < SIDE && rng.random_bool(0.5);
        let spare_cols = SIDE - width - usize::from(thick);
        Pose { width, height, row: rng.random_range(0..=SIDE - height), col: rng.random_range(0..=spare_cols), thick }
    }
}

/// The noiseless 14×14 image of `digit` in `pose` (true = stroke).
pub fn render_clean(digit: usize, pose: Pose) -> [bool; SIDE * SIDE] {
    let mut img = [false; SIDE * SIDE];
    for r in 0..pose.height {
        let gr = r * GLYPH_H / pose.height;
        for c in 0..pose.width {
            let gc = c * GLYPH_W / pose.width;
            if FONT[digit][gr] >> (GLYPH_W - 1 - gc) & 1 == 1 {
                let (y, x) = (pose.row + r, pose.col + c);
                img[y * SIDE + x] = true;
                if pose.thick && x + 1 < SIDE {
                    img[y * SIDE + x + 1] = true;
                }
            }
        }
    }
    img
}

fn quantize(v: f64) -> u32 {
    let v = v.clamp(0.0, 1.0) * f64::from(LEVELS - 1);
    libm::round(v) as u32
}

/// A standard normal draw (Box–Muller).
fn gaussian(rng: &mut ChaCha8Rng) -> f64 {
    // 1 − u lies in (0, 1], so the logarithm is finite.
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random();
    libm::sqrt(-2.0 * libm::log(u1)) * libm::cos(2.0 * core::f64::consts::PI * u2)
}

impl Task for Recurrence {
    fn name(&self) -> &str {
        "recurrence"
    }
    fn vocab_size(&self) -> usize {
        (self.cfg.p.max(LEVELS)) as usize
    }
    fn prompt_len(&self) -> usize {
        SIDE * SIDE
    }
    fn completion_len(&self) -> usize {
        self.cfg.n + 1
    }
    fn example(&self, split: Split, index: u64) -> Example {
        draw(self.seed, split, index, |rng| self.generate(rng))
    }
    fn reward(&self, example: &Example, completion: &[u32]) -> f64 {
        match_reward(&example.gold, completion, self.cfg.partial_credit)
    }
    /// A prompt-length sequence renders as a 14-line picture, anything else
    /// as digits (base-36 letters above 9).
    fn render(&self, tokens: &[u32]) -> String {
        const SHADES: &[u8; 10] = b" .:-=+*#%@";
        let mut s = String::new();
        if tokens.len() == SIDE * SIDE {
            for (i, &t) in tokens.iter().enumerate() {
                if i > 0 && i % SIDE == 0 {
                    s.push('\n');
                }
                s.push(SHADES.get(t as usize).map_or('?', |&b| b as char));
            }
        } else {
            for &t in tokens {
                s.push(char::from_digit(t, 36).unwrap_or('?'));
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(seed: u64) -> Recurrence {
        Recurrence::new(RecurrenceConfig::default(), seed).unwrap()
    }

    #[test]
    fn shapes_match_the_paper_toy() {
        let t = task(0);
        assert_eq!((t.vocab_size(), t.prompt_len(), t.completion_len()), (10, 196, 7));
    }

    #[test]
    fn sequence_follows_the_recurrence() {
        // 3·4+1 = 13 → 3, 3·3+1 = 10 → 0, then 1, 4, 3, 0.
        assert_eq!(task(0).sequence(4), [4, 3, 0, 1, 4, 3, 0]);
    }

    #[test]
    fn gold_is_rewarded_and_wrong_is_not() {
        let t = task(3);
        for i in 0..20 {
            let ex = t.example(Split::Train, i);
            assert_eq!(ex.prompt.len(), 196);
            assert!(ex.prompt.iter().all(|&v| v < 10));
            assert_eq!(t.reward(&ex, &ex.gold), 1.0);
            let mut wrong = ex.gold.clone();
            wrong[0] = (wrong[0] + 1) % 10;
            assert_eq!(t.reward(&ex, &wrong), 0.0);
        }
    }

    #[test]
    fn render_draws_the_picture() {
        let t = task(0);
        let ex = t.example(Split::Train, 0);
        assert_eq!(t.render(&ex.prompt).lines().count(), SIDE);
        assert_eq!(t.render(&[4, 3, 0]), "430");
    }

    /// Zero-mean correlation of the image with every clean glyph in every
    /// pose; returns the digit of the best match.
    fn read_by_template(img: &[u32], poses: &[Pose]) -> usize {
        let mean = img.iter().sum::<u32>() as f64 / img.len() as f64;
        let mut best = (f64::NEG_INFINITY, 0);
        for digit in 0..10 {
            for &pose in poses {
                let tpl = render_clean(digit, pose);
                let on = tpl.iter().filter(|&&b| b).count() as f64;
                let score: f64 = img.iter().zip(&tpl).filter(|(_, b)| **b).map(|(&v, _)| v as f64 - mean).sum::<f64>()
                    / libm::sqrt(on);
                if score > best.0 {
                    best = (score, digit);
                }
            }
        }
        best.1
    }

    fn all_poses() -> Vec<Pose> {
        let mut poses = Vec::new();
        for width in WIDTHS {
            for height in HEIGHTS {
                for row in 0..=SIDE - height {
                    for col in 0..=SIDE - width {
                        poses.push(Pose { width, height, row, col, thick: false });
                    }
                }
            }
        }
        poses
    }

    #[test]
    fn digit_is_readable_by_search_but_not_trivially() {
        let t = task(11);
        let poses = all_poses();
        let centred = [Pose { width: 6, height: 10, row: 2, col: 4, thick: false }];
        let n = 60;
        let (mut search_hits, mut fixed_hits) = (0, 0);
        let mut background_noisy = 0usize;
        let mut background = 0usize;
        for i in 0..n {
            let ex = t.example(Split::Train, i);
            let digit = ex.gold[0] as usize;
            search_hits += usize::from(read_by_template(&ex.prompt, &poses) == digit);
            fixed_hits += usize::from(read_by_template(&ex.prompt, &centred) == digit);
            background += ex.prompt.len();
            background_noisy += ex.prompt.iter().filter(|&&v| v > 0).count();
        }
        let search = search_hits as f64 / n as f64;
        let fixed = fixed_hits as f64 / n as f64;
        assert!(search >= 0.7, "search matcher reads {search}");
        assert!(fixed <= 0.85, "a fixed template reads {fixed}: too easy");
        assert!(fixed < search);
        // Well over the glyph's own pixel share (≤ ~30%) is non-zero: noise.
        assert!(background_noisy * 10 > background * 4);
    }

    #[test]
    fn invalid_config_names_the_field() {
        let cfg = RecurrenceConfig { p: 1, ..Default::default() };
        match Recurrence::new(cfg, 0) {
            Err(Error::Config { field, .. }) => assert_eq!(field, "recurrence.p"),
            other => panic!("expected a config error, got {other:?}"),
        }
    }
}

//! `TrainState`: everything besides the weights and the optimizer moments
//! that a resumed run needs to repeat an uninterrupted one bit for bit.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};

use crate::error::{Error, Result};

/// The training RNG and step counters. The optimizer moments live in the
/// policy ([`crate::rl::Policy::optimizer_state`]); a checkpoint stores both.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainState {
    /// Draws prompt indices and sampling uniforms, in that order, each step.
    pub rng: ChaCha8Rng,
    pub seed: u64,
    pub sft_steps: u64,
    pub rl_steps: u64,
    /// Updates skipped so far because a loss, gradient or parameter was
    /// NaN or infinite (the weights stay as they were before the update).
    pub skipped_updates: u64,
    /// Of those, how many in a row up to the last step (0 after a good update).
    pub skipped_in_a_row: u64,
    /// What was non-finite in the last step, when its update was skipped.
    /// Not stored in checkpoints: it describes the step just taken.
    pub last_skip: Option<NonFinite>,
}

/// What turned NaN or infinite in a skipped update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NonFinite {
    /// The training forward's logits.
    Logits,
    /// The loss.
    Loss,
    /// The parameter gradient (its global norm).
    Gradient,
    /// The parameters after the optimizer step.
    Parameters,
}

impl NonFinite {
    pub fn name(self) -> &'static str {
        match self {
            NonFinite::Logits => "logits",
            NonFinite::Loss => "loss",
            NonFinite::Gradient => "gradient",
            NonFinite::Parameters => "parameters",
        }
    }
}

impl TrainState {
    pub fn new(seed: u64) -> Self {
        TrainState {
            rng: ChaCha8Rng::seed_from_u64(seed),
            seed,
            sft_steps: 0,
            rl_steps: 0,
            skipped_updates: 0,
            skipped_in_a_row: 0,
            last_skip: None,
        }
    }

    /// Records a step that made no update because its batch had no
    /// gradient (no winner, or every group's rewards equal): it is neither
    /// a skip nor evidence that updates are finite again, so the count of
    /// skips in a row stands.
    pub fn record_no_update(&mut self) {
        self.last_skip = None;
    }

    /// Records the outcome of one update: skipped because `what` was
    /// non-finite, or (`None`) applied.
    pub fn record_update(&mut self, skipped: Option<NonFinite>) {
        self.last_skip = skipped;
        if skipped.is_some() {
            self.skipped_updates += 1;
            self.skipped_in_a_row += 1;
        } else {
            self.skipped_in_a_row = 0;
        }
    }

    /// A uniform in [0, 1) with 24 random bits (exact in f32).
    pub fn uniform(&mut self) -> f32 {
        uniform(&mut self.rng)
    }

    /// `n` uniforms, e.g. the (N, T) sampling uniforms of a rollout.
    pub fn uniforms(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.uniform()).collect()
    }

    /// `n` example indices of the training split.
    pub fn indices(&mut self, n: usize) -> Vec<u64> {
        // The top bit is left clear so that indices stay valid as i64 too.
        (0..n).map(|_| self.rng.next_u64() >> 1).collect()
    }

    /// One line of `key=value` pairs (stored in checkpoint metadata).
    pub fn to_text(&self) -> String {
        let pos = self.rng.get_word_pos();
        let seed: String = self.rng.get_seed().iter().map(|b| format!("{b:02x}")).collect();
        let mut text = format!(
            "seed={} sft_steps={} rl_steps={} rng_key={} rng_stream={} rng_word_pos={}",
            self.seed,
            self.sft_steps,
            self.rl_steps,
            seed,
            self.rng.get_stream(),
            pos
        );
        // Written only when non-zero, so that a run without skips writes
        // the text it always did.
        if self.skipped_updates > 0 {
            text.push_str(&format!(
                " skipped_updates={} skipped_in_a_row={}",
                self.skipped_updates, self.skipped_in_a_row
            ));
        }
        text
    }

    /// Parses [`TrainState::to_text`].
    pub fn from_text(text: &str) -> Result<Self> {
        let bad = |reason| Error::Config { field: "train_state", reason };
        let get = |key: &str| -> Result<&str> {
            text.split_whitespace().find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')).ok_or(bad("missing key"))
        };
        let num = |key: &str| -> Result<u64> { get(key)?.parse().map_err(|_| bad("malformed number")) };
        let hex = get("rng_key")?;
        if hex.len() != 64 || !hex.is_ascii() {
            return Err(bad("rng_key must be 64 hex digits"));
        }
        let mut key = [0u8; 32];
        for (i, b) in key.iter_mut().enumerate() {
            *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad("rng_key must be 64 hex digits"))?;
        }
        let mut rng = ChaCha8Rng::from_seed(key);
        rng.set_stream(num("rng_stream")?);
        let pos: u128 = get("rng_word_pos")?.parse().map_err(|_| bad("malformed number"))?;
        rng.set_word_pos(pos);
        let optional = |key: &str| if get(key).is_ok() { num(key) } else { Ok(0) };
        Ok(TrainState {
            rng,
            seed: num("seed")?,
            sft_steps: num("sft_steps")?,
            rl_steps: num("rl_steps")?,
            skipped_updates: optional("skipped_updates")?,
            skipped_in_a_row: optional("skipped_in_a_row")?,
            last_skip: None,
        })
    }
}

/// A uniform in [0, 1) with 24 random bits.
pub fn uniform(rng: &mut ChaCha8Rng) -> f32 {
    (rng.next_u32() >> 8) as f32 * (1.0 / 16_777_216.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trip_continues_the_stream() {
        let mut a = TrainState::new(7);
        a.rl_steps = 3;
        let _ = a.uniforms(13); // leave the RNG mid-block
        let mut b = TrainState::from_text(&a.to_text()).unwrap();
        assert_eq!(b.rl_steps, 3);
        assert_eq!(a.uniforms(100), b.uniforms(100));
    }

    #[test]
    fn skip_counters_round_trip_and_older_text_reads_as_zero() {
        let mut a = TrainState::new(2);
        let plain = a.to_text();
        assert!(!plain.contains("skipped"));
        assert_eq!(TrainState::from_text(&plain).unwrap(), a);
        a.record_update(Some(NonFinite::Loss));
        a.record_update(None);
        a.record_update(Some(NonFinite::Gradient));
        a.record_update(Some(NonFinite::Parameters));
        assert_eq!((a.skipped_updates, a.skipped_in_a_row, a.last_skip), (3, 2, Some(NonFinite::Parameters)));
        let b = TrainState::from_text(&a.to_text()).unwrap();
        assert_eq!((b.skipped_updates, b.skipped_in_a_row, b.last_skip), (3, 2, None));
        let t = a.to_text().replace("skipped_in_a_row=2", "skipped_in_a_row=x");
        assert!(TrainState::from_text(&t).is_err());
    }

    #[test]
    fn a_step_without_gradient_keeps_the_skips_in_a_row() {
        let mut s = TrainState::new(0);
        s.record_update(Some(NonFinite::Gradient));
        s.record_no_update();
        assert_eq!((s.skipped_updates, s.skipped_in_a_row, s.last_skip), (1, 1, None));
        s.record_update(Some(NonFinite::Loss));
        assert_eq!((s.skipped_updates, s.skipped_in_a_row), (2, 2));
        s.record_update(None);
        assert_eq!((s.skipped_updates, s.skipped_in_a_row), (2, 0));
    }

    #[test]
    fn malformed_text_is_an_error() {
        assert!(TrainState::from_text("seed=1").is_err());
        let t = TrainState::new(1).to_text().replace("rl_steps=0", "rl_steps=x");
        assert!(TrainState::from_text(&t).is_err());
    }
}

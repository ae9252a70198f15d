//! Multi-digit addition: `a+b=` → the sum, zero-padded to `digits + 1`
//! digits, most significant first.

use alloc::string::String;
use alloc::vec::Vec;

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use super::split::{MIN_PROMPT_SPACE, draw, match_reward};
use super::{Example, Split, Task};
use crate::error::{Error, Result};

/// Token of `+`.
pub const PLUS: u32 = 10;
/// Token of `=`.
pub const EQUALS: u32 = 11;

#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct AddConfig {
    /// Digits per operand (2..=18), zero-padded.
    pub digits: usize,
    /// Reward the fraction of correct digits instead of exact match.
    pub partial_credit: bool,
}

impl Default for AddConfig {
    fn default() -> Self {
        AddConfig { digits: 3, partial_credit: false }
    }
}

impl AddConfig {
    pub fn validate(&self) -> Result<()> {
        // Two operands of d digits span 10^(2d) prompts; 18 digits keeps the
        // sum inside a u64.
        if !(2..=18).contains(&self.digits) || 100u64.pow(self.digits as u32) < MIN_PROMPT_SPACE {
            return Err(Error::Config { field: "add.digits", reason: "must be in 2..=18" });
        }
        Ok(())
    }
}

#[derive(Clone, Debug)]
pub struct Add {
    cfg: AddConfig,
    seed: u64,
}

impl Add {
    pub fn new(cfg: AddConfig, seed: u64) -> Result<Self> {
        cfg.validate()?;
        Ok(Add { cfg, seed })
    }

    fn generate(&self, rng: &mut ChaCha8Rng) -> Example {
        let d = self.cfg.digits;
        let limit = 10u64.pow(d as u32);
        let (a, b) = (rng.random_range(0..limit), rng.random_range(0..limit));
        let mut prompt = digits_of(a, d);
        prompt.push(PLUS);
        prompt.extend(digits_of(b, d));
        prompt.push(EQUALS);
        Example { prompt, gold: digits_of(a + b, d + 1) }
    }
}

/// The `width` low decimal digits of `x`, most significant first.
fn digits_of(mut x: u64, width: usize) -> Vec<u32> {
    let mut out = alloc::vec![0u32; width];
    for slot in out.iter_mut().rev() {
        *slot = (x % 10) as u32;
        x /= 10;
    }
    out
}

impl Task for Add {
    fn name(&self) -> &str {
        "add"
    }
    fn vocab_size(&self) -> usize {
        12
    }
    fn prompt_len(&self) -> usize {
        2 * self.cfg.digits + 2
    }
    fn completion_len(&self) -> usize {
        self.cfg.digits + 1
    }
    fn example(&self, split: Split, index: u64) -> Example {
        draw(self.seed, split, index, |rng| self.generate(rng))
    }
    fn reward(&self, example: &Example, completion: &[u32]) -> f64 {
        match_reward(&example.gold, completion, self.cfg.partial_credit)
    }
    fn render(&self, tokens: &[u32]) -> String {
        tokens
            .iter()
            .map(|&t| match t {
                PLUS => '+',
                EQUALS => '=',
                _ => char::from_digit(t, 10).unwrap_or('?'),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gold_is_the_sum() {
        let t = Add::new(AddConfig::default(), 5).unwrap();
        for i in 0..50 {
            let ex = t.example(Split::Heldout, i);
            let text = t.render(&ex.prompt);
            let (a, rest) = text.split_once('+').unwrap();
            let b = rest.trim_end_matches('=');
            let sum: u64 = a.parse::<u64>().unwrap() + b.parse::<u64>().unwrap();
            assert_eq!(t.render(&ex.gold).parse::<u64>().unwrap(), sum, "{text}");
            assert_eq!(t.reward(&ex, &ex.gold), 1.0);
            let mut wrong = ex.gold.clone();
            wrong[3] = (wrong[3] + 1) % 10;
            assert_eq!(t.reward(&ex, &wrong), 0.0);
        }
    }

    #[test]
    fn renders_the_operator_tokens() {
        let t = Add::new(AddConfig::default(), 0).unwrap();
        assert_eq!(t.render(&[0, 1, 2, PLUS, 9, 9, 9, EQUALS]), "012+999=");
        assert_eq!(t.completion_len(), 4);
    }

    #[test]
    fn one_digit_operands_are_refused() {
        let cfg = AddConfig { digits: 1, ..Default::default() };
        assert!(matches!(Add::new(cfg, 0), Err(Error::Config { field: "add.digits", .. })));
    }
}

//! Reversing a string of letters.

use alloc::string::String;
use alloc::vec::Vec;

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use super::split::{MIN_PROMPT_SPACE, draw, match_reward};
use super::{Example, Split, Task};
use crate::error::{Error, Result};

#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct ReverseConfig {
    /// Length of the string (1..=64).
    pub len: usize,
    /// Number of distinct letters, `a` onwards (2..=26); also the vocabulary size.
    pub alphabet: u32,
    /// Reward the fraction of correct positions instead of exact match.
    pub partial_credit: bool,
}

impl Default for ReverseConfig {
    fn default() -> Self {
        ReverseConfig { len: 6, alphabet: 8, partial_credit: false }
    }
}

impl ReverseConfig {
    pub fn validate(&self) -> Result<()> {
        if !(2..=26).contains(&self.alphabet) {
            return Err(Error::Config { field: "reverse.alphabet", reason: "must be in 2..=26" });
        }
        let space = u64::from(self.alphabet).saturating_pow(self.len as u32);
        if !(1..=64).contains(&self.len) || space < MIN_PROMPT_SPACE {
            return Err(Error::Config {
                field: "reverse.len",
                reason: "must be in 1..=64 with alphabet^len ≥ 1000 distinct prompts",
            });
        }
        Ok(())
    }
}

#[derive(Clone, Debug)]
pub struct Reverse {
    cfg: ReverseConfig,
    seed: u64,
}

impl Reverse {
    pub fn new(cfg: ReverseConfig, seed: u64) -> Result<Self> {
        cfg.validate()?;
        Ok(Reverse { cfg, seed })
    }

    fn generate(&self, rng: &mut ChaCha8Rng) -> Example {
        let prompt: Vec<u32> = (0..self.cfg.len).map(|_| rng.random_range(0..self.cfg.alphabet)).collect();
        let gold = prompt.iter().rev().copied().collect();
        Example { prompt, gold }
    }
}

impl Task for Reverse {
    fn name(&self) -> &str {
        "reverse"
    }
    fn vocab_size(&self) -> usize {
        self.cfg.alphabet as usize
    }
    fn prompt_len(&self) -> usize {
        self.cfg.len
    }
    fn completion_len(&self) -> usize {
        self.cfg.len
    }
    fn example(&self, split: Split, index: u64) -> Example {
        draw(self.seed, split, index, |rng| self.generate(rng))
    }
    fn reward(&self, example: &Example, completion: &[u32]) -> f64 {
        match_reward(&example.gold, completion, self.cfg.partial_credit)
    }
    fn render(&self, tokens: &[u32]) -> String {
        tokens.iter().map(|&t| char::from_u32('a' as u32 + t).filter(|_| t < 26).unwrap_or('?')).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gold_is_the_reversed_prompt() {
        let t = Reverse::new(ReverseConfig::default(), 2).unwrap();
        let ex = t.example(Split::Train, 4);
        let fwd = t.render(&ex.prompt);
        let back: String = t.render(&ex.gold);
        assert_eq!(fwd.chars().rev().collect::<String>(), back);
        assert_eq!(t.reward(&ex, &ex.gold), 1.0);
        let mut wrong = ex.gold.clone();
        wrong[0] = (wrong[0] + 1) % 8;
        assert_eq!(t.reward(&ex, &wrong), 0.0);
        assert_eq!(t.render(&[0, 1, 7]), "abh");
    }

    #[test]
    fn tiny_prompt_spaces_are_refused() {
        let cfg = ReverseConfig { len: 3, alphabet: 4, ..Default::default() };
        assert!(matches!(Reverse::new(cfg, 0), Err(Error::Config { field: "reverse.len", .. })));
    }
}

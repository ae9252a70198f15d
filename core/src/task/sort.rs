//! Sorting digits: a string of digits → the same digits in ascending order.

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
pub struct SortConfig {
    /// Number of digits to sort (3..=64).
    pub len: usize,
    /// Reward the fraction of correct positions instead of exact match.
    pub partial_credit: bool,
}

impl Default for SortConfig {
    fn default() -> Self {
        SortConfig { len: 6, partial_credit: false }
    }
}

impl SortConfig {
    pub fn validate(&self) -> Result<()> {
        if !(3..=64).contains(&self.len) || 10u64.saturating_pow(self.len as u32) < MIN_PROMPT_SPACE {
            return Err(Error::Config { field: "sort.len", reason: "must be in 3..=64" });
        }
        Ok(())
    }
}

#[derive(Clone, Debug)]
pub struct Sort {
    cfg: SortConfig,
    seed: u64,
}

impl Sort {
    pub fn new(cfg: SortConfig, seed: u64) -> Result<Self> {
        cfg.validate()?;
        Ok(Sort { cfg, seed })
    }

    fn generate(&self, rng: &mut ChaCha8Rng) -> Example {
        let prompt: Vec<u32> = (0..self.cfg.len).map(|_| rng.random_range(0..10)).collect();
        let mut gold = prompt.clone();
        gold.sort_unstable();
        Example { prompt, gold }
    }
}

impl Task for Sort {
    fn name(&self) -> &str {
        "sort"
    }
    fn vocab_size(&self) -> usize {
        10
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
        tokens.iter().map(|&t| char::from_digit(t, 10).unwrap_or('?')).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gold_is_sorted_and_rewarded() {
        let t = Sort::new(SortConfig::default(), 9).unwrap();
        let ex = t.example(Split::Train, 0);
        assert!(ex.gold.windows(2).all(|w| w[0] <= w[1]));
        let mut counts = [0; 10];
        ex.prompt.iter().for_each(|&d| counts[d as usize] += 1);
        ex.gold.iter().for_each(|&d| counts[d as usize] -= 1);
        assert_eq!(counts, [0; 10]);
        assert_eq!(t.reward(&ex, &ex.gold), 1.0);
        assert_eq!(t.reward(&ex, &ex.prompt), if ex.prompt == ex.gold { 1.0 } else { 0.0 });
        assert_eq!(t.render(&[3, 1, 2]), "312");
    }

    #[test]
    fn partial_credit_counts_positions() {
        let cfg = SortConfig { len: 4, partial_credit: true };
        let t = Sort::new(cfg, 0).unwrap();
        let ex = Example { prompt: alloc::vec![4, 3, 2, 1], gold: alloc::vec![1, 2, 3, 4] };
        assert_eq!(t.reward(&ex, &[1, 2, 0, 0]), 0.5);
    }
}

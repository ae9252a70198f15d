//! Verifiable tasks: a seeded prompt generator with train and held-out
//! splits, a character vocabulary, a gold completion (for the SFT warm start)
//! and a reward function (exact match = 1 else 0 by default).
//!
//! Prompts and completions have a fixed length per task configuration, so a
//! batch needs no padding. A task with stop tokens pads its gold completion
//! with them after the answer; SFT counts the gold up to and including its
//! first stop token ([`crate::rl::counted_len`]), and the toy tasks, which
//! have none, count every position.

use alloc::string::String;
use alloc::vec::Vec;

/// Which split an example is drawn from. The splits never share a prompt.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Split {
    Train,
    Heldout,
}

/// One problem: the prompt tokens and the gold completion tokens.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Example {
    /// (P) prompt token ids, each < `vocab_size()`.
    pub prompt: Vec<u32>,
    /// (T) the correct completion.
    pub gold: Vec<u32>,
}

/// Whether a reward is a solution: an exact match earns 1 (partial credit
/// and format bonuses stay below it or add to it). The one definition the
/// metrics and the evaluation use.
pub fn solves(reward: f64) -> bool {
    reward >= 1.0
}

/// A verifiable task.
pub trait Task: Send + Sync {
    /// Short name (`recurrence`, `add`, `sort`, `reverse`).
    fn name(&self) -> &str;
    /// Number of token ids (the model's V).
    fn vocab_size(&self) -> usize;
    /// Prompt length P (fixed).
    fn prompt_len(&self) -> usize;
    /// Completion length T (fixed).
    fn completion_len(&self) -> usize;
    /// The `index`-th example of `split`; deterministic in (task seed, split, index).
    fn example(&self, split: Split, index: u64) -> Example;
    /// Reward of `completion` (T tokens) for `example`: 1.0 for an exact
    /// match, else 0.0 (or partial credit when configured).
    fn reward(&self, example: &Example, completion: &[u32]) -> f64;
    /// Human-readable text of a token sequence (for logs and samples).
    fn render(&self, tokens: &[u32]) -> String;
    /// Token ids that end a completion (end of sequence); none for the
    /// fixed-length toy tasks.
    fn stop_tokens(&self) -> &[u32] {
        &[]
    }
    /// The answer `completion` gives, for the majority vote of maj@k: by
    /// default its tokens up to and including the first stop token, so two
    /// completions agree when they are the same; a text task returns the
    /// answer its verifier reads. `None`: no answer, no vote.
    fn answer(&self, example: &Example, completion: &[u32]) -> Option<String> {
        let _ = example;
        let end = completion.iter().position(|y| self.stop_tokens().contains(y)).map_or(completion.len(), |i| i + 1);
        let mut key = String::new();
        for y in &completion[..end] {
            key.push_str(&alloc::format!("{y},"));
        }
        Some(key)
    }
}

pub mod add;
pub mod recurrence;
pub mod reverse;
pub mod sort;
mod split;
pub mod text;

pub use split::{HELDOUT_EVERY, split_of};

use alloc::boxed::Box;

use crate::error::{Error, Result};

/// Names accepted by [`by_name`].
pub const NAMES: [&str; 4] = ["recurrence", "add", "sort", "reverse"];

/// The knobs of every built-in task; [`by_name_with`] reads the one it builds.
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct TaskOptions {
    pub recurrence: recurrence::RecurrenceConfig,
    pub add: add::AddConfig,
    pub sort: sort::SortConfig,
    pub reverse: reverse::ReverseConfig,
}

/// The built-in task `name` with its default configuration.
pub fn by_name(name: &str, seed: u64) -> Result<Box<dyn Task>> {
    by_name_with(name, seed, &TaskOptions::default())
}

/// The built-in task `name` configured by `options`.
pub fn by_name_with(name: &str, seed: u64, options: &TaskOptions) -> Result<Box<dyn Task>> {
    Ok(match name {
        "recurrence" => Box::new(recurrence::Recurrence::new(options.recurrence.clone(), seed)?),
        "add" => Box::new(add::Add::new(options.add.clone(), seed)?),
        "sort" => Box::new(sort::Sort::new(options.sort.clone(), seed)?),
        "reverse" => Box::new(reverse::Reverse::new(options.reverse.clone(), seed)?),
        _ => {
            return Err(Error::Config {
                field: "task",
                reason: "unknown task (expected recurrence, add, sort or reverse)",
            });
        }
    })
}

#[cfg(test)]
mod registry_tests {
    use super::*;
    use alloc::collections::BTreeSet;

    #[test]
    fn every_name_builds_with_consistent_shapes() {
        for name in NAMES {
            let t = by_name(name, 1).unwrap();
            assert_eq!(t.name(), name);
            for split in [Split::Train, Split::Heldout] {
                for i in 0..10 {
                    let ex = t.example(split, i);
                    assert_eq!(ex.prompt.len(), t.prompt_len(), "{name}");
                    assert_eq!(ex.gold.len(), t.completion_len(), "{name}");
                    let v = t.vocab_size() as u32;
                    assert!(ex.prompt.iter().chain(&ex.gold).all(|&x| x < v), "{name}");
                    assert_eq!(t.reward(&ex, &ex.gold), 1.0, "{name}");
                    assert_eq!(t.reward(&ex, &ex.gold[1..]), 0.0, "{name}");
                }
            }
        }
    }

    #[test]
    fn unknown_name_is_a_config_error() {
        assert!(matches!(by_name("nope", 0), Err(Error::Config { field: "task", .. })));
    }

    #[test]
    fn splits_never_share_a_prompt() {
        for name in NAMES {
            let t = by_name(name, 7).unwrap();
            let train: BTreeSet<_> = (0..400).map(|i| t.example(Split::Train, i).prompt).collect();
            let held: BTreeSet<_> = (0..100).map(|i| t.example(Split::Heldout, i).prompt).collect();
            assert!(train.is_disjoint(&held), "{name}");
            // The draws vary: not every index returns one prompt.
            assert!(train.len() > 50 && held.len() > 20, "{name}");
        }
    }

    #[test]
    fn examples_are_deterministic_in_the_seed() {
        for name in NAMES {
            let (a, b, c) = (by_name(name, 42).unwrap(), by_name(name, 42).unwrap(), by_name(name, 43).unwrap());
            let same = (0..20).all(|i| a.example(Split::Train, i) == b.example(Split::Train, i));
            let differs = (0..20).any(|i| a.example(Split::Train, i) != c.example(Split::Train, i));
            assert!(same && differs, "{name}");
        }
    }
}

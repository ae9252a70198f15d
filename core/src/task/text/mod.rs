//! Verifiable text tasks for a real language model with a real tokenizer:
//! prompts and gold completions are text, and the reward parses the
//! completion's text.
//!
//! * [`arith`] — `What is 23 + 45?`, the answer a number.
//! * [`countdown`] — reach a target with +, −, ×, / over given numbers.
//! * [`gsm`] — grade-school word problems, the answer after `####`.
//! * [`gsm8k`] — the rules of the GSM8K dataset's problems (read from its
//!   files by `wapo-io`): prompts, gold answers, the reward of [`gsm`].
//!
//! Like the toy tasks, every task is seeded and deterministic and has two
//! splits that never share a problem: the split of a problem is a hash of
//! its key (the operands and operation, not the wording), so no rewording
//! of a held-out problem is ever trained on. The held-out split is a fixed
//! set of [`TextTask::held_out_size`] distinct problems (index `i` reads
//! problem `i % size`); the training split is unbounded.
//!
//! Rewards are exact: 1.0 when the completion's answer is right, else 0.0.
//! A task's optional `format_bonus` (default 0) is added when the answer is
//! stated in the asked-for form, so a right and well-formed completion
//! scores `1 + format_bonus`.

use alloc::boxed::Box;
use alloc::collections::BTreeSet;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use rand_chacha::ChaCha8Rng;

use super::Split;
use super::split::{example_rng, split_of};
use crate::error::{Error, Result};

pub mod answer;
pub mod arith;
pub mod countdown;
pub mod expr;
pub mod gsm;
pub mod gsm8k;

#[cfg(test)]
mod tests;

/// One problem as text.
#[derive(Clone, PartialEq, Eq, Debug, Hash, PartialOrd, Ord)]
pub struct TextExample {
    /// The user message.
    pub prompt: String,
    /// The gold completion (for the SFT warm start).
    pub answer: String,
    /// What the verifier checks against (`"47"`; see each task).
    pub target: String,
}

/// A verifiable text task.
pub trait TextTask: Send + Sync {
    /// Short name (`arith`, `countdown`, `gsm`, `gsm8k`, `jsonl`).
    fn name(&self) -> &str;
    /// Example `index` of `split`; the same for the same seed and options.
    fn example(&self, split: Split, index: u64) -> TextExample;
    /// Reward of `completion` for `example`: 1.0 or 0.0, plus the task's
    /// format bonus when configured. Never panics, whatever the text.
    fn reward(&self, example: &TextExample, completion: &str) -> f64;
    /// The answer of `completion` for majority voting (maj@k), in a
    /// canonical form where the verifier has one: by default the trimmed
    /// text; `None` when there is none.
    fn answer(&self, example: &TextExample, completion: &str) -> Option<String> {
        let _ = example;
        let t = completion.trim();
        (!t.is_empty()).then(|| t.to_string())
    }
    /// Number of held-out examples (a fixed set).
    fn held_out_size(&self) -> usize;
    /// Number of training examples; `None` when unbounded.
    fn train_size(&self) -> Option<usize> {
        None
    }
}

/// Names accepted by [`by_name`].
pub const NAMES: [&str; 3] = ["arith", "countdown", "gsm"];

/// The knobs of every generated text task; [`by_name`] reads the one it builds.
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct TextOptions {
    pub arith: arith::ArithConfig,
    pub countdown: countdown::CountdownConfig,
    pub gsm: gsm::GsmConfig,
}

/// The generated text task `name`, seeded by `seed`, configured by `options`.
pub fn by_name(name: &str, seed: u64, options: &TextOptions) -> Result<Box<dyn TextTask>> {
    Ok(match name {
        "arith" => Box::new(arith::Arith::new(options.arith.clone(), seed)?),
        "countdown" => Box::new(countdown::Countdown::new(options.countdown.clone(), seed)?),
        "gsm" => Box::new(gsm::Gsm::new(options.gsm.clone(), seed)?),
        _ => {
            return Err(Error::Config {
                field: "task",
                reason: "unknown text task (expected arith, countdown or gsm)",
            });
        }
    })
}

/// A generated problem and the key that decides its split.
pub(crate) struct Generated {
    pub key: String,
    pub example: TextExample,
}

/// The split of a problem key.
pub(crate) fn split_of_key(key: &str) -> Split {
    let units: Vec<u32> = key.bytes().map(u32::from).collect();
    split_of(&units)
}

/// Example `index` of `split`: candidates from the RNG keyed by (seed,
/// split, index) until one's key falls in `split` (7 in 8 keys train, 1 in 8
/// held out, so this ends with probability 1 and quickly).
pub(crate) fn draw(
    seed: u64,
    split: Split,
    index: u64,
    generate: &mut impl FnMut(&mut ChaCha8Rng) -> Generated,
) -> Generated {
    let mut rng = example_rng(seed, split, index);
    loop {
        let g = generate(&mut rng);
        if split_of_key(&g.key) == split {
            return g;
        }
    }
}

/// The fixed held-out set: the first `size` distinct held-out problems.
///
/// `field` names the config's `held_out` in the error returned when the
/// problem space is too small to give that many.
pub(crate) fn held_out_set(
    seed: u64,
    size: usize,
    field: &'static str,
    mut generate: impl FnMut(&mut ChaCha8Rng) -> Generated,
) -> Result<Vec<TextExample>> {
    if size == 0 {
        return Err(Error::Config { field, reason: "must be at least 1" });
    }
    let mut keys = BTreeSet::new();
    let mut out = Vec::with_capacity(size.min(1 << 16));
    // Each task refuses a held_out above a sixteenth of its problem space,
    // so distinct draws stay the norm and this budget is never the limit in
    // practice; it only bounds the loop.
    let budget = (size as u64).saturating_mul(64).saturating_add(1024);
    for index in 0..budget {
        let g = draw(seed, Split::Heldout, index, &mut generate);
        if keys.insert(g.key) {
            out.push(g.example);
            if out.len() == size {
                return Ok(out);
            }
        }
    }
    Err(Error::Config { field, reason: "too few distinct held-out problems for this size" })
}

/// The held-out example `index` of a fixed set.
pub(crate) fn held_out_example(set: &[TextExample], index: u64) -> TextExample {
    // Never empty: `held_out_set` refuses a size of 0.
    set[(index % set.len() as u64) as usize].clone()
}

/// The user message: `question`, then `instruction` after a space unless
/// the instruction is empty.
pub fn with_instruction(question: impl Into<String>, instruction: &str) -> String {
    let mut prompt = question.into();
    if !instruction.is_empty() {
        prompt.push(' ');
        prompt.push_str(instruction);
    }
    prompt
}

/// `1.0` or `0.0` for correctness, plus `bonus` when well formed.
pub(crate) fn score(correct: bool, well_formed: bool, bonus: f64) -> f64 {
    let base = if correct { 1.0 } else { 0.0 };
    if well_formed { base + bonus } else { base }
}

/// Checks a format bonus: finite and in `[0, 1]`.
pub(crate) fn check_bonus(bonus: f64, field: &'static str) -> Result<()> {
    if !(0.0..=1.0).contains(&bonus) {
        return Err(Error::Config { field, reason: "must be in [0, 1]" });
    }
    Ok(())
}

/// Checks a held-out size against the problem space (`space` problems of
/// which about 1 in 8 are held out): at most a sixteenth of the space.
pub(crate) fn check_held_out(size: usize, space: u128, field: &'static str) -> Result<()> {
    if size == 0 || size as u128 > space / 16 {
        return Err(Error::Config { field, reason: "must be in 1..=(problem space / 16)" });
    }
    Ok(())
}

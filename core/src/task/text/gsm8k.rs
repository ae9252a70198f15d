//! GSM8K (Cobbe et al., 2021): grade-school word problems with worked
//! solutions that end in `#### <answer>`. The problems come from outside
//! (`wapo-io` reads the JSONL files of `data/gsm8k/`); this module holds the
//! rules of the task:
//!
//! * a problem's prompt is its question with the instruction
//!   ([`with_instruction`]); its gold completion (for SFT) is its worked
//!   solution without the `<<48/2=24>>` calculator annotations; its target
//!   is the canonical form of the number after that completion's last
//!   `####`;
//! * the reward is gsm's [`worked_reward`]: the completion's answer read by
//!   [`answer::math_number`] (after `####`, else in `\boxed{}`, else the
//!   last number) compared exactly, plus the format bonus when configured;
//! * the training split is the dataset's train problems and the held-out
//!   split its test problems, each in file order; index `i` of a split reads
//!   problem `i % size`. Nothing is seeded: the splits are the dataset's.

use alloc::string::String;
use alloc::vec::Vec;

use super::gsm::{INSTRUCTION, worked_reward};
use super::{TextExample, TextTask, answer, check_bonus, with_instruction};
use crate::error::{Error, Result};
use crate::task::Split;

#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct Gsm8kConfig {
    /// Appended to the question after a space; empty for none.
    pub instruction: String,
    /// Added to the reward when the completion gives a number after `####`;
    /// 0 turns it off.
    pub format_bonus: f64,
}

impl Default for Gsm8kConfig {
    fn default() -> Self {
        Gsm8kConfig { instruction: INSTRUCTION.into(), format_bonus: 0.0 }
    }
}

impl Gsm8kConfig {
    pub fn validate(&self) -> Result<()> {
        check_bonus(self.format_bonus, "gsm8k.format_bonus")
    }

    /// The example of one problem from its `question` and its worked
    /// `solution` (the dataset's `answer`), or what is wrong with them.
    pub fn example(&self, question: &str, solution: &str) -> core::result::Result<TextExample, &'static str> {
        if question.trim().is_empty() {
            return Err("the question is empty");
        }
        // The target is read from the gold completion itself, so that the
        // gold completion always earns the reward.
        let gold = without_annotations(solution);
        if !gold.contains("####") {
            return Err("the answer has no `####` before its final number");
        }
        let target = answer::marked_number(&gold).ok_or("the answer has no number after its last `####`")?;
        Ok(TextExample { prompt: with_instruction(question, &self.instruction), answer: gold, target })
    }
}

/// `solution` without its calculator annotations: each `<<…>>` removed (an
/// unclosed `<<` and what follows it are kept).
pub fn without_annotations(solution: &str) -> String {
    let mut out = String::with_capacity(solution.len());
    let mut rest = solution;
    while let Some(open) = rest.find("<<") {
        let Some(len) = rest[open..].find(">>") else { break };
        out.push_str(&rest[..open]);
        rest = &rest[open + len + 2..];
    }
    out.push_str(rest);
    out
}

/// The GSM8K task over problems already read. An example's `target` is the
/// canonical final answer (`"1200"` for `#### 1,200`).
#[derive(Clone, Debug)]
pub struct Gsm8k {
    cfg: Gsm8kConfig,
    train: Vec<TextExample>,
    held: Vec<TextExample>,
}

impl Gsm8k {
    /// The task over `train` and `held` (the test split), each made by
    /// [`Gsm8kConfig::example`] with `cfg`; neither may be empty.
    pub fn new(cfg: Gsm8kConfig, train: Vec<TextExample>, held: Vec<TextExample>) -> Result<Self> {
        cfg.validate()?;
        if train.is_empty() || held.is_empty() {
            return Err(Error::Config { field: "gsm8k", reason: "both splits need at least one problem" });
        }
        Ok(Gsm8k { cfg, train, held })
    }

    /// The examples of `split`, in file order.
    pub fn examples(&self, split: Split) -> &[TextExample] {
        match split {
            Split::Train => &self.train,
            Split::Heldout => &self.held,
        }
    }
}

impl TextTask for Gsm8k {
    fn name(&self) -> &str {
        "gsm8k"
    }
    fn example(&self, split: Split, index: u64) -> TextExample {
        // Never empty: `new` refuses an empty split.
        let set = self.examples(split);
        set[(index % set.len() as u64) as usize].clone()
    }
    fn reward(&self, example: &TextExample, completion: &str) -> f64 {
        worked_reward(&example.target, completion, self.cfg.format_bonus)
    }
    fn answer(&self, _: &TextExample, completion: &str) -> Option<String> {
        answer::math_number(completion)
    }
    fn held_out_size(&self) -> usize {
        self.held.len()
    }
    fn train_size(&self) -> Option<usize> {
        Some(self.train.len())
    }
}

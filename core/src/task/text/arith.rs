//! Multi-digit arithmetic in words or symbols: `What is 23 + 45? Reply with
//! only the number.` → `68`. The reward reads the completion's answer by
//! [`answer::final_number`] and compares it exactly with the target.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use super::{
    Generated, TextExample, TextTask, answer, check_bonus, check_held_out, draw, held_out_example, held_out_set, score,
    with_instruction,
};
use crate::error::{Error, Result};
use crate::task::Split;

/// How the operation is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum ArithStyle {
    /// `23 + 45`, `23 - 45`, `23 * 45`.
    #[default]
    Symbols,
    /// `23 plus 45`, `23 minus 45`, `23 times 45`.
    Words,
    /// Either, drawn per example.
    Mixed,
}

#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct ArithConfig {
    /// Digits per operand (2..=18); operands are drawn with exactly this many.
    pub digits: usize,
    /// The operations drawn from: any of `+`, `-` (or `−`), `*` (or `x`,
    /// `×`); spaces and commas are ignored (`"+-*"`, `"+, *"`).
    pub operations: String,
    pub style: ArithStyle,
    /// Appended to the question after a space; empty for none.
    pub instruction: String,
    /// Size of the fixed held-out set.
    pub held_out: usize,
    /// Added to the reward when the answer is stated explicitly (the whole
    /// reply is the number, or `Answer:` / `\boxed{}`); 0 turns it off.
    pub format_bonus: f64,
}

impl Default for ArithConfig {
    fn default() -> Self {
        ArithConfig {
            digits: 2,
            operations: "+".to_string(),
            style: ArithStyle::Symbols,
            instruction: "Reply with only the number.".to_string(),
            held_out: 200,
            format_bonus: 0.0,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Add,
    Sub,
    Mul,
}

impl Op {
    fn symbol(self) -> &'static str {
        match self {
            Op::Add => "+",
            Op::Sub => "-",
            Op::Mul => "*",
        }
    }
    fn word(self) -> &'static str {
        match self {
            Op::Add => "plus",
            Op::Sub => "minus",
            Op::Mul => "times",
        }
    }
    fn apply(self, a: i128, b: i128) -> i128 {
        // Operands below 10^18 keep every result far inside i128.
        match self {
            Op::Add => a + b,
            Op::Sub => a - b,
            Op::Mul => a * b,
        }
    }
}

impl ArithConfig {
    fn ops(&self) -> Result<Vec<Op>> {
        let mut ops = Vec::new();
        for c in self.operations.chars() {
            let op = match c {
                ' ' | ',' => continue,
                '+' => Op::Add,
                '-' | '\u{2212}' => Op::Sub,
                '*' | 'x' | '\u{d7}' => Op::Mul,
                _ => return Err(Error::Config { field: "arith.operations", reason: "only +, - and * are known" }),
            };
            if !ops.contains(&op) {
                ops.push(op);
            }
        }
        if ops.is_empty() {
            return Err(Error::Config { field: "arith.operations", reason: "names no operation" });
        }
        Ok(ops)
    }

    /// Number of distinct problems.
    fn space(&self, ops: usize) -> u128 {
        let per_operand = 9 * 10u128.pow(self.digits as u32 - 1);
        per_operand * per_operand * ops as u128
    }

    pub fn validate(&self) -> Result<()> {
        if !(2..=18).contains(&self.digits) {
            return Err(Error::Config { field: "arith.digits", reason: "must be in 2..=18" });
        }
        let space = self.space(self.ops()?.len());
        check_held_out(self.held_out, space, "arith.held_out")?;
        check_bonus(self.format_bonus, "arith.format_bonus")
    }
}

/// The arithmetic task. Its examples' `target` is the exact result (`"68"`,
/// `"-22"`); `answer` is the same number.
#[derive(Clone, Debug)]
pub struct Arith {
    cfg: ArithConfig,
    ops: Vec<Op>,
    seed: u64,
    held: Vec<TextExample>,
}

impl Arith {
    pub fn new(cfg: ArithConfig, seed: u64) -> Result<Self> {
        cfg.validate()?;
        let ops = cfg.ops()?;
        let mut t = Arith { cfg, ops, seed, held: Vec::new() };
        t.held = held_out_set(seed, t.cfg.held_out, "arith.held_out", |rng| t.generate(rng))?;
        Ok(t)
    }

    fn generate(&self, rng: &mut ChaCha8Rng) -> Generated {
        let low = 10i128.pow(self.cfg.digits as u32 - 1);
        let (a, b) = (rng.random_range(low..10 * low), rng.random_range(low..10 * low));
        let op = self.ops[rng.random_range(0..self.ops.len())];
        let words = match self.cfg.style {
            ArithStyle::Symbols => false,
            ArithStyle::Words => true,
            ArithStyle::Mixed => rng.random_range(0..2) == 1,
        };
        let sign = if words { op.word() } else { op.symbol() };
        let prompt = with_instruction(format!("What is {a} {sign} {b}?"), &self.cfg.instruction);
        let result = op.apply(a, b).to_string();
        Generated {
            key: format!("{a}{}{b}", op.symbol()),
            example: TextExample { prompt, answer: result.clone(), target: result },
        }
    }
}

impl TextTask for Arith {
    fn name(&self) -> &str {
        "arith"
    }
    fn example(&self, split: Split, index: u64) -> TextExample {
        match split {
            Split::Heldout => held_out_example(&self.held, index),
            Split::Train => draw(self.seed, split, index, &mut |rng| self.generate(rng)).example,
        }
    }
    fn reward(&self, example: &TextExample, completion: &str) -> f64 {
        let correct = answer::same_number(&example.target, answer::final_number(completion));
        score(correct, answer::states_answer(completion), self.cfg.format_bonus)
    }
    fn answer(&self, _: &TextExample, completion: &str) -> Option<String> {
        answer::final_number(completion)
    }
    fn held_out_size(&self) -> usize {
        self.held.len()
    }
}

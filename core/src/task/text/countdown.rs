//! Countdown: reach a target from 3–6 given numbers with `+ − × /` and
//! parentheses, each number used at most once (a number given twice may be
//! used twice).
//!
//! The verifier takes one expression from the completion, evaluates it with
//! [`expr::evaluate`] (whole-number arithmetic; a division with a remainder
//! or by zero makes it wrong) and rewards it when its value is the target
//! and its numbers are among the given ones. The expression is
//! 1. the rest of the line after the last `Answer:` (any case), when there
//!    is one; or else
//! 2. the last line that holds an expression.
//!
//! On either line the expression is the text before the first `=`
//! (`(3 + 5) * 2 = 16` reads `(3 + 5) * 2`), without surrounding spaces,
//! backticks, `$`, `*` (markdown bold) or `.`.
//!
//! Every target is reachable: it is the value of a random expression over
//! the given numbers, which is the gold completion.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use super::expr::{self, uses_at_most_once};
use super::{
    Generated, TextExample, TextTask, check_bonus, check_held_out, draw, held_out_example, held_out_set, score,
    with_instruction,
};
use crate::error::{Error, Result};
use crate::task::Split;

#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct CountdownConfig {
    /// Fewest numbers given (3..=6).
    pub min_numbers: usize,
    /// Most numbers given (min_numbers..=6).
    pub max_numbers: usize,
    /// Given numbers are drawn from 1..=max_number (10..=1000).
    pub max_number: u32,
    /// Targets lie in 1..=max_target (at least 2 × max_number, at most 10^6).
    pub max_target: u32,
    /// Appended to the question after a space; empty for none.
    pub instruction: String,
    /// Size of the fixed held-out set.
    pub held_out: usize,
    /// Added to the reward when the expression is given after `Answer:` or
    /// is the whole reply; 0 turns it off.
    pub format_bonus: f64,
}

impl Default for CountdownConfig {
    fn default() -> Self {
        CountdownConfig {
            min_numbers: 3,
            max_numbers: 4,
            max_number: 25,
            max_target: 200,
            instruction: "Reply with only the expression.".to_string(),
            held_out: 200,
            format_bonus: 0.0,
        }
    }
}

impl CountdownConfig {
    pub fn validate(&self) -> Result<()> {
        if !(3..=6).contains(&self.min_numbers) || !(self.min_numbers..=6).contains(&self.max_numbers) {
            return Err(Error::Config {
                field: "countdown.min_numbers",
                reason: "need 3 <= min_numbers <= max_numbers <= 6",
            });
        }
        if !(10..=1000).contains(&self.max_number) {
            return Err(Error::Config { field: "countdown.max_number", reason: "must be in 10..=1000" });
        }
        if self.max_target < 2 * self.max_number || self.max_target > 1_000_000 {
            return Err(Error::Config { field: "countdown.max_target", reason: "must be in 2 * max_number..=1000000" });
        }
        // A lower bound: distinct number lists alone, before targets.
        let space = u128::from(self.max_number).pow(self.min_numbers as u32);
        check_held_out(self.held_out, space, "countdown.held_out")?;
        check_bonus(self.format_bonus, "countdown.format_bonus")
    }
}

/// The countdown task. An example's `target` reads `"<target> using <n1>
/// <n2> …"` (`"57 using 3 5 7 12"`): the verifier needs both.
#[derive(Clone, Debug)]
pub struct Countdown {
    cfg: CountdownConfig,
    seed: u64,
    held: Vec<TextExample>,
}

/// A sub-expression under construction: its value, its text, and whether it
/// needs parentheses as an operand.
struct Node {
    value: i128,
    text: String,
    compound: bool,
}

impl Node {
    fn operand(&self) -> String {
        if self.compound { format!("({})", self.text) } else { self.text.clone() }
    }
}

impl Countdown {
    pub fn new(cfg: CountdownConfig, seed: u64) -> Result<Self> {
        cfg.validate()?;
        let mut t = Countdown { cfg, seed, held: Vec::new() };
        t.held = held_out_set(seed, t.cfg.held_out, "countdown.held_out", |rng| t.generate(rng))?;
        Ok(t)
    }

    fn generate(&self, rng: &mut ChaCha8Rng) -> Generated {
        // Redraws until the random expression lands on a usable target; most
        // draws do, so this ends with probability 1 after a few tries.
        loop {
            let n = rng.random_range(self.cfg.min_numbers..=self.cfg.max_numbers);
            let numbers: Vec<i128> = (0..n).map(|_| i128::from(rng.random_range(1..=self.cfg.max_number))).collect();
            let used = rng.random_range(2..=n);
            let mut pool: Vec<Node> =
                numbers[..used].iter().map(|&v| Node { value: v, text: v.to_string(), compound: false }).collect();
            while pool.len() > 1 {
                let a = pool.swap_remove(rng.random_range(0..pool.len()));
                let b = pool.swap_remove(rng.random_range(0..pool.len()));
                pool.push(combine(a, b, rng.random_range(0..4)));
            }
            let Some(root) = pool.pop() else { continue };
            let fine = (1..=i128::from(self.cfg.max_target)).contains(&root.value) && !numbers.contains(&root.value);
            if !fine {
                continue;
            }
            let listed: Vec<String> = numbers.iter().map(i128::to_string).collect();
            let question = format!(
                "Using the numbers {}, write an arithmetic expression that equals {}. You may use +, -, *, / and parentheses, and each number at most once.",
                listed.join(", "),
                root.value
            );
            let prompt = with_instruction(question, &self.cfg.instruction);
            let mut sorted = numbers.clone();
            sorted.sort_unstable();
            let sorted: Vec<String> = sorted.iter().map(i128::to_string).collect();
            return Generated {
                key: format!("{} using {}", root.value, sorted.join(" ")),
                example: TextExample {
                    prompt,
                    answer: root.text,
                    target: format!("{} using {}", root.value, listed.join(" ")),
                },
            };
        }
    }
}

/// Combines two nodes with operation `op` (0 `+`, 1 `-`, 2 `*`, 3 `/`),
/// keeping every value a positive whole number: the larger minus the
/// smaller, the exact quotient; `+` where those are not possible.
fn combine(a: Node, b: Node, op: u32) -> Node {
    let (big, small) = if a.value >= b.value { (a, b) } else { (b, a) };
    let (value, sign) = match op {
        1 if big.value > small.value => (big.value - small.value, "-"),
        2 => (big.value * small.value, "*"),
        3 if small.value > 1 && big.value % small.value == 0 => (big.value / small.value, "/"),
        _ => (big.value + small.value, "+"),
    };
    Node { value, text: format!("{} {sign} {}", big.operand(), small.operand()), compound: true }
}

/// The target and the given numbers of a `target` field; `None` if malformed.
pub fn parse_target(target: &str) -> Option<(i128, Vec<i128>)> {
    let (goal, numbers) = target.split_once(" using ")?;
    let goal = goal.trim().parse().ok()?;
    let numbers: Option<Vec<i128>> = numbers.split_whitespace().map(|n| n.parse().ok()).collect();
    Some((goal, numbers?))
}

/// The expression the verifier judges, by the rules of the module docs.
pub fn candidate(completion: &str) -> Option<&str> {
    let lower = completion.to_ascii_lowercase();
    if let Some(at) = lower.rfind("answer:") {
        let tail = &completion[at + "answer:".len()..];
        return Some(expression_part(tail.lines().next().unwrap_or("")));
    }
    completion.lines().rev().map(expression_part).find(|e| expr::evaluate(e).is_ok())
}

fn expression_part(line: &str) -> &str {
    // No expression starts or ends with `*` or `.`, so trimming them only
    // removes markdown and a full stop.
    let before = line.split('=').next().unwrap_or("");
    before.trim_matches(|c: char| c.is_whitespace() || matches!(c, '`' | '$' | '*' | '.'))
}

/// Whether `expression` reaches `goal` using only `numbers`, each at most once.
pub fn solves(goal: i128, numbers: &[i128], expression: &str) -> bool {
    match expr::evaluate(expression) {
        Ok(e) => e.value == Ok(goal) && uses_at_most_once(numbers, &e.numbers),
        Err(_) => false,
    }
}

impl TextTask for Countdown {
    fn name(&self) -> &str {
        "countdown"
    }
    fn example(&self, split: Split, index: u64) -> TextExample {
        match split {
            Split::Heldout => held_out_example(&self.held, index),
            Split::Train => draw(self.seed, split, index, &mut |rng| self.generate(rng)).example,
        }
    }
    fn reward(&self, example: &TextExample, completion: &str) -> f64 {
        let Some((goal, numbers)) = parse_target(&example.target) else { return 0.0 };
        let correct = candidate(completion).is_some_and(|e| solves(goal, &numbers, e));
        let parses = candidate(completion).is_some_and(|e| expr::evaluate(e).is_ok());
        let marked = completion.to_ascii_lowercase().contains("answer:");
        let well_formed = parses && (marked || !completion.trim().contains('\n'));
        score(correct, well_formed, self.cfg.format_bonus)
    }
    fn held_out_size(&self) -> usize {
        self.held.len()
    }
}

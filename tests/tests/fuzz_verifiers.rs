//! Fuzzing the verifiers' answer parsing with long, adversarial
//! completions (the unit property tests use short ones): fragments that
//! each rule of `answer::final_number` and `answer::math_number` (ratios,
//! `\frac`, `$`, `%`) and the countdown expression parser react to,
//! repeated up to tens of thousands of times, so that a quadratic scan or a
//! deep recursion shows up as a time or panic failure.
//! Every reward must lie in [0, 1].

#[path = "../fuzz/harness/mod.rs"]
mod harness;

use harness::{Outcome, fuzz};
use proptest::prelude::*;
use wapo_core::task::Split;
use wapo_core::task::text::{TextOptions, answer, by_name, countdown, expr};

const FRAGMENTS: [&str; 28] = [
    "\\boxed{",
    "}",
    "{",
    "Answer:",
    "answer is",
    "####",
    "=",
    " = -",
    "1,234",
    ",567",
    "0",
    "9",
    ".",
    "−",
    "-",
    "(",
    ")",
    "+",
    "*",
    "/",
    "\n",
    " ",
    "é",
    "12345678901234567890",
    "\\frac{",
    "}{",
    "$",
    "%",
];

/// A completion: a few fragments, each repeated, the whole repeated again.
fn completions() -> impl Strategy<Value = Vec<u8>> {
    let piece = (proptest::sample::select(FRAGMENTS.to_vec()), 1usize..64).prop_map(|(f, n)| f.repeat(n));
    (prop::collection::vec(piece, 1..6), 1usize..400).prop_map(|(pieces, n)| pieces.concat().repeat(n).into_bytes())
}

fn check(bytes: &[u8]) -> Result<Outcome, String> {
    let text = String::from_utf8_lossy(bytes);
    let _ = (answer::final_number(&text), answer::hash_number(&text), answer::canonical(&text));
    let _ = answer::math_number(&text);
    let _ = answer::states_answer(&text);
    let _ = expr::evaluate(&text);
    if let Some(c) = countdown::candidate(&text) {
        let _ = countdown::solves(24, &[1, 2, 3, 4], c);
    }
    for name in ["arith", "countdown", "gsm"] {
        let task = by_name(name, 1, &TextOptions::default()).map_err(|e| format!("{name}: {e}"))?;
        let example = task.example(Split::Heldout, 0);
        let r = task.reward(&example, &text);
        if !(0.0..=1.0).contains(&r) {
            return Err(format!("{name} reward {r}"));
        }
    }
    Ok(Outcome::Accepted)
}

#[test]
fn fuzz_verifiers() {
    fuzz("verifiers", completions(), check);
}

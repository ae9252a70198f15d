//! Objective case files (`wapo-objective-case/1`, `docs/CASES.md`): parse
//! with errors that name the field and position, evaluate on any backend,
//! and compare with the `expected` object within a tolerance.

mod compare;
mod eval;
mod parse;

pub use compare::{FieldDiff, Tolerance, compare};
pub use eval::CaseOutput;
pub use parse::FORMAT;

use alloc::string::String;
use alloc::vec::Vec;

use crate::objective::ObjectiveConfig;

/// The per-token input of a case.
#[derive(Clone, Debug, PartialEq)]
pub enum CaseInput {
    /// Token level: (N, T) current-policy log-probs, optional (N, T) Σp².
    Tokens { logprobs: Vec<f64>, sum_p_sq: Option<Vec<f64>> },
    /// Logits level: (N, T, V) logits (−inf for `null`), (N, T) token ids.
    Logits { logits: Vec<f64>, tokens: Vec<f64>, vocab: usize },
}

/// A parsed, validated case.
#[derive(Clone, Debug, PartialEq)]
pub struct Case {
    pub name: Option<String>,
    pub config: ObjectiveConfig,
    /// N sequences, T tokens per row.
    pub n: usize,
    pub t: usize,
    pub group_ids: Vec<i64>,
    /// (N)
    pub rewards: Vec<f64>,
    /// (N, T) 0/1.
    pub mask: Vec<f64>,
    /// (N, T)
    pub old_logprobs: Vec<f64>,
    pub input: CaseInput,
    /// The file's `expected` object, if any.
    pub expected: Option<serde_json::Value>,
}

impl Case {
    /// Parses and validates a case file's text.
    pub fn parse(text: &str) -> crate::Result<Case> {
        parse::parse(text)
    }
}

//! Structured mutation of valid JSON: a node replaced by an extreme or
//! ill-typed value (huge and negative numbers, 2^40, u64::MAX, fractions,
//! null, strings, deep nesting, long arrays, a copy of another node), a key
//! or element removed, or raw text JSON cannot hold (`NaN`, `1e999`,
//! numbers past u64, a lone surrogate, a duplicated key, unbalanced
//! nesting); then, sometimes, byte edits of the text (invalid UTF-8,
//! truncation at a structural character).

use std::sync::Arc;

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Value, json};

use super::bytes::{self, Seed};

/// Text substituted for a placeholder string after serialization.
const RAW: [&str; 12] = [
    "1e999",
    "-1e999",
    "NaN",
    "Infinity",
    "18446744073709551616",
    "-9223372036854775809",
    "1.0000000000000000000000000000000000000000000000000000000000000001e308",
    "\"\\ud800\"",
    "0.",
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
    // With the key before it, a second entry of the same key.
    "1, \"@@KEY@@\": 2",
    "{\"a\": ",
];
const PLACEHOLDER: &str = "@@RAW@@";

#[derive(Clone, Debug)]
enum Op {
    Replace(u8, u64),
    Remove,
    CopyFrom(Index),
    Raw(u8),
}

fn replacement(kind: u8, x: u64) -> Value {
    match kind % 20 {
        0 => Value::Null,
        1 => json!(x.is_multiple_of(2)),
        2 => json!(0),
        3 => json!(-1),
        4 => json!(-(x as i64 % 1000) - 2),
        5 => json!(0.5),
        6 => json!(1e300),
        7 => json!(-1e300),
        8 => json!(1u64 << 40),
        9 => json!(u64::MAX),
        10 => json!(i64::MIN),
        11 => json!(9007199254740993u64),
        12 => json!(5e-324),
        13 => json!(x % 100_000),
        14 => json!(""),
        15 => json!("x\u{0}\u{202e}é"),
        16 => Value::String("a".repeat((x % 20_000) as usize)),
        17 => json!([]),
        18 => json!({}),
        // Nesting: below and above serde_json's recursion limit of 128.
        _ => {
            let depth = if x.is_multiple_of(2) { 100 } else { 300 };
            (0..depth).fold(json!(1), |v, _| json!([v]))
        }
    }
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (any::<u8>(), any::<u64>()).prop_map(|(k, x)| Op::Replace(k, x)),
        2 => Just(Op::Remove),
        1 => any::<Index>().prop_map(Op::CopyFrom),
        2 => any::<u8>().prop_map(Op::Raw),
    ]
}

#[derive(Clone, Debug)]
enum Step {
    Key(String),
    At(usize),
}

fn paths(v: &Value, here: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    out.push(here.clone());
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                here.push(Step::Key(k.clone()));
                paths(child, here, out);
                here.pop();
            }
        }
        Value::Array(a) => {
            // Long arrays: their first elements and their last stand for the rest.
            for (i, child) in a.iter().enumerate().filter(|(i, _)| *i < 8 || *i + 1 == a.len()) {
                here.push(Step::At(i));
                paths(child, here, out);
                here.pop();
            }
        }
        _ => {}
    }
}

fn get_mut<'a>(v: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |v, s| match s {
        Step::Key(k) => v.get_mut(k.as_str()),
        Step::At(i) => v.get_mut(*i),
    })
}

fn apply(root: &mut Value, node: &Index, op: &Op, raw_key: &mut Option<String>) {
    let mut all = Vec::new();
    paths(root, &mut Vec::new(), &mut all);
    let path = all[node.index(all.len())].clone();
    match op {
        Op::Replace(k, x) => {
            if let Some(slot) = get_mut(root, &path) {
                *slot = replacement(*k, *x);
            }
        }
        Op::CopyFrom(other) => {
            let from = all[other.index(all.len())].clone();
            let copy = get_mut(root, &from).map(|v| v.clone());
            if let (Some(copy), Some(slot)) = (copy, get_mut(root, &path)) {
                *slot = copy;
            }
        }
        Op::Remove => {
            let Some((last, parent)) = path.split_last() else { return };
            match (get_mut(root, parent), last) {
                (Some(Value::Object(m)), Step::Key(k)) => {
                    m.remove(k);
                }
                (Some(Value::Array(a)), Step::At(i)) if *i < a.len() => {
                    a.remove(*i);
                }
                _ => {}
            }
        }
        Op::Raw(_) if raw_key.is_some() => {}
        Op::Raw(_) => {
            if let Some(slot) = get_mut(root, &path) {
                *slot = Value::String(PLACEHOLDER.into());
                *raw_key = Some(match path.last() {
                    Some(Step::Key(k)) => k.clone(),
                    _ => "k".into(),
                });
            }
        }
    }
}

fn structural(text: &[u8]) -> Vec<usize> {
    text.iter().enumerate().filter(|(_, c)| b"{}[],:\"".contains(c)).map(|(i, _)| i).collect()
}

/// Inputs made from one of `seeds` by one to three structured edits, then
/// in one input of four by byte edits of the text.
pub fn mutated(seeds: Vec<Value>) -> impl Strategy<Value = Vec<u8>> {
    let seeds = Arc::new(seeds);
    let edits = prop::collection::vec((any::<Index>(), op()), 1..4);
    (any::<Index>(), edits, any::<u8>(), prop::option::weighted(0.25, bytes::mutated_text_edits())).prop_map(
        move |(s, edits, raw, byte_edits)| {
            let mut v = seeds[s.index(seeds.len())].clone();
            let mut raw_key = None;
            for (node, op) in &edits {
                apply(&mut v, node, op, &mut raw_key);
            }
            let mut text = serde_json::to_string(&v).expect("a Value serializes");
            if let Some(key) = raw_key {
                let chosen = RAW[raw as usize % RAW.len()].replace("@@KEY@@", &key);
                text = text.replacen(&format!("\"{PLACEHOLDER}\""), &chosen, 1);
            }
            let text = text.into_bytes();
            match byte_edits {
                Some(edits) => {
                    let seed = Seed { boundaries: structural(&text), bytes: text };
                    bytes::apply_edits(&seed, &edits)
                }
                None => text,
            }
        },
    )
}

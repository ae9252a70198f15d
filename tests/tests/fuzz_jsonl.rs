//! Fuzzing JSONL task files and verifier names: lines of a small valid
//! task mutated as bytes (truncation at line and field boundaries, invalid
//! UTF-8, extreme values) and as JSON (one line's object), loaded with each
//! verifier, including `regex:` patterns from the input. A task that loads
//! must score completions without a panic.

#[path = "../fuzz/harness/mod.rs"]
mod harness;

use std::path::Path;

use harness::bytes::{Seed, mutated as bytes_mutated};
use harness::json::mutated as json_mutated;
use harness::{Outcome, fuzz, names_file, scratch};
use proptest::prelude::*;
use serde_json::json;
use wapo_core::task::Split;
use wapo_core::task::text::TextTask;
use wapo_io::jsonl::JsonlTask;

const NAME: &str = "task.jsonl";

fn lines() -> Vec<serde_json::Value> {
    vec![
        json!({"prompt": "What is 2 + 3?", "answer": "#### 5"}),
        json!({"prompt": "Spell cat backwards, then count its letters.", "answer": "tac 3", "source": "toy"}),
        json!({"prompt": "What is 1,234 - 4?", "answer": "The result is 1,230."}),
        json!({"prompt": "What is 2 + 3?", "answer": "5"}),
    ]
}

fn file(lines: &[Vec<u8>]) -> Vec<u8> {
    lines.iter().flat_map(|l| l.iter().copied().chain([b'\n'])).collect()
}

/// The first byte picks the verifier (a pattern for `regex:` follows up
/// to the first newline), the rest is the file.
fn inputs() -> impl Strategy<Value = Vec<u8>> {
    let texts: Vec<Vec<u8>> = lines().iter().map(|l| l.to_string().into_bytes()).collect();
    let whole = file(&texts);
    let boundaries = whole.iter().enumerate().filter(|(_, c)| b"\n{}:,\"".contains(c)).map(|(i, _)| i).collect();
    let rest = texts[1..].to_vec();
    let files = prop_oneof![
        2 => bytes_mutated(vec![Seed { bytes: whole, boundaries }]),
        2 => json_mutated(vec![lines()[0].clone()]).prop_map(move |first| {
            let mut all = vec![first];
            all.extend(rest.iter().cloned());
            file(&all)
        }),
    ];
    let pattern = prop_oneof![Just("".to_string()), "[a-z(|)*+?\\\\{}0-9,^$.\\[\\]]{0,24}"];
    (0u8..4, pattern, files).prop_map(|(v, p, f)| {
        let mut out = vec![v];
        if v == 3 {
            out.extend(p.replace('\n', "").into_bytes());
            out.push(b'\n');
        }
        out.extend(f);
        out
    })
}

fn check(input: &[u8]) -> Result<Outcome, String> {
    let Some((&v, rest)) = input.split_first() else { return Ok(Outcome::Refused) };
    let (verifier, bytes) = match v % 4 {
        0 => ("exact".to_string(), rest),
        1 => ("numeric".to_string(), rest),
        2 => ("regex:^(ta|5)".to_string(), rest),
        _ => {
            let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
            (format!("regex:{}", String::from_utf8_lossy(&rest[..end])), rest.get(end + 1..).unwrap_or_default())
        }
    };
    let path = scratch("jsonl").join(NAME);
    std::fs::write(&path, bytes).map_err(|e| e.to_string())?;
    match JsonlTask::load(&path, &verifier, 7, 1usize) {
        Ok(t) => {
            for split in [Split::Train, Split::Heldout] {
                let e = t.example(split, 3);
                for completion in ["5", "#### 1230", "tac", "", "The answer is 5."] {
                    let r = t.reward(&e, completion);
                    if r != 0.0 && r != 1.0 {
                        return Err(format!("reward {r} for `{completion}`"));
                    }
                }
            }
            Ok(Outcome::Accepted)
        }
        Err(e) => names_file(&e.to_string(), Path::new(NAME)),
    }
}

#[test]
fn the_seed_is_valid() {
    let texts: Vec<Vec<u8>> = lines().iter().map(|l| l.to_string().into_bytes()).collect();
    for v in 0..3u8 {
        let mut input = vec![v];
        input.extend(file(&texts));
        assert_eq!(check(&input), Ok(Outcome::Accepted), "verifier {v}");
    }
    harness::drop_scratch("jsonl");
}

#[test]
fn fuzz_jsonl() {
    fuzz("jsonl", inputs(), check);
}

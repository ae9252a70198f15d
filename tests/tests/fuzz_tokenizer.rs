//! Fuzzing the tokenizer files of a model directory: `tokenizer.json`,
//! `tokenizer_config.json` and `generation_config.json` of the tiny
//! byte-level BPE, one of them mutated as JSON per input. A tokenizer that
//! loads must encode and decode without a panic; a refusal must name the
//! file. (The GGUF tokenizer metadata is fuzzed with the GGUF reader.)

#[path = "../fuzz/harness/mod.rs"]
mod harness;

use std::path::Path;

use harness::json::mutated;
use harness::{Outcome, fuzz, names_file, scratch};
use proptest::prelude::*;
use serde_json::{Value, json};
use wapo_io::tokenizer::{Tokenizer, tiny};

const FILES: [&str; 3] = ["tokenizer.json", "tokenizer_config.json", "generation_config.json"];

/// The seed files, in the order of [`FILES`].
fn seed_files() -> Vec<Vec<u8>> {
    let dir = scratch("tokenizer-seed");
    tiny().save(&dir).expect("saving the tiny tokenizer");
    let mut out: Vec<Vec<u8>> = FILES[..2].iter().map(|f| std::fs::read(dir.join(f)).expect("a seed file")).collect();
    out.push(json!({"bos_token_id": 1, "eos_token_id": [0, 2]}).to_string().into_bytes());
    let _ = std::fs::remove_dir_all(&dir);
    out
}

/// One byte naming the file, then its new contents.
fn inputs() -> impl Strategy<Value = Vec<u8>> {
    let files = seed_files();
    let json = |i: usize| -> Value { serde_json::from_slice(&files[i]).expect("a seed is JSON") };
    let tagged = |i: u8, s: Vec<Value>| {
        mutated(s).prop_map(move |b| {
            let mut out = vec![i];
            out.extend(b);
            out
        })
    };
    prop_oneof![
        2 => tagged(0, vec![json(0)]),
        1 => tagged(1, vec![json(1)]),
        1 => tagged(2, vec![json(2)]),
    ]
}

fn check(input: &[u8]) -> Result<Outcome, String> {
    let Some((&which, bytes)) = input.split_first() else { return Ok(Outcome::Refused) };
    let which = usize::from(which) % FILES.len();
    let dir = scratch("tokenizer");
    if !dir.join(FILES[2]).is_file() {
        for (f, b) in FILES.iter().zip(seed_files()) {
            std::fs::write(dir.join(f), b).map_err(|e| e.to_string())?;
        }
    }
    let file = dir.join(FILES[which]);
    std::fs::write(&file, bytes).map_err(|e| e.to_string())?;
    let result = match which {
        0 => Tokenizer::from_file(&file).and_then(|_| Tokenizer::from_hf_dir(&dir)),
        _ => Tokenizer::from_hf_dir(&dir),
    };
    let restore = std::fs::write(&file, &seed_files()[which]).map_err(|e| e.to_string());
    let outcome = match result {
        Ok(t) => {
            let ids = t.encode("Hello world, 12 + 30 = 42<|im_end|>").map_err(|e| format!("encoding: {e}"))?;
            t.decode(&ids, true).map_err(|e| format!("decoding its own ids: {e}"))?;
            Outcome::Accepted
        }
        Err(e) => names_file(&e.to_string(), Path::new(FILES[which]))
            // A broken tokenizer.json may be reported by the file that refers to it.
            .or_else(|m| if FILES.iter().any(|f| e.to_string().contains(f)) { Ok(Outcome::Refused) } else { Err(m) })?,
    };
    restore?;
    Ok(outcome)
}

#[test]
fn the_seeds_are_valid() {
    for (i, (name, bytes)) in FILES.iter().zip(seed_files()).enumerate() {
        let mut input = vec![i as u8];
        input.extend(bytes);
        assert_eq!(check(&input), Ok(Outcome::Accepted), "{name}");
    }
    harness::drop_scratch("tokenizer");
}

#[test]
fn fuzz_tokenizer() {
    fuzz("tokenizer", inputs(), check);
}

//! Fuzzing the checkpoint reader: a checkpoint of a small CPU policy as
//! `checkpoint::save` writes it (checksummed, `wapo-rs/2`) and the same
//! rewritten as an unchecked `wapo-rs/1` file, so that mutations also reach
//! what lies past the checksum (shapes, dtypes, names, the train state).
//! Both the full load and the parameters-only load must refuse clearly.

#[path = "../fuzz/harness/mod.rs"]
mod harness;

use std::cell::RefCell;

use harness::bytes::{Seed, mutated as bytes_mutated};
use harness::json::mutated as json_mutated;
use harness::{Outcome, fuzz, scratch};
use proptest::prelude::*;
use serde_json::Value;
use wapo_core::host::HostTensor;
use wapo_core::rl::{ModelConfig, TrainState};
use wapo_cpu::model::CpuModel;
use wapo_io::checkpoint;

type Policy = CpuModel<HostTensor<f32>>;

fn cfg() -> ModelConfig {
    ModelConfig::gpt(6, 4, 4, 1, 2, 8)
}

thread_local! {
    static POLICY: RefCell<Policy> = RefCell::new(Policy::new(cfg(), 1).expect("a small policy"));
}

/// The reader's errors say `checkpoint:` and why (the caller adds the
/// path); the policy's, on loading what the reader accepted, name the tensor.
fn clear(e: &wapo_core::Error) -> Result<Outcome, String> {
    let m = e.to_string();
    match m.split_once("checkpoint: ") {
        Some((_, reason)) if !reason.trim().is_empty() => Ok(Outcome::Refused),
        None if m.matches('`').count() >= 2 => Ok(Outcome::Refused),
        _ => Err(format!("neither a checkpoint error with a reason nor one naming a tensor: {m}")),
    }
}

fn check(bytes: &[u8]) -> Result<Outcome, String> {
    let path = scratch("checkpoint").join("last.safetensors");
    std::fs::write(&path, bytes).map_err(|e| e.to_string())?;
    POLICY.with(|p| {
        let mut p = p.borrow_mut();
        if let Err(e) = checkpoint::load_parameters(&path, &mut *p) {
            clear(&e)?;
        }
        match checkpoint::load(&path, &mut *p) {
            Ok(_) => Ok(Outcome::Accepted),
            Err(e) => clear(&e),
        }
    })
}

fn split(file: &[u8]) -> (Value, Vec<u8>) {
    let n = u64::from_le_bytes(file[..8].try_into().expect("8 bytes")) as usize;
    (serde_json::from_slice(&file[8..8 + n]).expect("the header is JSON"), file[8 + n..].to_vec())
}

fn frame(header: &[u8], data: &[u8]) -> Vec<u8> {
    let mut header = header.to_vec();
    // The format pads the header with spaces to a multiple of 8.
    header.resize(header.len().next_multiple_of(8), b' ');
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&header);
    out.extend_from_slice(data);
    out
}

/// The checked seed and its unchecked rewrite.
fn seeds() -> Vec<Vec<u8>> {
    let path = scratch("checkpoint-seed").join("seed.safetensors");
    let policy = Policy::new(cfg(), 7).expect("a small policy");
    let mut state = TrainState::new(3);
    state.rl_steps = 2;
    checkpoint::save(&path, &policy, &state).expect("saving the seed");
    let checked = std::fs::read(&path).expect("reading the seed");
    let _ = std::fs::remove_dir_all(path.parent().expect("a directory"));
    let (mut header, data) = split(&checked);
    let meta = header.get_mut("__metadata__").and_then(Value::as_object_mut).expect("metadata");
    meta.remove("checksum");
    meta.insert("format".into(), "wapo-rs/1".into());
    let unchecked = frame(header.to_string().as_bytes(), &data);
    vec![checked, unchecked]
}

fn inputs() -> impl Strategy<Value = Vec<u8>> {
    let seeds = seeds();
    let parts: Vec<(Value, Vec<u8>)> = seeds.iter().map(|s| split(s)).collect();
    let (h0, d0) = parts[0].clone();
    let (h1, d1) = parts[1].clone();
    let raw: Vec<Seed> = seeds
        .into_iter()
        .map(|bytes| {
            let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
            let mut boundaries = vec![0, 8, 8 + n];
            boundaries.extend((8..8 + n).filter(|&i| b"[]{},:".contains(&bytes[i])));
            Seed { bytes, boundaries }
        })
        .collect();
    prop_oneof![
        1 => json_mutated(vec![h0]).prop_map(move |h| frame(&h, &d0)),
        3 => json_mutated(vec![h1]).prop_map(move |h| frame(&h, &d1)),
        2 => bytes_mutated(raw),
    ]
}

#[test]
fn the_seeds_are_valid() {
    for s in seeds() {
        assert_eq!(check(&s), Ok(Outcome::Accepted));
    }
    harness::drop_scratch("checkpoint");
}

#[test]
fn fuzz_checkpoint() {
    fuzz("checkpoint", inputs(), check);
}

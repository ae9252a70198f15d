//! Fuzzing the readers of a Hugging Face model directory: `config.json`
//! (then checked against weights, as a load does), a single
//! `model.safetensors` (its JSON header mutated and re-framed, or its bytes
//! edited), and the `model.safetensors.index.json` of a sharded checkpoint.
//! Seeds come from `write_model_dir` and `write_config` for a small llama,
//! qwen2 and mistral model.

#[path = "../fuzz/harness/mod.rs"]
mod harness;

use std::path::Path;

use harness::bytes::{Seed, mutated as bytes_mutated};
use harness::json::mutated as json_mutated;
use harness::{Outcome, fuzz, names_file, scratch};
use proptest::prelude::*;
use serde_json::{Value, json};
use wapo_core::rl::{Layout, ModelConfig, Named, RopeScaling};
use wapo_io::hf::tensors::read_sharded;
use wapo_io::hf::{check_against, load_model_dir, read_config, write_config, write_model_dir};

fn model(qkv_bias: bool) -> (ModelConfig, Vec<Named>) {
    let mut cfg = ModelConfig::llama(16, 8, 8, 1, 2, 1, 8, 10_000.0);
    cfg.tied_embeddings = !qkv_bias;
    cfg.qkv_bias = qkv_bias;
    cfg.validate().expect("seed config");
    let tensors = Layout::new(&cfg)
        .entries
        .iter()
        .map(|e| Named {
            name: e.name.clone(),
            shape: e.shape.clone(),
            data: (0..e.range.len()).map(|i| i as f32 * 0.01).collect(),
        })
        .collect();
    (cfg, tensors)
}

fn configs() -> Vec<Value> {
    let (llama, _) = model(false);
    let (qwen, _) = model(true);
    let mut scaled = llama;
    scaled.rope_scaling =
        RopeScaling::Llama3 { factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_context: 4.0 };
    vec![
        write_config(&llama, "LlamaForCausalLM", "llama", Some(1), &[2]),
        write_config(&qwen, "Qwen2ForCausalLM", "qwen2", None, &[2, 3]),
        write_config(&llama, "MistralForCausalLM", "mistral", Some(1), &[]),
        write_config(&scaled, "LlamaForCausalLM", "llama", Some(1), &[2]),
    ]
}

fn clear(e: &wapo_io::Error, file: &str) -> Result<Outcome, String> {
    if e.reason.is_empty() {
        return Err(format!("an error without a reason: {e}"));
    }
    names_file(&e.to_string(), Path::new(file))
}

/// `config.json` as a load reads it: parsed, then the weights checked
/// against it (a claimed size must not build a layout the weights cannot fill).
fn check_config(bytes: &[u8]) -> Result<Outcome, String> {
    let file = scratch("hf_config").join("config.json");
    std::fs::write(&file, bytes).map_err(|e| e.to_string())?;
    let hf = match read_config(&file) {
        Ok(hf) => hf,
        Err(e) => return clear(&e, "config.json"),
    };
    let (_, tensors) = model(hf.config.qkv_bias);
    match check_against(&hf.config, tensors, &file) {
        Ok(_) => Ok(Outcome::Accepted),
        Err(e) => clear(&e, "config.json"),
    }
}

/// A directory with the small llama model, its weights replaced by `bytes`.
fn check_weights(bytes: &[u8]) -> Result<Outcome, String> {
    let dir = scratch("hf_safetensors");
    let config = dir.join("config.json");
    if !config.is_file() {
        let (cfg, _) = model(false);
        let text = write_config(&cfg, "LlamaForCausalLM", "llama", Some(1), &[2]).to_string();
        std::fs::write(&config, text).map_err(|e| e.to_string())?;
    }
    std::fs::write(dir.join("model.safetensors"), bytes).map_err(|e| e.to_string())?;
    match load_model_dir(&dir) {
        Ok(_) => Ok(Outcome::Accepted),
        Err(e) => clear(&e, "model.safetensors"),
    }
}

/// A safetensors file of `tensors` (f32), framed by the format's definition:
/// an 8-byte little-endian header length, the JSON header, the data.
fn safetensors(tensors: &[(&str, Vec<usize>)]) -> (Value, Vec<u8>) {
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (name, shape) in tensors {
        let n: usize = shape.iter().product();
        let start = data.len();
        data.extend((0..n).flat_map(|i| (i as f32).to_le_bytes()));
        header.insert(name.to_string(), json!({"dtype": "F32", "shape": shape, "data_offsets": [start, data.len()]}));
    }
    (Value::Object(header), data)
}

fn frame(header: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header);
    out.extend_from_slice(data);
    out
}

fn weights_seed() -> Vec<u8> {
    let dir = scratch("hf_seed");
    let (cfg, tensors) = model(false);
    write_model_dir(&dir, &cfg, "LlamaForCausalLM", "llama", &tensors, Some(1), &[2]).expect("seed directory");
    let bytes = std::fs::read(dir.join("model.safetensors")).expect("seed weights");
    let _ = std::fs::remove_dir_all(&dir);
    bytes
}

/// Header mutations re-framed with the new length, and raw byte edits.
fn weights_inputs() -> impl Strategy<Value = Vec<u8>> {
    let seed = weights_seed();
    let n = u64::from_le_bytes(seed[..8].try_into().expect("8 bytes")) as usize;
    let header: Value = serde_json::from_slice(&seed[8..8 + n]).expect("seed header");
    let data = seed[8 + n..].to_vec();
    let mut boundaries = vec![0, 8, 8 + n];
    boundaries.extend(seed[8..8 + n].iter().enumerate().filter(|(_, c)| b"[]{},:".contains(c)).map(|(i, _)| 8 + i));
    prop_oneof![
        3 => json_mutated(vec![header]).prop_map(move |h| frame(&h, &data)),
        1 => bytes_mutated(vec![Seed { bytes: seed, boundaries }]),
    ]
}

const SHARDS: [&str; 2] = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"];

/// The sharded small model, its index replaced by `bytes`.
fn check_index(bytes: &[u8]) -> Result<Outcome, String> {
    let dir = scratch("hf_index");
    let (_, tensors) = model(false);
    if !dir.join(SHARDS[1]).is_file() {
        let (first, second) = tensors.split_at(2);
        for (shard, part) in SHARDS.iter().zip([first, second]) {
            let list: Vec<(&str, Vec<usize>)> = part.iter().map(|t| (t.name.as_str(), t.shape.clone())).collect();
            let (header, data) = safetensors(&list);
            let bytes = frame(header.to_string().as_bytes(), &data);
            std::fs::write(dir.join(shard), bytes).map_err(|e| e.to_string())?;
        }
    }
    let index = dir.join("model.safetensors.index.json");
    std::fs::write(&index, bytes).map_err(|e| e.to_string())?;
    match read_sharded(&index) {
        Ok(_) => Ok(Outcome::Accepted),
        Err(e) => {
            // A shard's own error names the shard; the index's names the index.
            let m = e.to_string();
            if SHARDS.iter().any(|s| m.contains(s)) {
                Ok(Outcome::Refused)
            } else {
                clear(&e, "model.safetensors.index.json")
            }
        }
    }
}

fn index_seed() -> Value {
    let (_, tensors) = model(false);
    let map: serde_json::Map<String, Value> =
        tensors.iter().enumerate().map(|(i, t)| (t.name.clone(), json!(SHARDS[usize::from(i >= 2)]))).collect();
    json!({"metadata": {"total_size": 0}, "weight_map": map})
}

#[test]
fn the_seeds_are_valid() {
    for c in configs() {
        assert_eq!(check_config(c.to_string().as_bytes()), Ok(Outcome::Accepted), "{c}");
    }
    assert_eq!(check_weights(&weights_seed()), Ok(Outcome::Accepted));
    assert_eq!(check_index(index_seed().to_string().as_bytes()), Ok(Outcome::Accepted));
    for target in ["hf_config", "hf_safetensors", "hf_index"] {
        harness::drop_scratch(target);
    }
}

#[test]
fn fuzz_hf_config() {
    fuzz("hf_config", json_mutated(configs()), check_config);
}

#[test]
fn fuzz_hf_safetensors() {
    fuzz("hf_safetensors", weights_inputs(), check_weights);
}

#[test]
fn fuzz_hf_index() {
    fuzz("hf_index", json_mutated(vec![index_seed()]), check_index);
}

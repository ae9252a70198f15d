//! Every malformed input is an error naming the file and the key.

use std::fs;
use std::path::Path;

use crate::Error;
use crate::tokenizer::{GgufVocab, Tokenizer, tiny, tiny_vocab};

#[track_caller]
fn assert_names(e: Error, file: &Path, at: Option<&str>, says: &str) {
    assert_eq!(e.file, file, "{e}");
    assert_eq!(e.at.as_deref(), at, "{e}");
    assert!(e.reason.contains(says), "`{says}` not in: {e}");
}

fn gguf(v: GgufVocab) -> Error {
    Tokenizer::from_gguf_vocab(&v, Path::new("m.gguf")).unwrap_err()
}

#[test]
fn gguf_vocab() {
    let file = Path::new("m.gguf");
    let e = gguf(GgufVocab { model: "llama".into(), ..tiny_vocab() });
    assert_names(e, file, Some("tokenizer.ggml.model"), "`llama`");
    let e = gguf(GgufVocab { pre: Some("deepseek-coder".into()), ..tiny_vocab() });
    assert_names(e, file, Some("tokenizer.ggml.pre"), "`deepseek-coder`");

    let mut v = tiny_vocab();
    v.merges.push("Ġ zz".into());
    assert_names(gguf(v), file, Some("tokenizer.ggml.merges[43]"), "`zz` is not in the vocabulary");
    let mut v = tiny_vocab();
    v.merges.push("h".into());
    assert_names(gguf(v), file, Some("tokenizer.ggml.merges[43]"), "not two tokens");
    // Both halves known, their join not.
    let mut v = tiny_vocab();
    v.merges.push("x y".into());
    assert_names(gguf(v), file, Some("tokenizer.ggml.merges[43]"), "`xy`");

    let mut v = tiny_vocab();
    v.tokens[100] = v.tokens[99].clone();
    assert_names(gguf(v), file, Some("tokenizer.ggml.tokens[100]"), "also token 99");
    let mut v = tiny_vocab();
    v.token_types.pop();
    assert_names(gguf(v), file, Some("tokenizer.ggml.token_type"), "301 types for 302 tokens");
    let e = gguf(GgufVocab { eos: Some(302), ..tiny_vocab() });
    assert_names(e, file, Some("tokenizer.ggml.eos_token_id"), "302");
    let e = gguf(GgufVocab { add_bos: Some(true), bos: None, ..tiny_vocab() });
    assert_names(e, file, Some("tokenizer.ggml.add_bos_token"), "no BOS");
    let e = gguf(GgufVocab { tokens: Vec::new(), merges: Vec::new(), token_types: Vec::new(), ..tiny_vocab() });
    assert_names(e, file, Some("tokenizer.ggml.tokens"), "no tokens");
}

/// A directory holding the tiny tokenizer with `file` replaced by `text`.
fn dir_with(name: &str, file: &str, text: &str) -> std::path::PathBuf {
    let dir = super::temp_dir(name);
    tiny().save(&dir).unwrap();
    fs::write(dir.join(file), text).unwrap();
    dir
}

#[test]
fn tokenizer_json() {
    let json = |name: &str, text: &str| {
        let dir = dir_with(name, "tokenizer.json", text);
        let path = dir.join("tokenizer.json");
        (Tokenizer::from_file(&path).unwrap_err(), path)
    };
    let (e, path) = json("json-not", "{\"model\": ");
    assert_names(e, &path, None, "not JSON");
    let (e, path) = json("json-array", "[]");
    assert_names(e, &path, None, "not a JSON object");
    let (e, path) = json("json-no-model", "{\"version\": \"1.0\"}");
    assert_names(e, &path, Some("model"), "missing");

    let good: serde_json::Value = serde_json::from_str(&tiny().inner().to_string(false).unwrap()).unwrap();
    let mut bad = good.clone();
    bad["pre_tokenizer"] = serde_json::json!({"type": "NoSuchPreTokenizer"});
    let (e, path) = json("json-pre", &bad.to_string());
    assert_names(e, &path, Some("pre_tokenizer"), "");
    let mut bad = good.clone();
    bad["model"]["merges"].as_array_mut().unwrap().push(serde_json::json!(["Ġ", "zz"]));
    let (e, path) = json("json-merge", &bad.to_string());
    assert_names(e, &path, Some("model.merges[43]"), "`zz` is not in model.vocab");
    let mut bad = good;
    bad["model"]["vocab"] = serde_json::json!(7);
    let (e, path) = json("json-vocab", &bad.to_string());
    assert_names(e, &path, Some("model"), "");
}

#[test]
fn tokenizer_config_json() {
    let config = |name: &str, text: &str| {
        let dir = dir_with(name, "tokenizer_config.json", text);
        (Tokenizer::from_hf_dir(&dir).unwrap_err(), dir.join("tokenizer_config.json"))
    };
    let (e, path) = config("cfg-not", "{");
    assert_names(e, &path, None, "not JSON");
    let (e, path) = config("cfg-bos", r#"{"bos_token": 5}"#);
    assert_names(e, &path, Some("bos_token"), "expected");
    let (e, path) = config("cfg-eos", r#"{"eos_token": {"content": "<|nope|>"}}"#);
    assert_names(e, &path, Some("eos_token"), "`<|nope|>` is not a token");
    let (e, path) = config("cfg-eos-obj", r#"{"eos_token": {"text": "<|im_end|>"}}"#);
    assert_names(e, &path, Some("eos_token"), "content");
    let (e, path) = config("cfg-add", r#"{"add_bos_token": "yes"}"#);
    assert_names(e, &path, Some("add_bos_token"), "true or false");
    let (e, path) = config("cfg-add-nobos", r#"{"add_bos_token": true}"#);
    assert_names(e, &path, Some("add_bos_token"), "no BOS");
    let (e, path) = config("cfg-tpl", r#"{"chat_template": 3}"#);
    assert_names(e, &path, Some("chat_template"), "expected");
    let (e, path) = config("cfg-tpl-list", r#"{"chat_template": [{"name": "tool_use", "template": "x"}]}"#);
    assert_names(e, &path, Some("chat_template"), "`default`");
    let (e, path) = config("cfg-tpl-entry", r#"{"chat_template": [{"name": "default"}]}"#);
    assert_names(e, &path, Some("chat_template[0]"), "template");
}

#[test]
fn generation_config_json() {
    let generation = |name: &str, text: &str| {
        let dir = dir_with(name, "generation_config.json", text);
        (Tokenizer::from_hf_dir(&dir).unwrap_err(), dir.join("generation_config.json"))
    };
    let (e, path) = generation("gen-str", r#"{"eos_token_id": "x"}"#);
    assert_names(e, &path, Some("eos_token_id"), "not a token id");
    let (e, path) = generation("gen-range", r#"{"eos_token_id": [0, 4000]}"#);
    assert_names(e, &path, Some("eos_token_id"), "4000");
    let (e, path) = generation("gen-neg", r#"{"bos_token_id": -1}"#);
    assert_names(e, &path, Some("bos_token_id"), "not a token id");
}

#[test]
fn decode_refuses_unknown_ids() {
    let e = tiny().decode(&[5, 302], false).unwrap_err();
    assert!(e.reason.contains("302"), "{e}");
}

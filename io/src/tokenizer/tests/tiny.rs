//! The tiny tokenizer: its encodings worked out by hand from its merges,
//! and the same encodings after every way of reading it back.

use crate::tokenizer::{GgufVocab, Tokenizer, tiny, tiny_vocab};
use std::path::Path;

const TEXTS: [&str; 6] = [
    "the cat is in the hat",
    " 12345+678=",
    "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
    "Grüße, 世界! 🙂",
    "  and\n\nthen  ",
    "<|endoftext|>",
];

#[test]
fn encodes_as_its_merges_say() {
    let t = tiny();
    // Specials 0..3, byte b at 3 + b, merge of rank r at 259 + r.
    let (ids, tokens) = t.encode_tokens("<|im_start|>user\nhi<|im_end|>").unwrap();
    assert_eq!(tokens, ["<|im_start|>", "u", "s", "er", "Ċ", "hi", "<|im_end|>"]);
    assert_eq!(ids, [1, 3 + b'u' as u32, 3 + b's' as u32, 259 + 5, 3 + b'\n' as u32, 259 + 39, 2]);
    // Digits one by one, then the GPT-2 split: " the " is " the" and " ".
    let (ids, tokens) = t.encode_tokens(" the 2024 cat").unwrap();
    assert_eq!(tokens, ["Ġthe", "Ġ", "2", "0", "2", "4", "Ġc", "at"]);
    assert_eq!(ids[0], 259 + 4);
}

#[test]
fn decodes_what_it_encodes() {
    let t = tiny();
    for s in TEXTS {
        assert_eq!(t.decode(&t.encode(s).unwrap(), false).unwrap(), s);
    }
    let ids = t.encode("<|im_start|>hi<|im_end|>").unwrap();
    assert_eq!(t.decode(&ids, true).unwrap(), "hi");
}

#[test]
fn specials() {
    let t = tiny();
    assert_eq!(t.vocab_size(), 3 + 256 + 43);
    assert_eq!(t.bos(), None);
    // <|endoftext|>, then <|im_end|>: no template, so ChatML's end of turn.
    assert_eq!(t.eos(), [0, 2]);
    for (id, s) in ["<|endoftext|>", "<|im_start|>", "<|im_end|>"].into_iter().enumerate() {
        assert_eq!(t.encode(s).unwrap(), [id as u32]);
        assert_eq!(t.encode(&format!("a{s}b")).unwrap().len(), 3);
    }
}

fn assert_same(a: &Tokenizer, b: &Tokenizer) {
    for s in TEXTS {
        assert_eq!(a.encode_tokens(s).unwrap(), b.encode_tokens(s).unwrap(), "{s:?}");
        let ids = a.encode(s).unwrap();
        assert_eq!(a.decode(&ids, true).unwrap(), b.decode(&ids, true).unwrap());
    }
    assert_eq!((a.bos(), a.eos(), a.add_bos()), (b.bos(), b.eos(), b.add_bos()));
    assert_eq!((a.vocab_size(), a.chat_template()), (b.vocab_size(), b.chat_template()));
}

#[test]
fn gguf_vocab_rebuilds_it() {
    let v = tiny_vocab();
    assert_eq!(v.tokens.len(), tiny().vocab_size());
    let rebuilt = Tokenizer::from_gguf_vocab(&v, Path::new("tiny.gguf")).unwrap();
    assert_same(&rebuilt, &tiny());
}

#[test]
fn saved_directory_reads_back_alike() {
    let dir = super::temp_dir("tiny-save");
    tiny().save(&dir).unwrap();
    let back = Tokenizer::from_hf_dir(&dir).unwrap();
    assert_same(&back, &tiny());
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("tokenizer_config.json")).unwrap()).unwrap();
    assert_eq!(config["tokenizer_class"], "PreTrainedTokenizerFast");
    assert_eq!(config["eos_token"], "<|endoftext|>");
    assert_eq!(config["add_bos_token"], false);
    // tokenizer.json alone: its post-processor adds nothing either.
    let alone = Tokenizer::from_file(&dir.join("tokenizer.json")).unwrap();
    assert_eq!(alone.encode("the cat").unwrap(), tiny().encode("the cat").unwrap());
    let _ = std::fs::remove_dir_all(&dir);
}

fn with_pre(pre: &str) -> GgufVocab {
    GgufVocab { pre: Some(pre.into()), ..tiny_vocab() }
}

#[test]
fn llama3_vocab_adds_bos_and_keeps_it_when_saved() {
    let v = GgufVocab { bos: Some(1), add_bos: None, ..with_pre("llama-bpe") };
    let t = Tokenizer::from_gguf_vocab(&v, Path::new("llama3.gguf")).unwrap();
    assert_eq!(t.add_bos(), Some(true), "llama.cpp adds BOS for llama-bpe by default");
    assert_eq!(t.encode("hi").unwrap(), [1, 259 + 39]);
    // Digits in threes, where SmolLM2 takes them one by one.
    let (_, tokens) = t.encode_tokens(" 12345 2000").unwrap();
    assert_eq!(tokens, ["<|im_start|>", "Ġ", "12", "3", "4", "5", "Ġ", "20", "0", "0"]);
    let dir = super::temp_dir("llama3-save");
    t.save(&dir).unwrap();
    let back = Tokenizer::from_hf_dir(&dir).unwrap();
    assert_same(&back, &t);
    // The saved tokenizer.json adds BOS by itself, as transformers reads it.
    let alone = Tokenizer::from_file(&dir.join("tokenizer.json")).unwrap();
    assert_eq!(alone.encode("hi").unwrap(), [1, 259 + 39]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn other_pre_tokenizers_build_and_round_trip() {
    for pre in ["gpt2", "default", "qwen2", "llama-bpe"] {
        let t = Tokenizer::from_gguf_vocab(&GgufVocab { add_bos: Some(false), ..with_pre(pre) }, Path::new("x.gguf"))
            .unwrap();
        for s in TEXTS {
            assert_eq!(t.decode(&t.encode(s).unwrap(), false).unwrap(), s, "{pre}: {s:?}");
        }
    }
    let gpt2 = Tokenizer::from_gguf_vocab(&with_pre("gpt2"), Path::new("x.gguf")).unwrap();
    let (_, tokens) = gpt2.encode_tokens(" 12345").unwrap();
    assert_eq!(tokens, ["Ġ", "12", "3", "4", "5"], "GPT-2 keeps digits together");
    for one_by_one in [tiny(), Tokenizer::from_gguf_vocab(&with_pre("qwen2"), Path::new("x.gguf")).unwrap()] {
        let (_, tokens) = one_by_one.encode_tokens(" 12345").unwrap();
        assert_eq!(tokens, ["Ġ", "1", "2", "3", "4", "5"]);
    }
    let no_pre = Tokenizer::from_gguf_vocab(&GgufVocab { pre: None, ..tiny_vocab() }, Path::new("x.gguf")).unwrap();
    assert_eq!(no_pre.encode("the hat").unwrap(), gpt2.encode("the hat").unwrap());
}

#[test]
fn hf_directory_special_tokens() {
    let dir = super::temp_dir("hf-specials");
    tiny().save(&dir).unwrap();
    let config = serde_json::json!({
        "bos_token": {"content": "<|im_start|>", "lstrip": false, "special": true},
        "eos_token": "<|endoftext|>",
        "add_bos_token": true,
        "chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D <|im_start|>"}],
    });
    std::fs::write(dir.join("tokenizer_config.json"), config.to_string()).unwrap();
    std::fs::write(dir.join("generation_config.json"), r#"{"bos_token_id": 1, "eos_token_id": [0, 1]}"#).unwrap();
    let t = Tokenizer::from_hf_dir(&dir).unwrap();
    assert_eq!(t.bos(), Some(1));
    // eos_token, generation_config's list, then the template's end of turn.
    assert_eq!(t.eos(), [0, 1]);
    assert_eq!(t.chat_template(), Some("D <|im_start|>"));
    assert_eq!(t.add_bos(), Some(true));
    assert_eq!(t.encode("hi").unwrap(), [1, 259 + 39]);

    // No tokenizer_config.json: the template from chat_template.jinja, eos
    // from generation_config.json alone.
    std::fs::remove_file(dir.join("tokenizer_config.json")).unwrap();
    std::fs::write(dir.join("chat_template.jinja"), "<|im_start|>{{ x }}<|im_end|>").unwrap();
    std::fs::write(dir.join("generation_config.json"), r#"{"eos_token_id": 2}"#).unwrap();
    let t = Tokenizer::from_hf_dir(&dir).unwrap();
    assert_eq!((t.bos(), t.eos(), t.add_bos()), (None, &[2][..], None));
    assert_eq!(t.chat_template(), Some("<|im_start|>{{ x }}<|im_end|>"));
    assert_eq!(t.encode("hi").unwrap(), [259 + 39]);
    let _ = std::fs::remove_dir_all(&dir);
}

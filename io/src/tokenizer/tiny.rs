//! A small byte-level BPE for tests that need a real tokenizer but not a
//! real model's: SmolLM2's layout (specials first, then the 256 bytes, then
//! the merges' results) and pipeline, in 302 tokens.

use std::path::Path;

use serde_json::{Value, json};

use super::{GgufVocab, Specials, Tokenizer};

const SPECIALS: [&str; 3] = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];
const EOS: u32 = 0;

/// Merges by rank, in the byte-level spelling: `Ġ` is a space, `Ċ` a newline.
const MERGES: [(&str, &str); 43] = [
    ("Ġ", "t"),
    ("h", "e"),
    ("Ġ", "a"),
    ("i", "n"),
    ("Ġt", "he"),
    ("e", "r"),
    ("o", "n"),
    ("r", "e"),
    ("a", "n"),
    ("Ġ", "s"),
    ("Ġ", "w"),
    ("i", "s"),
    ("Ġ", "c"),
    ("Ġ", "o"),
    ("e", "n"),
    ("o", "u"),
    ("Ġ", "b"),
    ("Ġ", "f"),
    ("Ġ", "m"),
    ("Ġ", "p"),
    ("Ġ", "h"),
    ("in", "g"),
    ("Ġ", "i"),
    ("Ġa", "n"),
    ("Ġan", "d"),
    ("l", "l"),
    ("e", "s"),
    ("a", "t"),
    ("o", "r"),
    ("Ġ", "d"),
    ("Ġ", "l"),
    ("Ġ", "n"),
    ("Ġ", "e"),
    ("Ċ", "Ċ"),
    ("Ġ", "Ġ"),
    ("Ġo", "f"),
    ("Ġt", "o"),
    ("Ġi", "s"),
    ("Ġi", "n"),
    ("h", "i"),
    // Never applied under SmolLM2's one-digit split, only where digits group.
    ("1", "2"),
    ("2", "0"),
    ("0", "0"),
];

/// GPT-2's byte-level alphabet: printable Latin-1 bytes stand for
/// themselves, the others, in order, for U+0100 onwards.
fn byte_char(b: u8) -> char {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    if printable(b) {
        char::from(b)
    } else {
        let rank = (0..b).filter(|&x| !printable(x)).count() as u32;
        char::from_u32(0x100 + rank).unwrap_or('\u{FFFD}')
    }
}

/// The tokens by id.
fn tokens() -> Vec<String> {
    let mut tokens: Vec<String> = SPECIALS.iter().map(|s| s.to_string()).collect();
    tokens.extend((0..=255u8).map(|b| byte_char(b).to_string()));
    tokens.extend(MERGES.iter().map(|(a, b)| format!("{a}{b}")));
    tokens
}

/// The tokenizer, written as Hugging Face's SmolLM2 `tokenizer.json` is
/// (digits one by one, then byte-level with the GPT-2 split), with
/// `<|endoftext|>` as end of sequence and no BOS.
pub fn tiny() -> Tokenizer {
    let vocab: serde_json::Map<String, Value> =
        tokens().into_iter().enumerate().map(|(id, t)| (t, json!(id))).collect();
    let added: Vec<Value> = SPECIALS
        .iter()
        .enumerate()
        .map(|(id, content)| {
            json!({"id": id, "content": content, "single_word": false, "lstrip": false,
                   "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    let byte_level = |add_prefix_space: bool, trim_offsets: bool| {
        json!({"type": "ByteLevel", "add_prefix_space": add_prefix_space,
               "trim_offsets": trim_offsets, "use_regex": true})
    };
    let document = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true},
            byte_level(false, true),
        ]},
        "post_processor": byte_level(true, false),
        "decoder": byte_level(true, true),
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null,
            "continuing_subword_prefix": null, "end_of_word_suffix": null,
            "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
            "vocab": vocab,
            "merges": MERGES.iter().map(|(a, b)| json!([a, b])).collect::<Vec<_>>(),
        },
    });
    let inner: tokenizers::Tokenizer =
        serde_json::from_value(document).expect("the tiny tokenizer's definition is a valid tokenizer.json");
    let specials = Specials { bos: None, eos: vec![EOS], add_bos: Some(false), chat_template: None };
    Tokenizer::assemble(inner, Path::new("<tiny tokenizer>"), specials)
        .expect("the tiny tokenizer's specials are in its vocabulary")
}

/// The same tokenizer as llama.cpp's GGUF metadata writes it.
pub fn tiny_vocab() -> GgufVocab {
    let tokens = tokens();
    let token_types = (0..tokens.len()).map(|id| if id < SPECIALS.len() { 3 } else { 1 }).collect();
    GgufVocab {
        model: "gpt2".into(),
        pre: Some("smollm".into()),
        tokens,
        merges: MERGES.iter().map(|(a, b)| format!("{a} {b}")).collect(),
        token_types,
        bos: None,
        eos: Some(EOS),
        unk: None,
        pad: None,
        add_bos: Some(false),
        chat_template: None,
    }
}

//! The tokenizer of SmolLM2-135M-Instruct rebuilt from its GGUF metadata,
//! against Hugging Face's tokenizer of that model (ids, tokens) and the
//! model's own metadata (specials, template).

use super::real_model_path;
use crate::gguf::{Gguf, read_vocab};
use crate::tokenizer::{GgufVocab, Tokenizer};

fn real() -> Option<(GgufVocab, Tokenizer)> {
    let path = real_model_path()?;
    let vocab = read_vocab(&Gguf::read(&path).expect("the model's GGUF file")).expect("the model's GGUF metadata");
    let tokenizer = Tokenizer::from_gguf_vocab(&vocab, &path).expect("the model's tokenizer");
    Some((vocab, tokenizer))
}

#[test]
fn encodes_as_hugging_face() {
    let Some((_, t)) = real() else { return };
    // Hugging Face's SmolLM2 tokenizer: "The capital of France is".
    assert_eq!(t.encode("The capital of France is").unwrap(), [504, 3575, 282, 4649, 314]);
    let (_, tokens) = t.encode_tokens(" 12345+678=").unwrap();
    assert_eq!(tokens, ["Ġ", "1", "2", "3", "4", "5", "+", "6", "7", "8", "="]);
}

#[test]
fn chat_markers_are_single_tokens() {
    let Some((_, t)) = real() else { return };
    let (ids, tokens) = t.encode_tokens("<|im_start|>user\nHi<|im_end|>").unwrap();
    assert_eq!(tokens.first().map(String::as_str), Some("<|im_start|>"));
    assert_eq!(tokens.last().map(String::as_str), Some("<|im_end|>"));
    assert_eq!(tokens.iter().filter(|t| t.contains("<|")).count(), 2, "{tokens:?}");
    assert_eq!((ids[0], ids[ids.len() - 1]), (1, 2));
    assert_eq!(t.decode(&ids, true).unwrap(), "user\nHi");
    assert_eq!(t.decode(&ids, false).unwrap(), "<|im_start|>user\nHi<|im_end|>");
}

#[test]
fn decodes_what_it_encodes() {
    let Some((_, t)) = real() else { return };
    for s in [
        "Grüße aus Köln, naïve café — ½ × 3 ≠ 7!",
        "日本語のテキスト、中文，한국어 🙂🚀 e\u{301}",
        "  two spaces,\ttab,\nnewline\r\n  trailing  ",
        "fn main() { println!(\"{}\", 0x1F); } // 12345",
    ] {
        let ids = t.encode(s).unwrap();
        assert_eq!(t.decode(&ids, false).unwrap(), s);
    }
}

#[test]
fn specials_are_the_files() {
    let Some((v, t)) = real() else { return };
    assert_eq!(t.vocab_size(), v.tokens.len());
    assert_eq!(t.vocab_size(), 49152);
    assert_eq!(t.bos(), v.bos);
    assert_eq!(t.bos(), Some(1));
    assert_eq!(t.token_str(1).as_deref(), Some("<|im_start|>"));
    // eos is <|im_end|>, which is also the template's end of turn.
    assert_eq!(t.eos(), [2]);
    assert_eq!(t.token_str(2).as_deref(), Some("<|im_end|>"));
    assert_eq!(t.add_bos(), Some(false));
    assert_eq!(t.chat_template(), v.chat_template.as_deref());
}

#[test]
fn chat_prompt_is_the_templates() {
    let Some((_, t)) = real() else { return };
    // SmolLM2-Instruct's template, rendered by hand for one user message.
    assert_eq!(
        t.chat_prompt("What is 2+2?", None).unwrap(),
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n\
         <|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"
    );
    assert_eq!(
        t.chat_prompt("Hi", Some("Be brief.")).unwrap(),
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    );
}

#[test]
fn saved_directory_reads_back_alike() {
    let Some((_, t)) = real() else { return };
    let dir = super::temp_dir("real-save");
    t.save(&dir).unwrap();
    let back = Tokenizer::from_hf_dir(&dir).unwrap();
    for s in ["The capital of France is", " 12345+678=", "<|im_start|>user\nHi<|im_end|>", "Grüße 🙂"] {
        assert_eq!(back.encode(s).unwrap(), t.encode(s).unwrap(), "{s:?}");
    }
    assert_eq!((back.bos(), back.eos(), back.add_bos()), (t.bos(), t.eos(), t.add_bos()));
    assert_eq!(back.chat_template(), t.chat_template());
    assert_eq!(back.vocab_size(), t.vocab_size());
    let _ = std::fs::remove_dir_all(&dir);
}

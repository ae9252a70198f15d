//! The tokenizer llama.cpp's `tokenizer.ggml.*` metadata describes, rebuilt
//! as the Hugging Face pipeline of the model it was converted from.

use std::collections::HashMap;
use std::path::Path;

use tokenizers::decoders::DecoderWrapper;
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::normalizers::{NFC, NormalizerWrapper};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::processors::PostProcessorWrapper;
use tokenizers::{AddedToken, SplitDelimiterBehavior};

use super::{GgufVocab, Specials, Tokenizer};
use crate::{Error, Result};

const KEY_MODEL: &str = "tokenizer.ggml.model";
const KEY_PRE: &str = "tokenizer.ggml.pre";
const KEY_TOKENS: &str = "tokenizer.ggml.tokens";
const KEY_MERGES: &str = "tokenizer.ggml.merges";
const KEY_TYPES: &str = "tokenizer.ggml.token_type";
const KEY_ADD_BOS: &str = "tokenizer.ggml.add_bos_token";

/// llama.cpp's token types that are matched in text before the model runs.
const TYPE_CONTROL: i32 = 3;
const TYPE_USER_DEFINED: i32 = 4;

/// The split of Llama 3's `tokenizer.json` (llama.cpp's `llama-bpe`).
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// The split of Qwen2's `tokenizer.json`: Llama 3's with one digit at a time.
const QWEN2_SPLIT: &str =
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// What `tokenizer.ggml.pre` selects.
struct Pre {
    normalizer: Option<NormalizerWrapper>,
    pre_tokenizer: PreTokenizerWrapper,
    /// A word that is itself in the vocabulary is one token (Llama 3).
    ignore_merges: bool,
    /// llama.cpp's default when `tokenizer.ggml.add_bos_token` is absent.
    add_bos: bool,
}

fn pre(name: Option<&str>, file: &Path) -> Result<Pre> {
    let split = |pattern: &str| -> Result<PreTokenizerWrapper> {
        let split = Split::new(SplitPattern::Regex(pattern.to_string()), SplitDelimiterBehavior::Isolated, false)
            .map_err(|e| Error::at(file, KEY_PRE, format!("the split pattern: {e}")))?;
        Ok(Sequence::new(vec![split.into(), ByteLevel::new(false, true, false).into()]).into())
    };
    let plain = |pre_tokenizer| Pre { normalizer: None, pre_tokenizer, ignore_merges: false, add_bos: false };
    Ok(match name {
        None | Some("default") | Some("gpt2") => plain(ByteLevel::new(false, true, true).into()),
        Some("smollm") => {
            plain(Sequence::new(vec![Digits::new(true).into(), ByteLevel::new(false, true, true).into()]).into())
        }
        Some("llama-bpe") => Pre { ignore_merges: true, add_bos: true, ..plain(split(LLAMA3_SPLIT)?) },
        Some("qwen2") => Pre { normalizer: Some(NFC.into()), ..plain(split(QWEN2_SPLIT)?) },
        Some(other) => {
            return Err(Error::at(
                file,
                KEY_PRE,
                format!("pre-tokenizer `{other}` is not supported (known: smollm, llama-bpe, qwen2, gpt2, default)"),
            ));
        }
    })
}

impl Tokenizer {
    /// The tokenizer that the GGUF metadata `v`, read from `file`, describes.
    /// Only byte-level BPE (`tokenizer.ggml.model = "gpt2"`) is supported.
    pub fn from_gguf_vocab(v: &GgufVocab, file: &Path) -> Result<Tokenizer> {
        if v.model != "gpt2" {
            return Err(Error::at(
                file,
                KEY_MODEL,
                format!("tokenizer model `{}` is not supported (only byte-level BPE, `gpt2`)", v.model),
            ));
        }
        let pre = pre(v.pre.as_deref(), file)?;
        if v.tokens.is_empty() {
            return Err(Error::at(file, KEY_TOKENS, "no tokens"));
        }
        if u32::try_from(v.tokens.len()).is_err() {
            return Err(Error::at(file, KEY_TOKENS, "more tokens than 32-bit ids address"));
        }
        if !v.token_types.is_empty() && v.token_types.len() != v.tokens.len() {
            return Err(Error::at(
                file,
                KEY_TYPES,
                format!("{} types for {} tokens", v.token_types.len(), v.tokens.len()),
            ));
        }

        let mut ids = HashMap::with_capacity(v.tokens.len());
        for (id, token) in v.tokens.iter().enumerate() {
            if let Some(first) = ids.insert(token.as_str(), id as u32) {
                return Err(Error::at(file, format!("{KEY_TOKENS}[{id}]"), format!("`{token}` is also token {first}")));
            }
        }
        let merges = v
            .merges
            .iter()
            .enumerate()
            .map(|(rank, merge)| {
                check_merge(merge, &ids).map_err(|r| Error::at(file, format!("{KEY_MERGES}[{rank}]"), r))
            })
            .collect::<Result<Vec<_>>>()?;
        let vocab: Vocab = ids.iter().map(|(t, &id)| (t.to_string(), id)).collect();
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .ignore_merges(pre.ignore_merges)
            .build()
            .map_err(|e| Error::at(file, KEY_MERGES, e.to_string()))?;

        let mut inner = tokenizers::Tokenizer::new(bpe);
        inner.with_normalizer(pre.normalizer);
        inner.with_pre_tokenizer(Some(pre.pre_tokenizer));
        inner.with_decoder(Some(DecoderWrapper::ByteLevel(ByteLevel::default())));

        let of_type = |wanted: i32| {
            v.token_types.iter().zip(&v.tokens).filter(move |(t, _)| **t == wanted).map(|(_, token)| token)
        };
        let control: Vec<AddedToken> =
            of_type(TYPE_CONTROL).map(|t| AddedToken::from(t.clone(), true).normalized(false)).collect();
        let user: Vec<AddedToken> =
            of_type(TYPE_USER_DEFINED).map(|t| AddedToken::from(t.clone(), false).normalized(false)).collect();
        inner.add_special_tokens(&control);
        inner.add_tokens(&user);

        let n = v.tokens.len();
        for (key, id) in [
            ("tokenizer.ggml.bos_token_id", v.bos),
            ("tokenizer.ggml.eos_token_id", v.eos),
            ("tokenizer.ggml.unknown_token_id", v.unk),
            ("tokenizer.ggml.padding_token_id", v.pad),
        ] {
            if let Some(id) = id.filter(|&id| id as usize >= n) {
                return Err(Error::at(file, key, format!("id {id} is outside the {n} tokens")));
            }
        }
        let add_bos = v.add_bos.unwrap_or(pre.add_bos);
        let bos_token = match (add_bos, v.bos) {
            (true, None) => {
                return Err(Error::at(file, KEY_ADD_BOS, "BOS is to be added but there is no BOS token id"));
            }
            (true, Some(id)) => Some((v.tokens[id as usize].as_str(), id)),
            (false, _) => None,
        };
        inner.with_post_processor(Some(post_processor(bos_token, file)?));

        let specials = Specials {
            bos: v.bos,
            eos: v.eos.into_iter().collect(),
            add_bos: Some(add_bos),
            chat_template: v.chat_template.clone(),
        };
        Tokenizer::assemble(inner, file, specials)
    }
}

/// `a b` as the pair it merges, both halves and the result in the vocabulary.
fn check_merge(merge: &str, ids: &HashMap<&str, u32>) -> std::result::Result<(String, String), String> {
    let (a, b) =
        merge.split_once(' ').ok_or_else(|| format!("merge `{merge}` is not two tokens separated by a space"))?;
    for part in [a, b, &format!("{a}{b}")] {
        if !ids.contains_key(part) {
            return Err(format!("merge `{merge}`: `{part}` is not in the vocabulary"));
        }
    }
    Ok((a.to_string(), b.to_string()))
}

/// Byte-level offsets, and BOS first when the model adds it, so that the
/// `tokenizer.json` written from this tokenizer encodes alike in
/// transformers.
fn post_processor(bos: Option<(&str, u32)>, file: &Path) -> Result<PostProcessorWrapper> {
    let byte_level = PostProcessorWrapper::ByteLevel(ByteLevel::new(true, false, true));
    let Some((bos, id)) = bos else {
        return Ok(byte_level);
    };
    let template = serde_json::json!({
        "type": "TemplateProcessing",
        "single": [
            {"SpecialToken": {"id": bos, "type_id": 0}},
            {"Sequence": {"id": "A", "type_id": 0}},
        ],
        "pair": [
            {"SpecialToken": {"id": bos, "type_id": 0}},
            {"Sequence": {"id": "A", "type_id": 0}},
            {"SpecialToken": {"id": bos, "type_id": 1}},
            {"Sequence": {"id": "B", "type_id": 1}},
        ],
        "special_tokens": {bos: {"id": bos, "ids": [id], "tokens": [bos]}},
    });
    let template: PostProcessorWrapper = serde_json::from_value(template)
        .map_err(|e| Error::at(file, "tokenizer.ggml.bos_token_id", format!("the BOS template: {e}")))?;
    Ok(PostProcessorWrapper::Sequence(tokenizers::processors::sequence::Sequence::new(vec![byte_level, template])))
}

//! One tokenizer type over the `tokenizers` crate: read from a Hugging Face
//! `tokenizer.json` (and the special tokens of its directory), or rebuilt
//! from the `tokenizer.ggml.*` metadata of a GGUF file; written back as a
//! directory Hugging Face transformers loads. [`chatml`] and
//! [`Tokenizer::chat_prompt`] render the ChatML conversation format.

mod chat;
mod gguf_vocab;
mod hf_files;
mod tiny;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use crate::{Error, Result};

pub use chat::chatml;
pub use tiny::{tiny, tiny_vocab};

/// A tokenizer as GGUF metadata stores it (`tokenizer.ggml.*`), the input of
/// [`Tokenizer::from_gguf_vocab`].
#[derive(Clone, Debug, Default)]
pub struct GgufVocab {
    /// `tokenizer.ggml.model`: "gpt2" (byte-level BPE), "llama" (SentencePiece), ...
    pub model: String,
    /// `tokenizer.ggml.pre`: "smollm", "llama-bpe", "qwen2", "gpt2", "default", ...
    pub pre: Option<String>,
    /// `tokenizer.ggml.tokens`, by id.
    pub tokens: Vec<String>,
    /// `tokenizer.ggml.merges`: "a b" pairs, by rank.
    pub merges: Vec<String>,
    /// `tokenizer.ggml.token_type` by id (1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte); empty if absent.
    pub token_types: Vec<i32>,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub unk: Option<u32>,
    pub pad: Option<u32>,
    /// `tokenizer.ggml.add_bos_token`.
    pub add_bos: Option<bool>,
    /// `tokenizer.chat_template`.
    pub chat_template: Option<String>,
}

/// A text tokenizer with the special tokens a model generates with.
#[derive(Clone, Debug)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    /// Where it came from, for the errors of encoding and decoding.
    source: PathBuf,
    /// One past the largest id, the embedding rows the tokenizer can address.
    vocab_size: usize,
    bos: Option<u32>,
    /// The model's end of sequence first, then every other id that ends generation.
    eos: Vec<u32>,
    /// `None`: the post-processor of `tokenizer.json` decides; `Some`: this
    /// decides, and the post-processor's special tokens are left out.
    add_bos: Option<bool>,
    chat_template: Option<String>,
}

/// What a reader knows of the special tokens before [`Tokenizer::assemble`].
struct Specials {
    bos: Option<u32>,
    eos: Vec<u32>,
    add_bos: Option<bool>,
    chat_template: Option<String>,
}

impl Tokenizer {
    /// Checks the special ids against the vocabulary and adds the chat
    /// template's end of turn to the ids that end generation.
    fn assemble(inner: tokenizers::Tokenizer, source: &Path, specials: Specials) -> Result<Self> {
        let vocab_size = inner.get_vocab(true).values().max().map_or(0, |&id| id as usize + 1);
        if vocab_size == 0 {
            return Err(Error::file(source, "the vocabulary is empty"));
        }
        let Specials { bos, mut eos, add_bos, chat_template } = specials;
        if add_bos == Some(true) && bos.is_none() {
            return Err(Error::file(source, "the model adds a BOS token but names none"));
        }
        let end_of_turn = chat::end_of_turn(chat_template.as_deref(), |t| inner.token_to_id(t));
        eos.extend(end_of_turn);
        let mut seen = Vec::with_capacity(eos.len());
        eos.retain(|id| {
            let first = !seen.contains(id);
            seen.push(*id);
            first
        });
        for &id in bos.iter().chain(&eos) {
            if id as usize >= vocab_size {
                return Err(Error::file(
                    source,
                    format!("special token id {id} is outside the vocabulary of {vocab_size}"),
                ));
            }
        }
        Ok(Tokenizer { inner, source: source.to_path_buf(), vocab_size, bos, eos, add_bos, chat_template })
    }

    fn encoding(&self, text: &str) -> Result<(tokenizers::Encoding, Option<u32>)> {
        let with_processor = self.add_bos.is_none();
        let encoding = self
            .inner
            .encode(text, with_processor)
            .map_err(|e| Error::file(&self.source, format!("encoding failed: {e}")))?;
        let bos = if self.add_bos == Some(true) { self.bos } else { None };
        Ok((encoding, bos))
    }

    /// The ids of `text`; special tokens written in it are single tokens,
    /// and BOS comes first when the model adds it.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let (encoding, bos) = self.encoding(text)?;
        Ok(bos.into_iter().chain(encoding.get_ids().iter().copied()).collect())
    }

    /// The ids of `text` as it continues a prompt: no BOS, no template
    /// tokens, special tokens written in it still single tokens.
    pub fn encode_continuation(&self, text: &str) -> Result<Vec<u32>> {
        let encoding =
            self.inner.encode(text, false).map_err(|e| Error::file(&self.source, format!("encoding failed: {e}")))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// The ids of `text` and their tokens as the vocabulary spells them
    /// (byte-level: `Ġ` for a space).
    pub fn encode_tokens(&self, text: &str) -> Result<(Vec<u32>, Vec<String>)> {
        let (encoding, bos) = self.encoding(text)?;
        let mut ids = Vec::with_capacity(encoding.len() + 1);
        let mut tokens = Vec::with_capacity(encoding.len() + 1);
        if let Some(bos) = bos {
            ids.push(bos);
            tokens.push(self.token_str(bos).unwrap_or_default());
        }
        ids.extend_from_slice(encoding.get_ids());
        tokens.extend_from_slice(encoding.get_tokens());
        Ok((ids, tokens))
    }

    /// The text of `ids`; an id outside the vocabulary is an error rather
    /// than silently dropped.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        if let Some(&id) = ids.iter().find(|&&id| self.inner.id_to_token(id).is_none()) {
            return Err(Error::file(
                &self.source,
                format!("token id {id} is not in the vocabulary of {}", self.vocab_size),
            ));
        }
        self.inner.decode(ids, skip_special).map_err(|e| Error::file(&self.source, format!("decoding failed: {e}")))
    }

    /// The token `id` as the vocabulary spells it.
    pub fn token_str(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// The id of the token spelled `token`, special tokens included.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// One past the largest id.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    pub fn bos(&self) -> Option<u32> {
        self.bos
    }

    /// Every id that ends generation, the model's end of sequence first.
    pub fn eos(&self) -> &[u32] {
        &self.eos
    }

    /// Whether [`Tokenizer::encode`] puts BOS first: `None` when the
    /// post-processor of `tokenizer.json` decides.
    pub fn add_bos(&self) -> Option<bool> {
        self.add_bos
    }

    /// The Jinja chat template, as the model ships it.
    pub fn chat_template(&self) -> Option<&str> {
        self.chat_template.as_deref()
    }

    /// The `tokenizers` tokenizer underneath.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }
}

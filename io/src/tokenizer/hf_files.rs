//! The tokenizer files of a Hugging Face model directory: `tokenizer.json`,
//! and the special tokens of `tokenizer_config.json` and
//! `generation_config.json`.

use std::fs;
use std::path::Path;

use serde_json::{Map, Value};

use super::{Specials, Tokenizer};
use crate::{Error, Result};

const TOKENIZER_JSON: &str = "tokenizer.json";
const TOKENIZER_CONFIG: &str = "tokenizer_config.json";
const GENERATION_CONFIG: &str = "generation_config.json";
/// Where newer transformers keep the template instead of `tokenizer_config.json`.
const CHAT_TEMPLATE_JINJA: &str = "chat_template.jinja";

impl Tokenizer {
    /// A Hugging Face `tokenizer.json` alone: no BOS or end of sequence is
    /// known, and its post-processor decides what [`Tokenizer::encode`] adds.
    pub fn from_file(path: &Path) -> Result<Tokenizer> {
        let none = Specials { bos: None, eos: Vec::new(), add_bos: None, chat_template: None };
        Tokenizer::assemble(read_tokenizer_json(path)?, path, none)
    }

    /// `tokenizer.json` of the directory `dir`, with the special tokens of
    /// its `tokenizer_config.json` and `generation_config.json` where they
    /// are there.
    pub fn from_hf_dir(dir: &Path) -> Result<Tokenizer> {
        let json_path = dir.join(TOKENIZER_JSON);
        let inner = read_tokenizer_json(&json_path)?;
        let id_of = |path: &Path, key: &str, token: String| {
            inner
                .token_to_id(&token)
                .ok_or_else(|| Error::at(path, key, format!("`{token}` is not a token of {}", json_path.display())))
        };

        let mut specials = Specials { bos: None, eos: Vec::new(), add_bos: None, chat_template: None };
        let config_path = dir.join(TOKENIZER_CONFIG);
        if let Some(config) = read_object(&config_path)? {
            if let Some(token) = token_field(&config, "bos_token", &config_path)? {
                specials.bos = Some(id_of(&config_path, "bos_token", token)?);
            }
            if let Some(token) = token_field(&config, "eos_token", &config_path)? {
                specials.eos.push(id_of(&config_path, "eos_token", token)?);
            }
            specials.add_bos = match config.get("add_bos_token") {
                None | Some(Value::Null) => None,
                Some(Value::Bool(b)) => Some(*b),
                Some(_) => return Err(Error::at(&config_path, "add_bos_token", "expected true or false")),
            };
            specials.chat_template = chat_template_field(&config, &config_path)?;
        }
        let jinja_path = dir.join(CHAT_TEMPLATE_JINJA);
        if specials.chat_template.is_none() && jinja_path.is_file() {
            specials.chat_template = Some(fs::read_to_string(&jinja_path).map_err(Error::io(&jinja_path))?);
        }

        let generation_path = dir.join(GENERATION_CONFIG);
        if let Some(generation) = read_object(&generation_path)? {
            let bos = ids_field(&generation, "bos_token_id", &generation_path)?;
            if specials.bos.is_none() {
                specials.bos = bos.first().copied();
            }
            let eos = ids_field(&generation, "eos_token_id", &generation_path)?;
            for (key, id) in bos.iter().map(|id| ("bos_token_id", id)).chain(eos.iter().map(|id| ("eos_token_id", id)))
            {
                if inner.id_to_token(*id).is_none() {
                    return Err(Error::at(
                        &generation_path,
                        key,
                        format!("id {id} is not a token of {}", json_path.display()),
                    ));
                }
            }
            specials.eos.extend(eos);
        }
        if specials.add_bos == Some(true) && specials.bos.is_none() {
            return Err(Error::at(&config_path, "add_bos_token", "true, but there is no BOS token"));
        }
        Tokenizer::assemble(inner, &json_path, specials)
    }

    /// Writes `tokenizer.json` and `tokenizer_config.json` into `dir` (made if
    /// missing) so that transformers' `AutoTokenizer` and
    /// [`Tokenizer::from_hf_dir`] load this tokenizer. The end-of-sequence
    /// ids beyond the first and the chat template's end of turn belong in the
    /// model's `generation_config.json`, which is not written here.
    pub fn save(&self, dir: &Path) -> Result<()> {
        fs::create_dir_all(dir).map_err(Error::io(dir))?;
        let json_path = dir.join(TOKENIZER_JSON);
        let json = self
            .inner
            .to_string(true)
            .map_err(|e| Error::file(&json_path, format!("serializing the tokenizer: {e}")))?;
        fs::write(&json_path, json).map_err(Error::io(&json_path))?;

        let name = |id: Option<u32>| id.and_then(|id| self.token_str(id)).map_or(Value::Null, Value::String);
        let mut config = Map::new();
        config.insert("tokenizer_class".into(), "PreTrainedTokenizerFast".into());
        config.insert("bos_token".into(), name(self.bos));
        config.insert("eos_token".into(), name(self.eos.first().copied()));
        if let Some(add_bos) = self.add_bos {
            config.insert("add_bos_token".into(), add_bos.into());
        }
        // transformers would otherwise rewrite " ." as "." when decoding.
        config.insert("clean_up_tokenization_spaces".into(), false.into());
        if let Some(template) = &self.chat_template {
            config.insert("chat_template".into(), template.as_str().into());
        }
        let config_path = dir.join(TOKENIZER_CONFIG);
        let text = serde_json::to_string_pretty(&Value::Object(config))
            .map_err(|e| Error::file(&config_path, e.to_string()))?;
        fs::write(&config_path, text).map_err(Error::io(&config_path))
    }
}

fn read_tokenizer_json(path: &Path) -> Result<tokenizers::Tokenizer> {
    let bytes = fs::read(path).map_err(Error::io(path))?;
    // `tokenizers` panics ("Helper") on a syntax error inside the decoder
    // object, or nesting there past serde_json's recursion limit, rather
    // than failing; a whole-file check first, which builds nothing, keeps
    // those errors. (Skipping a string does not check its UTF-8, hence its own check.)
    if let Err(e) = std::str::from_utf8(&bytes) {
        return Err(Error::file(path, format!("not UTF-8: {e}")));
    }
    serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).map_err(|e| Error::file(path, format!("not JSON: {e}")))?;
    if let Some(at) = too_deep(&bytes) {
        return Err(Error::file(path, format!("nested deeper than {MAX_DEPTH} levels at byte {at}")));
    }
    if let Some((key, reason)) = subword_prefix_failure(&bytes) {
        return Err(Error::at(path, key, reason));
    }
    tokenizers::Tokenizer::from_bytes(&bytes).map_err(|e| diagnose(path, &bytes, &e.to_string()))
}

/// Far deeper than any real `tokenizer.json` (a few levels), and far
/// enough below serde_json's limit of 128 for the buffering of untagged
/// enums in `tokenizers` to stay under it.
const MAX_DEPTH: usize = 32;

/// The offset where JSON text (already known valid) nests past [`MAX_DEPTH`].
fn too_deep(bytes: &[u8]) -> Option<usize> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (i, &b) in bytes.iter().enumerate() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Some(i);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// The first merge whose second token `tokenizers` would cut inside: it
/// drops the BPE model's `continuing_subword_prefix` from that token by the
/// prefix's byte length, and panics when the token is shorter or the cut
/// falls inside a character.
fn subword_prefix_failure(bytes: &[u8]) -> Option<(String, String)> {
    const KEY: &[u8] = b"continuing_subword_prefix";
    if !bytes.windows(KEY.len()).any(|w| w == KEY) {
        return None;
    }
    let value: Value = serde_json::from_slice(bytes).ok()?;
    let model = value.get("model")?;
    let prefix = model.get("continuing_subword_prefix")?.as_str()?;
    let merges = model.get("merges")?.as_array()?;
    merges.iter().enumerate().find_map(|(rank, merge)| {
        let second = match merge {
            Value::String(s) => s.split_once(' ')?.1,
            Value::Array(pair) => pair.get(1)?.as_str()?,
            _ => return None,
        };
        (!second.is_char_boundary(prefix.len())).then(|| {
            (
                format!("model.merges[{rank}]"),
                format!("its second token `{second}` does not begin with model.continuing_subword_prefix `{prefix}`"),
            )
        })
    })
}

/// Names the part of a `tokenizer.json` that `tokenizers` refused, by
/// reading each part on its own; its own message says only what was wrong.
fn diagnose(path: &Path, bytes: &[u8], whole: &str) -> Error {
    let value: Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e) => return Error::file(path, format!("not JSON: {e}")),
    };
    let Some(object) = value.as_object() else {
        return Error::file(path, "not a JSON object");
    };
    if !object.contains_key("model") {
        return Error::at(path, "model", "missing");
    }
    fn part<T: serde::de::DeserializeOwned>(object: &Map<String, Value>, key: &str) -> Option<String> {
        let value = object.get(key)?.clone();
        serde_json::from_value::<T>(value).err().map(|e| e.to_string())
    }
    use tokenizers::{DecoderWrapper, ModelWrapper, NormalizerWrapper, PostProcessorWrapper, PreTokenizerWrapper};
    let failures = [
        ("normalizer", part::<Option<NormalizerWrapper>>(object, "normalizer")),
        ("pre_tokenizer", part::<Option<PreTokenizerWrapper>>(object, "pre_tokenizer")),
        ("post_processor", part::<Option<PostProcessorWrapper>>(object, "post_processor")),
        ("decoder", part::<Option<DecoderWrapper>>(object, "decoder")),
        ("added_tokens", part::<Vec<tokenizers::AddedToken>>(object, "added_tokens")),
    ];
    if let Some((key, reason)) = failures.into_iter().find_map(|(k, r)| r.map(|r| (k, r))) {
        return Error::at(path, key, reason);
    }
    if let Some((key, reason)) = object.get("model").and_then(bpe_merge_failure) {
        return Error::at(path, key, reason);
    }
    if let Some(reason) = part::<ModelWrapper>(object, "model") {
        return Error::at(path, "model", reason);
    }
    Error::file(path, whole.to_string())
}

/// The first merge of a BPE model whose halves or result are not in its
/// vocabulary, as `model.merges[rank]`.
fn bpe_merge_failure(model: &Value) -> Option<(String, String)> {
    let vocab = model.get("vocab")?.as_object()?;
    let merges = model.get("merges")?.as_array()?;
    merges.iter().enumerate().find_map(|(rank, merge)| {
        let (a, b) = match merge {
            Value::String(s) => s.split_once(' ')?,
            Value::Array(pair) => match pair.as_slice() {
                [Value::String(a), Value::String(b)] => (a.as_str(), b.as_str()),
                _ => return None,
            },
            _ => return None,
        };
        let joined = format!("{a}{b}");
        let missing = [a, b, joined.as_str()].into_iter().find(|t| !vocab.contains_key(*t))?;
        Some((format!("model.merges[{rank}]"), format!("merge `{a} {b}`: `{missing}` is not in model.vocab")))
    })
}

/// The JSON object in `path`, or `None` when there is no such file.
fn read_object(path: &Path) -> Result<Option<Map<String, Value>>> {
    if !path.exists() {
        return Ok(None);
    }
    let bytes = fs::read(path).map_err(Error::io(path))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(object)) => Ok(Some(object)),
        Ok(_) => Err(Error::file(path, "not a JSON object")),
        Err(e) => Err(Error::file(path, format!("not JSON: {e}"))),
    }
}

/// A special token written as its text or as `{"content": text, ..}`.
fn token_field(config: &Map<String, Value>, key: &str, path: &Path) -> Result<Option<String>> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Object(o)) => match o.get("content") {
            Some(Value::String(s)) => Ok(Some(s.clone())),
            _ => Err(Error::at(path, key, "an object without a string `content`")),
        },
        Some(_) => Err(Error::at(path, key, "expected a token's text or {\"content\": text}")),
    }
}

/// The template as a string, or the one named "default" of a list of
/// `{"name", "template"}`.
fn chat_template_field(config: &Map<String, Value>, path: &Path) -> Result<Option<String>> {
    const KEY: &str = "chat_template";
    match config.get(KEY) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Array(list)) => {
            for (i, entry) in list.iter().enumerate() {
                let name = entry.get("name").and_then(Value::as_str);
                let template = entry.get("template").and_then(Value::as_str);
                match (name, template) {
                    (Some("default"), Some(t)) => return Ok(Some(t.to_string())),
                    (Some(_), Some(_)) => {}
                    _ => {
                        return Err(Error::at(
                            path,
                            format!("{KEY}[{i}]"),
                            "expected {\"name\": string, \"template\": string}",
                        ));
                    }
                }
            }
            Err(Error::at(path, KEY, "no template is named `default`"))
        }
        Some(_) => Err(Error::at(path, KEY, "expected a string or a list of named templates")),
    }
}

/// Token ids written as one integer or a list of them.
fn ids_field(config: &Map<String, Value>, key: &str, path: &Path) -> Result<Vec<u32>> {
    let id = |v: &Value| {
        v.as_u64()
            .and_then(|id| u32::try_from(id).ok())
            .ok_or_else(|| Error::at(path, key, format!("`{v}` is not a token id")))
    };
    match config.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(list)) => list.iter().map(id).collect(),
        Some(v) => Ok(vec![id(v)?]),
    }
}

//! Writing GGUF v3 files: metadata and tensors, each tensor's data aligned
//! to `general.alignment` (32 unless set), and [`write_llama`], the inverse
//! of [`super::load_llama`].

use std::path::{Path, PathBuf};

use wapo_core::rl::{Family, Layout, ModelConfig, Named, RopeScaling};

use super::llama::{ARCHITECTURES, hf_to_gguf, permute_rows, rotary_heads};
use super::value::{Array, Value};
use super::{DEFAULT_ALIGNMENT, GgmlType, quant};
use crate::error::{Error, Result};
use crate::tokenizer::GgufVocab;

struct Tensor {
    name: String,
    /// ggml order, fastest first.
    dims: Vec<u64>,
    ty: GgmlType,
    bytes: Vec<u8>,
}

/// A GGUF v3 file being assembled in memory, written to `path`.
pub struct GgufWriter {
    path: PathBuf,
    metadata: Vec<(String, Value)>,
    tensors: Vec<Tensor>,
}

impl GgufWriter {
    pub fn new(path: &Path) -> Self {
        GgufWriter { path: path.to_path_buf(), metadata: Vec::new(), tensors: Vec::new() }
    }

    /// Sets `key` (replacing an earlier value; metadata keeps first-set order).
    pub fn set(&mut self, key: impl Into<String>, value: Value) {
        let key = key.into();
        match self.metadata.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => *v = value,
            None => self.metadata.push((key, value)),
        }
    }

    /// Adds a tensor from row-major f32 data (`shape` outermost first), stored as `ty`.
    pub fn add_tensor(&mut self, name: &str, shape: &[usize], data: &[f32], ty: GgmlType) -> Result<()> {
        let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        if n != Some(data.len()) {
            return Err(Error::at(&self.path, name, format!("shape {shape:?} does not hold {} values", data.len())));
        }
        let row_len = shape.last().copied().unwrap_or(1);
        let bytes = quant::quantize(&self.path, name, ty, row_len, data)?;
        let dims = shape.iter().rev().map(|&d| d as u64).collect();
        self.add_raw(name, dims, ty, bytes)
    }

    /// Adds a tensor's stored bytes as they are (dims in ggml order, fastest
    /// first), for types this crate cannot quantize.
    pub fn add_raw(&mut self, name: &str, dims: Vec<u64>, ty: GgmlType, bytes: Vec<u8>) -> Result<()> {
        if self.tensors.iter().any(|t| t.name == name) {
            return Err(Error::at(&self.path, name, "tensor added twice"));
        }
        self.tensors.push(Tensor { name: name.to_string(), dims, ty, bytes });
        Ok(())
    }

    fn alignment(&self) -> Result<usize> {
        match self.metadata.iter().find(|(k, _)| k == "general.alignment") {
            None => Ok(DEFAULT_ALIGNMENT),
            Some((_, Value::U32(a))) if a.is_power_of_two() => Ok(*a as usize),
            Some((k, v)) => Err(Error::at(&self.path, k.clone(), format!("{v:?} is not a u32 power of two"))),
        }
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let alignment = self.alignment()?;
        let mut out = Vec::new();
        out.extend_from_slice(b"GGUF");
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        for (k, v) in &self.metadata {
            put_str(&mut out, k);
            out.extend_from_slice(&v.type_id().to_le_bytes());
            put_value(&mut out, v);
        }
        let mut offset = 0usize;
        for t in &self.tensors {
            put_str(&mut out, &t.name);
            out.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.extend_from_slice(&t.ty.0.to_le_bytes());
            out.extend_from_slice(&(offset as u64).to_le_bytes());
            offset = (offset + t.bytes.len()).div_ceil(alignment) * alignment;
        }
        pad(&mut out, alignment);
        for t in &self.tensors {
            out.extend_from_slice(&t.bytes);
            pad(&mut out, alignment);
        }
        Ok(out)
    }

    pub fn write(&self) -> Result<()> {
        let bytes = self.to_bytes()?;
        std::fs::write(&self.path, bytes).map_err(Error::io(&self.path))
    }
}

fn pad(out: &mut Vec<u8>, alignment: usize) {
    out.resize(out.len().div_ceil(alignment) * alignment, 0);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::U8(x) => out.push(*x),
        Value::I8(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::Bool(x) => out.push(u8::from(*x)),
        Value::Str(s) => put_str(out, s),
        Value::Array(a) => put_array(out, a),
    }
}

fn put_array(out: &mut Vec<u8>, a: &Array) {
    out.extend_from_slice(&a.elem_type_id().to_le_bytes());
    out.extend_from_slice(&(a.len() as u64).to_le_bytes());
    fn each<T: Copy>(out: &mut Vec<u8>, v: &[T], f: impl Fn(T) -> Value) {
        v.iter().for_each(|&x| put_value(out, &f(x)));
    }
    match a {
        Array::U8(v) => out.extend_from_slice(v),
        Array::I8(v) => each(out, v, Value::I8),
        Array::U16(v) => each(out, v, Value::U16),
        Array::I16(v) => each(out, v, Value::I16),
        Array::U32(v) => each(out, v, Value::U32),
        Array::I32(v) => each(out, v, Value::I32),
        Array::U64(v) => each(out, v, Value::U64),
        Array::I64(v) => each(out, v, Value::I64),
        Array::F32(v) => each(out, v, Value::F32),
        Array::F64(v) => each(out, v, Value::F64),
        Array::Bool(v) => each(out, v, Value::Bool),
        Array::Str(v) => v.iter().for_each(|s| put_str(out, s)),
        Array::Array(v) => v.iter().for_each(|a| put_array(out, a)),
    }
}

/// Writes a llama-family model as llama.cpp would: GGUF names, the llama
/// rotary row order for `architecture == "llama"`, `{arch}.*` and
/// `tokenizer.*` metadata, each tensor stored as `type_of(hf_name)`
/// (norm gains and biases are one row, so a block type needs C to be a
/// multiple of 32). `tensors` must be exactly those of `Layout::new(config)`.
pub fn write_llama(
    path: &Path,
    config: &ModelConfig,
    architecture: &str,
    tensors: &[Named],
    vocab: &GgufVocab,
    type_of: impl Fn(&str) -> GgmlType,
) -> Result<()> {
    let fail = |at: &str, reason: String| Err(Error::at(path, at, reason));
    if config.family != Family::Llama {
        return Err(Error::file(path, "only llama-family models are written as GGUF"));
    }
    config.validate().map_err(|e| Error::file(path, format!("invalid model config: {e}")))?;
    if !ARCHITECTURES.contains(&architecture) {
        return fail(
            "general.architecture",
            format!("architecture `{architecture}` is not supported (llama and qwen2 are)"),
        );
    }
    if architecture == "qwen2" && !config.qkv_bias {
        return fail("general.architecture", "qwen2 models have q/k/v biases; the config has none".into());
    }
    if config.rope_scaling != RopeScaling::None {
        return Err(Error::file(path, "rope scaling is not supported in GGUF files here"));
    }

    let mut w = GgufWriter::new(path);
    w.set("general.architecture", Value::Str(architecture.into()));
    let k = |s: &str| format!("{architecture}.{s}");
    let uints = [
        ("context_length", config.context),
        ("embedding_length", config.channels),
        ("block_count", config.layers),
        ("feed_forward_length", config.mlp),
        ("attention.head_count", config.heads),
        ("attention.head_count_kv", config.kv_heads),
        ("rope.dimension_count", config.head_size()),
        ("vocab_size", config.vocab),
    ];
    for (key, x) in uints {
        let Ok(x) = u32::try_from(x) else {
            return fail(&k(key), format!("{x} does not fit in u32"));
        };
        w.set(k(key), Value::U32(x));
    }
    w.set(k("attention.layer_norm_rms_epsilon"), Value::F32(config.norm_eps as f32));
    w.set(k("rope.freq_base"), Value::F32(config.rope_theta as f32));
    if !vocab.tokens.is_empty() && vocab.tokens.len() != config.vocab {
        return fail(
            "tokenizer.ggml.tokens",
            format!("{} tokens for a vocabulary of {}", vocab.tokens.len(), config.vocab),
        );
    }
    set_vocab(&mut w, vocab);

    let layout = Layout::new(config);
    if let Some(extra) = tensors.iter().find(|t| !layout.entries.iter().any(|e| e.name == t.name)) {
        return fail(&extra.name, "not a tensor of this model".into());
    }
    for e in &layout.entries {
        let t = tensors.iter().find(|t| t.name == e.name).ok_or_else(|| Error::at(path, e.name.clone(), "missing"))?;
        if t.shape != e.shape || t.data.len() != e.range.len() {
            return fail(&e.name, format!("shape {:?} given, {:?} expected by the config", t.shape, e.shape));
        }
        let name = hf_to_gguf(&e.name).ok_or_else(|| Error::at(path, e.name.clone(), "no GGUF name"))?;
        let data = match rotary_heads(architecture, &e.name, config) {
            Some(n_head) => permute_rows(&t.data, e.shape.get(1).copied().unwrap_or(1), n_head),
            None => t.data.clone(),
        };
        w.add_tensor(&name, &e.shape, &data, type_of(&e.name))?;
    }
    w.write()
}

fn set_vocab(w: &mut GgufWriter, v: &GgufVocab) {
    let strs = |s: &[String]| Value::Array(Array::Str(s.to_vec()));
    w.set("tokenizer.ggml.model", Value::Str(v.model.clone()));
    if let Some(pre) = &v.pre {
        w.set("tokenizer.ggml.pre", Value::Str(pre.clone()));
    }
    if !v.tokens.is_empty() {
        w.set("tokenizer.ggml.tokens", strs(&v.tokens));
    }
    if !v.merges.is_empty() {
        w.set("tokenizer.ggml.merges", strs(&v.merges));
    }
    if !v.token_types.is_empty() {
        w.set("tokenizer.ggml.token_type", Value::Array(Array::I32(v.token_types.clone())));
    }
    let ids = [
        ("tokenizer.ggml.bos_token_id", v.bos),
        ("tokenizer.ggml.eos_token_id", v.eos),
        ("tokenizer.ggml.unknown_token_id", v.unk),
        ("tokenizer.ggml.padding_token_id", v.pad),
    ];
    for (key, id) in ids {
        if let Some(id) = id {
            w.set(key, Value::U32(id));
        }
    }
    if let Some(b) = v.add_bos {
        w.set("tokenizer.ggml.add_bos_token", Value::Bool(b));
    }
    if let Some(t) = &v.chat_template {
        w.set("tokenizer.chat_template", Value::Str(t.clone()));
    }
}

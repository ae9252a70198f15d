//! Safetensors weights: `model.safetensors` or shards listed in
//! `model.safetensors.index.json`, converted to f32, then checked against
//! the tensors a [`ModelConfig`] has.
//!
//! The header is parsed here rather than by the `safetensors` crate, which
//! wants the whole file in memory: every claimed length and offset is checked
//! against the file's real size first, then each wanted tensor is read on
//! its own, so the peak is the f32 model plus one tensor's bytes.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path};

use serde_json::Value;
use wapo_core::rl::{Family, Layout, ModelConfig, Named};

use crate::error::{Error, Result};

pub const SINGLE_FILE: &str = "model.safetensors";
pub const INDEX_FILE: &str = "model.safetensors.index.json";

/// The safetensors crate's own limit on the JSON header.
const MAX_HEADER: u64 = 100_000_000;

/// Tensors a checkpoint may carry that the model recomputes.
const HARMLESS_SUFFIXES: [&str; 1] = ["rotary_emb.inv_freq"];

/// The weights of the model directory `dir`, in file order, as f32.
pub fn read_tensors(dir: &Path) -> Result<Vec<Named>> {
    let single = dir.join(SINGLE_FILE);
    if single.is_file() {
        return read_safetensors(&single);
    }
    let index = dir.join(INDEX_FILE);
    if index.is_file() {
        return read_sharded(&index);
    }
    Err(Error::file(dir, format!("no {SINGLE_FILE} or {INDEX_FILE}")))
}

/// Every tensor of one safetensors file, as f32.
pub fn read_safetensors(path: &Path) -> Result<Vec<Named>> {
    let (mut file, header) = open(path)?;
    header.entries.iter().map(|e| read_entry(path, &mut file, &header, e)).collect()
}

/// The tensors of a sharded checkpoint: `index` is its
/// `model.safetensors.index.json`; each shard is opened once.
pub fn read_sharded(index: &Path) -> Result<Vec<Named>> {
    let bytes = std::fs::read(index).map_err(Error::io(index))?;
    let value: Value =
        serde_json::from_slice(&bytes).map_err(|e| Error::file(index, format!("not valid JSON: {e}")))?;
    let map = value
        .get("weight_map")
        .and_then(Value::as_object)
        .ok_or_else(|| Error::at(index, "weight_map", "missing, or not an object of tensor → shard file"))?;
    let mut shards: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (tensor, shard) in map {
        let shard = shard.as_str().ok_or_else(|| {
            Error::at(index, format!("weight_map.{tensor}"), format!("must be a file name, found {shard}"))
        })?;
        // A shard sits next to the index; anything else is not a checkpoint of this directory.
        let mut parts = Path::new(shard).components();
        if !matches!((parts.next(), parts.next()), (Some(Component::Normal(_)), None)) {
            return Err(Error::at(
                index,
                format!("weight_map.{tensor}"),
                format!("`{shard}` is not a plain file name"),
            ));
        }
        shards.entry(shard).or_default().push(tensor);
    }
    let dir = index.parent().unwrap_or(Path::new("."));
    let mut out = Vec::with_capacity(map.len());
    for (shard, names) in shards {
        let path = dir.join(shard);
        if !path.is_file() {
            return Err(Error::at(
                &path,
                names[0],
                format!("shard missing: {INDEX_FILE} places {} tensor(s) in it", names.len()),
            ));
        }
        let (mut file, header) = open(&path)?;
        let by_name: HashMap<&str, &Entry> = header.entries.iter().map(|e| (e.name.as_str(), e)).collect();
        let mut wanted = Vec::with_capacity(names.len());
        for name in names {
            let e = by_name
                .get(name)
                .ok_or_else(|| Error::at(&path, name, format!("listed in {INDEX_FILE} but absent from this shard")))?;
            wanted.push(*e);
        }
        // File order keeps the reads sequential.
        wanted.sort_by_key(|e| e.start);
        for e in wanted {
            out.push(read_entry(&path, &mut file, &header, e)?);
        }
    }
    Ok(out)
}

/// `tensors` in the order of `Layout::new(cfg).entries`, each of its shape.
/// A tied model's `lm_head.weight` is dropped when it is a copy of the
/// embedding; recomputed buffers (`rotary_emb.inv_freq`) are dropped.
/// Anything missing, misshapen or left over is an error naming `file`.
pub fn check_against(cfg: &ModelConfig, tensors: Vec<Named>, file: &Path) -> Result<Vec<Named>> {
    let mut by_name: HashMap<String, Named> = HashMap::with_capacity(tensors.len());
    for t in tensors {
        if by_name.contains_key(&t.name) {
            return Err(Error::at(file, t.name, "appears twice"));
        }
        by_name.insert(t.name.clone(), t);
    }
    check_held(cfg, &by_name, file)?;
    let layout = Layout::new(cfg);
    let mut out = Vec::with_capacity(layout.entries.len());
    for e in &layout.entries {
        let t = by_name.remove(&e.name).ok_or_else(|| Error::at(file, &e.name, "missing"))?;
        if t.shape != e.shape {
            return Err(Error::at(
                file,
                &e.name,
                format!("shape {:?} in the file, {:?} for the model of config.json", t.shape, e.shape),
            ));
        }
        out.push(t);
    }
    if cfg.tied_embeddings
        && let Some(head) = by_name.remove("lm_head.weight")
    {
        let embed = &out[0];
        let same =
            head.shape == embed.shape && head.data.iter().zip(&embed.data).all(|(a, b)| a.to_bits() == b.to_bits());
        if !same {
            return Err(Error::at(
                file,
                "lm_head.weight",
                "tie_word_embeddings is true but lm_head.weight differs from model.embed_tokens.weight",
            ));
        }
    }
    by_name.retain(|name, _| !HARMLESS_SUFFIXES.iter().any(|s| name.ends_with(s)));
    if let Some(name) = by_name.keys().min() {
        return Err(Error::at(
            file,
            name,
            format!("not a tensor of the model of config.json ({} unexpected in all)", by_name.len()),
        ));
    }
    Ok(out)
}

/// Refuses a config whose sizes the weights cannot hold, before the layout
/// they imply is built: `config.json` may claim 2^64 − 1 layers or a
/// 2^40-row embedding, which would size the layout (and overflow its
/// offsets) rather than be an error.
fn check_held(cfg: &ModelConfig, by_name: &HashMap<String, Named>, file: &Path) -> Result<()> {
    if cfg.family != Family::Llama {
        // The names below are the llama family's; only it is read from config.json.
        return Ok(());
    }
    // Every layer has several tensors; the exact ones missing are named later.
    if cfg.layers > by_name.len() {
        return Err(Error::at(
            file,
            "num_hidden_layers",
            format!("{} layers in config.json, but the weights have only {} tensors", cfg.layers, by_name.len()),
        ));
    }
    for (name, shape) in [
        ("model.embed_tokens.weight", [cfg.vocab, cfg.channels]),
        ("model.layers.0.mlp.up_proj.weight", [cfg.mlp, cfg.channels]),
        ("model.layers.0.self_attn.k_proj.weight", [cfg.kv_channels(), cfg.channels]),
    ] {
        let t = by_name.get(name).ok_or_else(|| Error::at(file, name, "missing"))?;
        if t.shape != shape {
            return Err(Error::at(
                file,
                name,
                format!("shape {:?} in the file, {shape:?} for the model of config.json", t.shape),
            ));
        }
    }
    Ok(())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dtype {
    F32,
    F16,
    BF16,
}

impl Dtype {
    fn size(self) -> u64 {
        match self {
            Dtype::F32 => 4,
            Dtype::F16 | Dtype::BF16 => 2,
        }
    }
}

/// One tensor of the header; offsets are into the data section.
struct Entry {
    name: String,
    dtype: Dtype,
    shape: Vec<usize>,
    start: u64,
    end: u64,
}

struct Header {
    /// Where the data section starts in the file: 8 + header length.
    data_at: u64,
    /// In file order.
    entries: Vec<Entry>,
}

fn open(path: &Path) -> Result<(File, Header)> {
    let mut file = File::open(path).map_err(Error::io(path))?;
    let len = file.metadata().map_err(Error::io(path))?.len();
    let mut n = [0u8; 8];
    if len < 8 {
        return Err(Error::file(path, format!("truncated: {len} bytes, not even the 8-byte header length")));
    }
    file.read_exact(&mut n).map_err(Error::io(path))?;
    let n = u64::from_le_bytes(n);
    if n > len - 8 {
        return Err(Error::file(path, format!("header length {n} exceeds the {} bytes after it", len - 8)));
    }
    if n > MAX_HEADER {
        return Err(Error::file(path, format!("header length {n} exceeds the format's limit of {MAX_HEADER}")));
    }
    let mut json = vec![0u8; n as usize];
    file.read_exact(&mut json).map_err(Error::io(path))?;
    let header: serde_json::Map<String, Value> =
        serde_json::from_slice(&json).map_err(|e| Error::file(path, format!("header is not a JSON object: {e}")))?;
    let data_len = len - 8 - n;
    let mut entries = header
        .iter()
        .filter(|(name, _)| name.as_str() != "__metadata__")
        .map(|(name, info)| parse_entry(path, name, info, data_len))
        .collect::<Result<Vec<_>>>()?;
    entries.sort_by_key(|e| (e.start, e.end));
    for pair in entries.windows(2) {
        if pair[1].start < pair[0].end {
            return Err(Error::at(path, &pair[1].name, format!("its bytes overlap those of `{}`", pair[0].name)));
        }
    }
    Ok((file, Header { data_at: 8 + n, entries }))
}

fn parse_entry(path: &Path, name: &str, info: &Value, data_len: u64) -> Result<Entry> {
    let bad = |reason: String| Error::at(path, name, reason);
    let dtype = match info.get("dtype").and_then(Value::as_str) {
        Some("F32") => Dtype::F32,
        Some("F16") => Dtype::F16,
        Some("BF16") => Dtype::BF16,
        Some(other) => return Err(bad(format!("dtype {other} is not supported (F32, F16, BF16)"))),
        None => return Err(bad("no dtype string".into())),
    };
    let shape = info
        .get("shape")
        .and_then(Value::as_array)
        .and_then(|dims| {
            dims.iter().map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok())).collect::<Option<Vec<_>>>()
        })
        .ok_or_else(|| bad("shape is not a list of non-negative integers".into()))?;
    let offsets = info
        .get("data_offsets")
        .and_then(Value::as_array)
        .and_then(|o| match o.as_slice() {
            [s, e] => Some((s.as_u64()?, e.as_u64()?)),
            _ => None,
        })
        .ok_or_else(|| bad("data_offsets is not a pair of non-negative integers".into()))?;
    let (start, end) = offsets;
    let bytes = shape
        .iter()
        .try_fold(dtype.size(), |acc, &d| acc.checked_mul(d as u64))
        .ok_or_else(|| bad(format!("shape {shape:?} overflows")))?;
    if start > end || end > data_len {
        return Err(bad(format!("data_offsets [{start}, {end}] beyond the data section of {data_len} bytes")));
    }
    if end - start != bytes {
        return Err(bad(format!(
            "data_offsets [{start}, {end}] hold {} bytes, shape {shape:?} of {dtype:?} needs {bytes}",
            end - start
        )));
    }
    Ok(Entry { name: name.to_string(), dtype, shape, start, end })
}

fn read_entry(path: &Path, file: &mut File, header: &Header, e: &Entry) -> Result<Named> {
    // Bounded by the file's size: parse_entry checked the offsets against it.
    let len = usize::try_from(e.end - e.start).map_err(|_| Error::at(path, &e.name, "too large for this machine"))?;
    let mut bytes = vec![0u8; len];
    file.seek(SeekFrom::Start(header.data_at + e.start))
        .and_then(|_| file.read_exact(&mut bytes))
        .map_err(|err| Error::at(path, &e.name, err.to_string()))?;
    let data = match e.dtype {
        Dtype::F32 => bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
        Dtype::F16 => bytes.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
        Dtype::BF16 => bytes.chunks_exact(2).map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
    };
    Ok(Named { name: e.name.clone(), shape: e.shape.clone(), data })
}

//! A reader of GGUF v3 metadata only, enough to take the tokenizer out of a
//! real model file in these tests without the crate's GGUF reader.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use crate::tokenizer::GgufVocab;

#[derive(Debug)]
pub enum Meta {
    Int(i64),
    /// A float: no tokenizer key is one.
    Float,
    Bool(bool),
    Str(String),
    Array(Vec<Meta>),
}

struct Walker<R> {
    r: R,
    left: u64,
}

impl<R: Read> Walker<R> {
    fn bytes(&mut self, n: u64) -> Result<Vec<u8>, String> {
        if n > self.left {
            return Err(format!("{n} bytes claimed, {} left", self.left));
        }
        self.left -= n;
        let mut buf = vec![0; n as usize];
        self.r.read_exact(&mut buf).map_err(|e| e.to_string())?;
        Ok(buf)
    }

    fn le<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let b = self.bytes(N as u64)?;
        b.try_into().map_err(|_| "short read".to_string())
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.le()?))
    }

    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.le()?))
    }

    fn string(&mut self) -> Result<String, String> {
        let n = self.u64()?;
        String::from_utf8(self.bytes(n)?).map_err(|e| e.to_string())
    }

    fn value(&mut self, ty: u32) -> Result<Meta, String> {
        Ok(match ty {
            0 => Meta::Int(i64::from(u8::from_le_bytes(self.le()?))),
            1 => Meta::Int(i64::from(i8::from_le_bytes(self.le()?))),
            2 => Meta::Int(i64::from(u16::from_le_bytes(self.le()?))),
            3 => Meta::Int(i64::from(i16::from_le_bytes(self.le()?))),
            4 => Meta::Int(i64::from(self.u32()?)),
            5 => Meta::Int(i64::from(i32::from_le_bytes(self.le()?))),
            6 => self.le::<4>().map(|_| Meta::Float)?,
            7 => Meta::Bool(u8::from_le_bytes(self.le()?) != 0),
            8 => Meta::Str(self.string()?),
            9 => {
                let elem = self.u32()?;
                let n = self.u64()?;
                if n > self.left {
                    return Err(format!("array of {n} claimed, {} bytes left", self.left));
                }
                (0..n).map(|_| self.value(elem)).collect::<Result<_, _>>().map(Meta::Array)?
            }
            10 => Meta::Int(self.u64()? as i64),
            11 => Meta::Int(i64::from_le_bytes(self.le()?)),
            12 => self.le::<8>().map(|_| Meta::Float)?,
            other => return Err(format!("unknown value type {other}")),
        })
    }
}

/// The metadata of the GGUF file `path`, by key.
pub fn read_meta(path: &Path) -> Result<HashMap<String, Meta>, String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let left = file.metadata().map_err(|e| e.to_string())?.len();
    let mut w = Walker { r: BufReader::new(file), left };
    if &w.le::<4>()? != b"GGUF" {
        return Err("not GGUF".into());
    }
    let version = w.u32()?;
    if version != 3 {
        return Err(format!("GGUF version {version}"));
    }
    let _tensors = w.u64()?;
    let kv = w.u64()?;
    let mut meta = HashMap::new();
    for _ in 0..kv {
        let key = w.string()?;
        let ty = w.u32()?;
        let value = w.value(ty)?;
        meta.insert(key, value);
    }
    Ok(meta)
}

/// The `tokenizer.ggml.*` and `tokenizer.chat_template` entries.
pub fn vocab(meta: &HashMap<String, Meta>) -> GgufVocab {
    let s = |k: &str| match meta.get(k) {
        Some(Meta::Str(s)) => Some(s.clone()),
        _ => None,
    };
    let id = |k: &str| match meta.get(k) {
        Some(Meta::Int(i)) => u32::try_from(*i).ok(),
        _ => None,
    };
    let strings = |k: &str| match meta.get(k) {
        Some(Meta::Array(a)) => a
            .iter()
            .filter_map(|m| match m {
                Meta::Str(s) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    GgufVocab {
        model: s("tokenizer.ggml.model").unwrap_or_default(),
        pre: s("tokenizer.ggml.pre"),
        tokens: strings("tokenizer.ggml.tokens"),
        merges: strings("tokenizer.ggml.merges"),
        token_types: match meta.get("tokenizer.ggml.token_type") {
            Some(Meta::Array(a)) => a
                .iter()
                .filter_map(|m| match m {
                    Meta::Int(i) => i32::try_from(*i).ok(),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        },
        bos: id("tokenizer.ggml.bos_token_id"),
        eos: id("tokenizer.ggml.eos_token_id"),
        unk: id("tokenizer.ggml.unknown_token_id"),
        pad: id("tokenizer.ggml.padding_token_id"),
        add_bos: match meta.get("tokenizer.ggml.add_bos_token") {
            Some(Meta::Bool(b)) => Some(*b),
            _ => None,
        },
        chat_template: s("tokenizer.chat_template"),
    }
}

//! Parsing a GGUF file (v2 and v3, little endian) held in memory.
//!
//! Nothing read from the file sizes an allocation or a slice before it has
//! been checked against the bytes actually left: every count is bounded by
//! the remaining bytes divided by the smallest encoding of one element.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::value::{Array, Value, id};
use super::{GgmlType, quant};
use crate::error::{Error, Result};

/// ggml's limit on tensor dimensions.
const MAX_DIMS: usize = 4;
/// Deeper nesting than this is no real file's, and unbounded recursion on a
/// crafted one would overflow the stack.
const MAX_NESTING: usize = 16;
pub const DEFAULT_ALIGNMENT: usize = 32;

/// A tensor's description from the header.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    /// ggml order, fastest first: `dims[0]` is the row length.
    pub dims: Vec<u64>,
    pub ggml_type: GgmlType,
    /// From the start of the data section.
    pub offset: u64,
}

impl TensorInfo {
    /// The row-major shape, outermost first (`(out, in)` for a matrix).
    pub fn shape(&self) -> Vec<usize> {
        // Every dim fits in usize: the reader checked their product.
        self.dims.iter().rev().map(|&d| d as usize).collect()
    }

    pub fn n_elements(&self) -> usize {
        self.dims.iter().map(|&d| d as usize).product()
    }

    fn row_len(&self) -> usize {
        self.dims.first().map_or(1, |&d| d as usize)
    }
}

/// A GGUF file read into memory.
#[derive(Debug)]
pub struct Gguf {
    path: PathBuf,
    pub version: u32,
    pub alignment: usize,
    metadata: Vec<(String, Value)>,
    keys: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    by_name: HashMap<String, usize>,
    bytes: Vec<u8>,
    data_start: usize,
}

struct Cursor<'a> {
    path: &'a Path,
    bytes: &'a [u8],
    pos: usize,
    /// The key or tensor being read, for error messages.
    at: Option<String>,
}

impl<'a> Cursor<'a> {
    fn err(&self, reason: impl Into<String>) -> Error {
        match &self.at {
            Some(at) => Error::at(self.path, at.clone(), reason),
            None => Error::file(self.path, reason),
        }
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(self.err(format!(
                "truncated: {what} needs {n} bytes at offset {}, the file has {} left",
                self.pos,
                self.remaining()
            )));
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, what)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>("a u8")?[0])
    }
    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array("a u16")?))
    }
    fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
    fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A claimed element count, refused if `min_size`-byte elements could not fit in what is left.
    fn count(&mut self, what: &str, min_size: usize) -> Result<usize> {
        let n = self.u64(&format!("the {what} count"))?;
        let fits = self.remaining() / min_size.max(1);
        match usize::try_from(n) {
            Ok(n) if n <= fits => Ok(n),
            _ => {
                Err(self.err(format!("claims {n} {what}, but the {} bytes left hold at most {fits}", self.remaining())))
            }
        }
    }

    fn string(&mut self, what: &str) -> Result<String> {
        let len = self.u64(&format!("the length of {what}"))?;
        let len = match usize::try_from(len) {
            Ok(n) if n <= self.remaining() => n,
            _ => {
                return Err(self.err(format!("{what} claims {len} bytes, but only {} are left", self.remaining())));
            }
        };
        let at = self.pos;
        let raw = self.take(len, what)?;
        String::from_utf8(raw.to_vec()).map_err(|_| self.err(format!("{what} at offset {at} is not UTF-8")))
    }

    fn bool(&mut self) -> Result<bool> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(self.err(format!("bool byte {b} at offset {} (0 or 1 expected)", self.pos - 1))),
        }
    }

    fn value(&mut self, ty: u32, depth: usize) -> Result<Value> {
        Ok(match ty {
            id::U8 => Value::U8(self.u8()?),
            id::I8 => Value::I8(self.u8()? as i8),
            id::U16 => Value::U16(self.u16()?),
            id::I16 => Value::I16(self.u16()? as i16),
            id::U32 => Value::U32(self.u32("a u32")?),
            id::I32 => Value::I32(self.u32("an i32")? as i32),
            id::U64 => Value::U64(self.u64("a u64")?),
            id::I64 => Value::I64(self.u64("an i64")? as i64),
            id::F32 => Value::F32(f32::from_bits(self.u32("an f32")?)),
            id::F64 => Value::F64(f64::from_bits(self.u64("an f64")?)),
            id::BOOL => Value::Bool(self.bool()?),
            id::STRING => Value::Str(self.string("a string value")?),
            id::ARRAY => Value::Array(self.array_value(depth)?),
            t => return Err(self.err(format!("unknown metadata value type {t}"))),
        })
    }

    fn array_value(&mut self, depth: usize) -> Result<Array> {
        if depth >= MAX_NESTING {
            return Err(self.err(format!("arrays nested deeper than {MAX_NESTING}")));
        }
        let ty = self.u32("an array's element type")?;
        let min_size = match ty {
            id::U8 | id::I8 | id::BOOL => 1,
            id::U16 | id::I16 => 2,
            id::U32 | id::I32 | id::F32 => 4,
            id::U64 | id::I64 | id::F64 | id::STRING => 8,
            id::ARRAY => 12,
            t => return Err(self.err(format!("unknown array element type {t}"))),
        };
        let n = self.count("array elements", min_size)?;
        fn many<T>(n: usize, mut f: impl FnMut() -> Result<T>) -> Result<Vec<T>> {
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                v.push(f()?);
            }
            Ok(v)
        }
        Ok(match ty {
            id::U8 => Array::U8(self.take(n, "u8 array")?.to_vec()),
            id::I8 => Array::I8(self.take(n, "i8 array")?.iter().map(|&b| b as i8).collect()),
            id::U16 => Array::U16(many(n, || self.u16())?),
            id::I16 => Array::I16(many(n, || Ok(self.u16()? as i16))?),
            id::U32 => Array::U32(many(n, || self.u32("a u32"))?),
            id::I32 => Array::I32(many(n, || Ok(self.u32("an i32")? as i32))?),
            id::U64 => Array::U64(many(n, || self.u64("a u64"))?),
            id::I64 => Array::I64(many(n, || Ok(self.u64("an i64")? as i64))?),
            id::F32 => Array::F32(many(n, || Ok(f32::from_bits(self.u32("an f32")?)))?),
            id::F64 => Array::F64(many(n, || Ok(f64::from_bits(self.u64("an f64")?)))?),
            id::BOOL => Array::Bool(many(n, || self.bool())?),
            id::STRING => Array::Str(many(n, || self.string("an array string"))?),
            _ => Array::Array(many(n, || self.array_value(depth + 1))?),
        })
    }

    fn tensor_info(&mut self) -> Result<TensorInfo> {
        let name = self.string("a tensor name")?;
        self.at = Some(name.clone());
        let n_dims = self.u32("the number of dimensions")? as usize;
        if n_dims > MAX_DIMS {
            return Err(self.err(format!("{n_dims} dimensions (ggml allows at most {MAX_DIMS})")));
        }
        let mut dims = Vec::with_capacity(n_dims);
        for _ in 0..n_dims {
            dims.push(self.u64("a dimension")?);
        }
        let overflow = || self.err(format!("dimensions {dims:?} overflow the address space"));
        let mut n: usize = 1;
        for &d in &dims {
            n = usize::try_from(d).ok().and_then(|d| n.checked_mul(d)).ok_or_else(overflow)?;
        }
        let ggml_type = GgmlType(self.u32("the tensor type")?);
        let offset = self.u64("the data offset")?;
        Ok(TensorInfo { name, dims, ggml_type, offset })
    }
}

struct Header {
    version: u32,
    metadata: Vec<(String, Value)>,
    tensors: Vec<TensorInfo>,
    /// Offset just past the last tensor info.
    end: usize,
}

fn parse_header(path: &Path, bytes: &[u8]) -> Result<Header> {
    let mut c = Cursor { path, bytes, pos: 0, at: None };
    let magic = c.take(4, "the magic").map_err(|_| Error::file(path, "not a GGUF file (shorter than its magic)"))?;
    if magic != b"GGUF" {
        return Err(Error::file(path, format!("not a GGUF file (magic {magic:02x?}, expected \"GGUF\")")));
    }
    let version = c.u32("the version")?;
    match version {
        2 | 3 => {}
        1 => return Err(Error::file(path, "GGUF version 1 is not supported (2 and 3 are)")),
        v if v.swap_bytes() == 2 || v.swap_bytes() == 3 => {
            return Err(Error::file(path, "big-endian GGUF is not supported"));
        }
        v => return Err(Error::file(path, format!("unsupported GGUF version {v} (2 and 3 are)"))),
    }
    // Smallest tensor info: empty name (8), no dims (4), type (4), offset (8).
    let tensor_count = c.count("tensors", 24)?;
    // Smallest metadata entry: empty key (8), type (4), one byte of value.
    let kv_count = c.count("metadata entries", 13)?;

    let mut metadata = Vec::with_capacity(kv_count);
    for i in 0..kv_count {
        c.at = None;
        let key = c.string(&format!("the key of metadata entry {i}"))?;
        c.at = Some(key.clone());
        let ty = c.u32("the value type")?;
        let value = c.value(ty, 0)?;
        metadata.push((key, value));
    }
    let mut tensors = Vec::with_capacity(tensor_count);
    for i in 0..tensor_count {
        c.at = Some(format!("tensor info {i}"));
        tensors.push(c.tensor_info()?);
    }
    Ok(Header { version, metadata, tensors, end: c.pos })
}

impl Gguf {
    /// Reads and parses the whole file.
    pub fn read(path: &Path) -> Result<Gguf> {
        let bytes = std::fs::read(path).map_err(Error::io(path))?;
        Gguf::parse(path, bytes)
    }

    /// Parses `bytes` as a GGUF file; `path` only names it in errors.
    pub fn parse(path: &Path, bytes: Vec<u8>) -> Result<Gguf> {
        let Header { version, metadata, tensors, end: header_end } = parse_header(path, &bytes)?;
        let mut keys = HashMap::with_capacity(metadata.len());
        for (i, (k, _)) in metadata.iter().enumerate() {
            if keys.insert(k.clone(), i).is_some() {
                return Err(Error::at(path, k.clone(), "duplicate metadata key"));
            }
        }
        let alignment = match keys.get("general.alignment").map(|&i| &metadata[i]) {
            None => DEFAULT_ALIGNMENT,
            Some((k, v)) => match v.as_i128() {
                Some(a) if a > 0 && a <= 1 << 30 && (a as usize).is_power_of_two() => a as usize,
                _ => return Err(Error::at(path, k.clone(), format!("alignment {v:?} is not a power of two"))),
            },
        };
        let data_start = header_end.div_ceil(alignment) * alignment;
        let data_len = bytes.len().saturating_sub(data_start);
        let mut by_name = HashMap::with_capacity(tensors.len());
        for (i, t) in tensors.iter().enumerate() {
            if by_name.insert(t.name.clone(), i).is_some() {
                return Err(Error::at(path, t.name.clone(), "duplicate tensor name"));
            }
            check_extent(path, t, alignment, data_start, data_len)?;
        }
        Ok(Gguf { path: path.to_path_buf(), version, alignment, metadata, keys, tensors, by_name, bytes, data_start })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The metadata in file order.
    pub fn metadata(&self) -> &[(String, Value)] {
        &self.metadata
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.keys.get(key).map(|&i| &self.metadata[i].1)
    }

    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    pub fn tensor_info(&self, name: &str) -> Option<&TensorInfo> {
        self.by_name.get(name).map(|&i| &self.tensors[i])
    }

    /// The stored bytes of a tensor.
    pub fn tensor_bytes(&self, name: &str) -> Result<(&TensorInfo, &[u8])> {
        let info = self.tensor_info(name).ok_or_else(|| Error::at(&self.path, name, "no such tensor in the file"))?;
        let n = info.n_elements();
        let len = quant::byte_len(info.ggml_type, n).ok_or_else(|| self.unreadable(info))?;
        // The extent was checked against the data section when the file was
        // parsed, but a file cut inside the padding before that section has
        // none: an empty tensor then starts past the end.
        let start = self.data_start.checked_add(info.offset as usize);
        let bytes = start.and_then(|s| self.bytes.get(s..s.checked_add(len)?));
        let bytes = bytes.ok_or_else(|| {
            Error::at(
                &self.path,
                name,
                format!(
                    "data at offset {} of the data section (which starts at {}) runs past the end of the file ({} bytes)",
                    info.offset,
                    self.data_start,
                    self.bytes.len()
                ),
            )
        })?;
        Ok((info, bytes))
    }

    /// A tensor dequantized to f32, with its row-major shape (outermost first).
    pub fn tensor_f32(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>)> {
        let info = self.tensor_info(name).ok_or_else(|| Error::at(&self.path, name, "no such tensor in the file"))?;
        if !info.ggml_type.is_supported() {
            return Err(self.unreadable(info));
        }
        let (info, bytes) = self.tensor_bytes(name)?;
        let data = quant::dequantize(&self.path, name, info.ggml_type, info.row_len(), info.n_elements(), bytes)?;
        Ok((info.shape(), data))
    }

    fn unreadable(&self, info: &TensorInfo) -> Error {
        let reason = match info.ggml_type.name() {
            Some(n) if info.ggml_type.is_supported() => {
                format!("row length {} is not a multiple of the {n} block size", info.row_len())
            }
            Some(n) => format!("tensor type {n} is not supported (F32, F16, BF16, Q8_0, Q4_0, Q4_1 are)"),
            None => format!("unknown ggml tensor type id {}", info.ggml_type.0),
        };
        Error::at(&self.path, info.name.clone(), reason)
    }

    fn value_of(&self, key: &str) -> Result<&Value> {
        self.get(key).ok_or_else(|| Error::at(&self.path, key, "missing metadata key"))
    }

    fn wrong(&self, key: &str, want: &str, v: &Value) -> Error {
        Error::at(&self.path, key, format!("expected {want}, found {}", v.type_name()))
    }

    /// An integer key as u32, whatever integer type the file used.
    pub fn get_u32(&self, key: &str) -> Result<u32> {
        let v = self.value_of(key)?;
        let i = v.as_i128().ok_or_else(|| self.wrong(key, "an integer", v))?;
        u32::try_from(i).map_err(|_| Error::at(&self.path, key, format!("{i} is out of the range of u32")))
    }

    /// A float key as f32 (an f64 is narrowed).
    pub fn get_f32(&self, key: &str) -> Result<f32> {
        let v = self.value_of(key)?;
        v.as_f64().map(|x| x as f32).ok_or_else(|| self.wrong(key, "a float", v))
    }

    pub fn get_bool(&self, key: &str) -> Result<bool> {
        let v = self.value_of(key)?;
        v.as_bool().ok_or_else(|| self.wrong(key, "a bool", v))
    }

    pub fn get_str(&self, key: &str) -> Result<&str> {
        let v = self.value_of(key)?;
        v.as_str().ok_or_else(|| self.wrong(key, "a string", v))
    }

    pub fn get_array(&self, key: &str) -> Result<&Array> {
        match self.value_of(key)? {
            Value::Array(a) => Ok(a),
            v => Err(self.wrong(key, "an array", v)),
        }
    }

    pub fn get_str_array(&self, key: &str) -> Result<&[String]> {
        match self.get_array(key)? {
            Array::Str(s) => Ok(s),
            a => Err(Error::at(&self.path, key, format!("expected an array of string, found {}", a.type_name()))),
        }
    }

    /// An integer array as i32, whatever integer type the file used.
    pub fn get_i32_array(&self, key: &str) -> Result<Vec<i32>> {
        let a = self.get_array(key)?;
        let ints = a.to_i128().ok_or_else(|| {
            Error::at(&self.path, key, format!("expected an array of integers, found {}", a.type_name()))
        })?;
        ints.into_iter()
            .enumerate()
            .map(|(i, x)| {
                i32::try_from(x).map_err(|_| Error::at(&self.path, key, format!("element {i} ({x}) is out of i32")))
            })
            .collect()
    }

    /// `None` when `key` is absent; an error when present with the wrong type.
    pub fn opt<'s, T>(&'s self, key: &str, get: impl FnOnce(&'s Self, &str) -> Result<T>) -> Result<Option<T>> {
        if self.get(key).is_some() { get(self, key).map(Some) } else { Ok(None) }
    }
}

fn check_extent(path: &Path, t: &TensorInfo, alignment: usize, data_start: usize, data_len: usize) -> Result<()> {
    if !t.offset.is_multiple_of(alignment as u64) {
        return Err(Error::at(path, t.name.clone(), format!("offset {} is not a multiple of {alignment}", t.offset)));
    }
    let n = t.n_elements();
    let Some(len) = quant::byte_len(t.ggml_type, n) else {
        // Unknown types cannot be sized; a known type with a partial block is refused when read.
        return Ok(());
    };
    let end = usize::try_from(t.offset).ok().and_then(|o| o.checked_add(len));
    match end {
        Some(end) if end <= data_len => Ok(()),
        _ => Err(Error::at(
            path,
            t.name.clone(),
            format!(
                "data at offset {} + {len} bytes runs past the end of the file (data section of {data_len} bytes at {data_start})",
                t.offset
            ),
        )),
    }
}

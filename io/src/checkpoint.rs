//! safetensors checkpoints of any [`Policy`]: the parameters under their
//! shared names, the optimizer moments under `optim.`, and the
//! [`TrainState`] and model config in the metadata. Writes are atomic: a
//! temp file in the same directory, fsync, rename, so a kill during a save
//! leaves the previous checkpoint intact.
//!
//! The metadata's `checksum` (`crc32:` and 8 hex digits, CRC-32/IEEE as
//! zlib computes it) covers every tensor — name, shape and bytes, in name
//! order — and every other metadata entry (`key=value`, in key order), so a
//! truncated file or a flipped bit is an error on loading. Such files say
//! `format = wapo-rs/2`; `wapo-rs/1` checkpoints, written before the
//! checksum existed, load unchecked. A NaN or infinite
//! value is refused on saving, so a checkpoint only ever holds finite numbers.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use safetensors::{Dtype, SafeTensors};
use wapo_core::rl::{Family, ModelConfig, Named, OptimState, Policy, TrainState};
use wapo_core::{Error, Result};

use crate::safetensors_out::{self, F32Tensor};

const OPTIM: &str = "optim.";
const CHECKSUM: &str = "checksum";
const FORMAT: &str = "format";
/// Files of this format carry a checksum; `wapo-rs/1` files predate it.
const FORMAT_CHECKED: &str = "wapo-rs/2";
const FORMAT_UNCHECKED: &str = "wapo-rs/1";

/// The CRC-32/IEEE table (reflected polynomial 0xEDB88320).
const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// A running CRC-32/IEEE.
struct Crc(u32);

impl Crc {
    fn new() -> Self {
        Crc(0xFFFF_FFFF)
    }
    fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = CRC_TABLE[((self.0 ^ u32::from(b)) & 0xFF) as usize] ^ (self.0 >> 8);
        }
    }
    fn finish(&self) -> u32 {
        !self.0
    }
}

/// CRC-32/IEEE of `bytes` (the value of zlib's `crc32`).
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut c = Crc::new();
    c.update(bytes);
    c.finish()
}

/// A tensor's values as the checksum reads them: the file's bytes (loading)
/// or the f32 values whose little-endian bytes the file will hold (saving).
#[derive(Clone, Copy)]
enum Data<'a> {
    Bytes(&'a [u8]),
    F32(&'a [f32]),
}

impl Data<'_> {
    fn byte_len(&self) -> usize {
        match self {
            Data::Bytes(b) => b.len(),
            Data::F32(x) => 4 * x.len(),
        }
    }

    fn feed(&self, c: &mut Crc) {
        match self {
            Data::Bytes(b) => c.update(b),
            Data::F32(x) => x.iter().for_each(|v| c.update(&v.to_le_bytes())),
        }
    }
}

/// The checksum of a checkpoint's tensors `(name, shape, data)` and
/// metadata (the `checksum` entry itself left out).
fn checksum<'a>(
    tensors: impl Iterator<Item = (&'a str, &'a [usize], Data<'a>)>,
    meta: &HashMap<String, String>,
) -> String {
    let mut c = Crc::new();
    let mut tensors: Vec<_> = tensors.collect();
    tensors.sort_by(|a, b| a.0.cmp(b.0));
    for (name, shape, data) in tensors {
        c.update(name.as_bytes());
        c.update(&[0]);
        for d in shape {
            c.update(&(*d as u64).to_le_bytes());
        }
        c.update(&(data.byte_len() as u64).to_le_bytes());
        data.feed(&mut c);
    }
    let mut keys: Vec<&String> = meta.keys().filter(|k| *k != CHECKSUM).collect();
    keys.sort();
    for k in keys {
        c.update(k.as_bytes());
        c.update(b"=");
        c.update(meta[k].as_bytes());
        c.update(&[0]);
    }
    format!("crc32:{:08x}", c.finish())
}

/// Fails at the first NaN or infinite value.
fn check_finite(kind: &str, tensors: &[Named]) -> Result<()> {
    for t in tensors {
        if let Some(i) = t.data.iter().position(|x| !x.is_finite()) {
            return Err(backend(format!(
                "{kind} `{}`[{i}] is {}: refusing to save a non-finite value",
                t.name, t.data[i]
            )));
        }
    }
    Ok(())
}

/// Parses a checkpoint file and verifies its checksum when it has one.
fn open<'a>(data: &'a [u8]) -> Result<(SafeTensors<'a>, HashMap<String, String>)> {
    let corrupt = |e: &dyn std::fmt::Display| backend(format!("truncated or corrupted file ({e})"));
    let st = SafeTensors::deserialize(data).map_err(|e| corrupt(&e))?;
    let (_, meta) = SafeTensors::read_metadata(data).map_err(|e| corrupt(&e))?;
    let meta = meta.metadata().clone().unwrap_or_default();
    let ours = ["train_state", "model", "optim_step", CHECKSUM].iter().any(|k| meta.contains_key(*k));
    match meta.get(FORMAT).map(String::as_str) {
        Some(FORMAT_CHECKED) if !meta.contains_key(CHECKSUM) => {
            return Err(backend(format!("metadata `{CHECKSUM}` missing: the file is corrupted")));
        }
        Some(FORMAT_CHECKED | FORMAT_UNCHECKED) => {}
        // A safetensors file of another program: parameters only, unchecked.
        None if !ours => {}
        None => return Err(backend(format!("metadata `{FORMAT}` missing: the file is corrupted"))),
        Some(other) => return Err(backend(format!("unknown format `{other}` (expected {FORMAT_CHECKED})"))),
    }
    if let Some(stored) = meta.get(CHECKSUM) {
        let tensors = st.tensors();
        let computed = checksum(tensors.iter().map(|(n, v)| (n.as_str(), v.shape(), Data::Bytes(v.data()))), &meta);
        if &computed != stored {
            return Err(backend(format!(
                "checksum mismatch (stored {stored}, computed {computed}): the file is corrupted or truncated"
            )));
        }
    }
    Ok((st, meta))
}

fn backend(e: impl std::fmt::Display) -> Error {
    Error::Backend(format!("checkpoint: {e}"))
}

/// Writes `policy`'s parameters, optimizer state and `state` to `path`
/// atomically, streaming the values: the save holds no copy of them beyond
/// what `parameters` and `optimizer_state` return.
pub fn save<P: Policy>(path: &Path, policy: &P, state: &TrainState) -> Result<()> {
    let params = policy.parameters()?;
    let opt = policy.optimizer_state()?;
    check_finite("parameter", &params)?;
    check_finite("optimizer moment", &opt.moments)?;
    let moment_names: Vec<String> = opt.moments.iter().map(|t| format!("{OPTIM}{}", t.name)).collect();
    let tensors: Vec<F32Tensor<'_>> = params
        .iter()
        .map(|t| F32Tensor { name: &t.name, shape: &t.shape, data: &t.data })
        .chain(opt.moments.iter().zip(&moment_names).map(|(t, n)| F32Tensor {
            name: n,
            shape: &t.shape,
            data: &t.data,
        }))
        .collect();
    let cfg = policy.config();
    let mut meta = HashMap::new();
    meta.insert(FORMAT.into(), FORMAT_CHECKED.into());
    meta.insert("train_state".into(), state.to_text());
    meta.insert("optim_step".into(), opt.step.to_string());
    meta.insert("model".into(), model_text(cfg));
    let sum = checksum(tensors.iter().map(|t| (t.name, t.shape, Data::F32(t.data))), &meta);
    meta.insert(CHECKSUM.into(), sum);
    safetensors_out::write_f32(path, &tensors, &meta.into_iter().collect()).map_err(backend)
}

/// Loads a checkpoint into `policy` (whose config must match) and returns
/// the saved [`TrainState`].
pub fn load<P: Policy>(path: &Path, policy: &mut P) -> Result<TrainState> {
    let data = fs::read(path).map_err(backend)?;
    let (st, meta) = open(&data)?;
    let get = |k: &str| meta.get(k).ok_or_else(|| backend(format!("metadata `{k}` missing")));
    if get("model")? != &model_text(policy.config()) {
        return Err(backend(format!(
            "model config {} in the checkpoint, {} in the policy",
            get("model")?,
            model_text(policy.config())
        )));
    }
    let state = TrainState::from_text(get("train_state")?)?;
    let step: u64 = get("optim_step")?.parse().map_err(backend)?;
    let (mut params, mut moments) = (Vec::new(), Vec::new());
    for (name, view) in st.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(backend(format!("`{name}` is not f32")));
        }
        let data = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        let shape = view.shape().to_vec();
        match name.strip_prefix(OPTIM) {
            Some(rest) => moments.push(Named { name: rest.to_string(), shape, data }),
            None => params.push(Named { name, shape, data }),
        }
    }
    policy.load_parameters(&params)?;
    policy.load_optimizer_state(&OptimState { step, moments })?;
    Ok(state)
}

/// Parameters only (for `wapo eval` or another backend), without the optimizer.
pub fn load_parameters<P: Policy>(path: &Path, policy: &mut P) -> Result<()> {
    let data = fs::read(path).map_err(backend)?;
    let (st, _) = open(&data)?;
    let mut params = Vec::new();
    for (name, view) in st.tensors() {
        if name.starts_with(OPTIM) || view.dtype() != Dtype::F32 {
            continue;
        }
        let data = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        params.push(Named { name, shape: view.shape().to_vec(), data });
    }
    policy.load_parameters(&params)
}

/// The model config as the metadata records it; the GPT's text is what it
/// always was, so older checkpoints still load.
fn model_text(c: &ModelConfig) -> String {
    let gpt = format!(
        "vocab={} context={} channels={} layers={} heads={} mlp={}",
        c.vocab, c.context, c.channels, c.layers, c.heads, c.mlp
    );
    match c.family {
        Family::Gpt => gpt,
        Family::Llama => format!(
            "family=llama {gpt} kv_heads={} norm_eps={:e} rope_theta={:e} rope_scaling={:?} tied={} qkv_bias={}",
            c.kv_heads, c.norm_eps, c.rope_theta, c.rope_scaling, c.tied_embeddings, c.qkv_bias
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::tensor::TensorView;

    #[test]
    fn crc32_is_zlibs() {
        // The CRC-32/IEEE check value of "123456789" (the catalogue's `check`).
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    fn file(with_checksum: bool) -> Vec<u8> {
        let bytes: Vec<u8> = (0..16u32).flat_map(|i| (i as f32 * 0.25).to_le_bytes()).collect();
        let owned = [("a".to_string(), vec![4usize, 4], bytes.clone()), ("b".to_string(), vec![16], bytes)];
        let mut meta = HashMap::new();
        let format = if with_checksum { FORMAT_CHECKED } else { FORMAT_UNCHECKED };
        meta.insert(FORMAT.to_string(), format.to_string());
        meta.insert("train_state".to_string(), "seed=1".to_string());
        if with_checksum {
            let sum = checksum(owned.iter().map(|(n, s, b)| (n.as_str(), s.as_slice(), Data::Bytes(b))), &meta);
            meta.insert(CHECKSUM.into(), sum);
        }
        let views: Vec<_> =
            owned.iter().map(|(n, s, b)| (n.clone(), TensorView::new(Dtype::F32, s.clone(), b).unwrap())).collect();
        safetensors::serialize(views, Some(meta)).unwrap()
    }

    #[test]
    fn every_flipped_bit_and_every_truncation_is_detected() {
        let good = file(true);
        assert!(open(&good).is_ok());
        for byte in 0..good.len() {
            for bit in [0u8, 3, 7] {
                let mut bad = good.clone();
                bad[byte] ^= 1 << bit;
                // Some flips leave the JSON header unreadable; the others
                // must fail the checksum.
                assert!(open(&bad).is_err(), "flip of bit {bit} of byte {byte} went unnoticed");
            }
        }
        for len in [0, 7, 8, good.len() / 2, good.len() - 1] {
            let e = open(&good[..len]).err().unwrap().to_string();
            assert!(e.contains("truncated or corrupted") || e.contains("checksum mismatch"), "{e}");
        }
        let mut bad = good.clone();
        let last = bad.len() - 1;
        bad[last] ^= 0x10;
        let e = open(&bad).err().unwrap().to_string();
        assert!(e.contains("checksum mismatch"), "{e}");
    }

    #[test]
    fn a_file_without_a_checksum_still_opens() {
        let old = file(false);
        let (_, meta) = open(&old).unwrap();
        assert!(!meta.contains_key(CHECKSUM));
    }

    #[test]
    fn non_finite_values_are_refused() {
        let t = |x: f32| Named { name: "w".into(), shape: vec![2], data: vec![1.0, x] };
        assert!(check_finite("parameter", &[t(2.0)]).is_ok());
        for x in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let e = check_finite("parameter", &[t(x)]).unwrap_err().to_string();
            assert!(e.contains("`w`[1]") && e.contains("non-finite"), "{e}");
        }
    }
}

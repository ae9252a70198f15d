//! A model as a Hugging Face directory (`config.json`,
//! `generation_config.json`, one f32 `model.safetensors`), and the loader
//! of such directories. The tokenizer files are the tokenizer's to write.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde_json::Value;
use wapo_core::rl::{Layout, ModelConfig, Named};

use super::config::{HfConfig, check_writable, read_config, write_config, write_generation_config};
use super::tensors::{INDEX_FILE, SINGLE_FILE, check_against, read_tensors};
use crate::atomic;
use crate::error::{Error, Result};
use crate::safetensors_out::{self, F32Tensor};

pub const CONFIG_FILE: &str = "config.json";
pub const GENERATION_CONFIG_FILE: &str = "generation_config.json";

/// Writes the model `cfg` with weights `tensors` (the names and shapes of
/// `Layout::new(cfg)`, in any order; a tied model's `lm_head.weight`, if
/// given, must be the embedding and is left out) into `dir`, creating it. Each file is replaced
/// atomically; a reader never sees half a file, though it may see a new
/// `model.safetensors` next to an old `config.json` while this runs.
pub fn write_model_dir(
    dir: &Path,
    cfg: &ModelConfig,
    architecture: &str,
    model_type: &str,
    tensors: &[Named],
    bos: Option<u32>,
    eos: &[u32],
) -> Result<()> {
    let config_path = dir.join(CONFIG_FILE);
    check_writable(&config_path, cfg, model_type)?;
    let weights_path = dir.join(SINGLE_FILE);
    let ordered = in_layout_order(cfg, tensors, &weights_path)?;
    std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
    write_safetensors(&weights_path, &ordered)?;
    write_json(&config_path, &write_config(cfg, architecture, model_type, bos, eos))?;
    write_json(&dir.join(GENERATION_CONFIG_FILE), &write_generation_config(bos, eos))
}

/// `config.json` and the weights of `dir`, checked against each other.
pub fn load_model_dir(dir: &Path) -> Result<(HfConfig, Vec<Named>)> {
    let hf = read_config(&dir.join(CONFIG_FILE))?;
    let tensors = read_tensors(dir)?;
    let tensors = check_against(&hf.config, tensors, &weights_file(dir))?;
    Ok((hf, tensors))
}

/// The file [`read_tensors`] reads first: the single file if there is one.
fn weights_file(dir: &Path) -> PathBuf {
    let single = dir.join(SINGLE_FILE);
    if single.is_file() { single } else { dir.join(INDEX_FILE) }
}

fn in_layout_order<'a>(cfg: &ModelConfig, tensors: &'a [Named], file: &Path) -> Result<Vec<&'a Named>> {
    let mut by_name: HashMap<&str, &Named> = HashMap::with_capacity(tensors.len());
    for t in tensors {
        if by_name.insert(t.name.as_str(), t).is_some() {
            return Err(Error::at(file, &t.name, "given twice"));
        }
    }
    let mut out = Vec::with_capacity(tensors.len());
    for e in Layout::new(cfg).entries {
        let t = by_name.remove(e.name.as_str()).ok_or_else(|| Error::at(file, &e.name, "missing"))?;
        if t.shape != e.shape {
            return Err(Error::at(file, &e.name, format!("shape {:?}, the model has {:?}", t.shape, e.shape)));
        }
        if t.data.len() != t.shape.iter().product::<usize>() {
            return Err(Error::at(file, &e.name, format!("{} values for shape {:?}", t.data.len(), t.shape)));
        }
        out.push(t);
    }
    if cfg.tied_embeddings
        && let Some(head) = by_name.remove("lm_head.weight")
    {
        // Dropping a head that is not the embedding would lose weights silently.
        let embed = out[0];
        if head.shape != embed.shape || head.data.iter().zip(&embed.data).any(|(a, b)| a.to_bits() != b.to_bits()) {
            return Err(Error::at(
                file,
                "lm_head.weight",
                "the model is tied but lm_head.weight differs from the embedding",
            ));
        }
    }
    if let Some(name) = by_name.keys().min() {
        return Err(Error::at(file, *name, "not a tensor of this model"));
    }
    Ok(out)
}

/// An f32 safetensors file of `tensors`, back to back in the given order,
/// with the `{"format": "pt"}` metadata transformers expects.
fn write_safetensors(path: &Path, tensors: &[&Named]) -> Result<()> {
    let views: Vec<F32Tensor<'_>> =
        tensors.iter().map(|t| F32Tensor { name: &t.name, shape: &t.shape, data: &t.data }).collect();
    safetensors_out::write_f32(path, &views, &BTreeMap::from([("format".into(), "pt".into())]))
}

fn write_json(path: &Path, value: &Value) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| Error::file(path, e.to_string()))?;
    bytes.push(b'\n');
    atomic::write_bytes(path, &bytes)
}

//! One entry point for a pretrained model, whichever file it comes in: a
//! Hugging Face directory or a llama.cpp `.gguf` file. Both give the same
//! [`Loaded`]: the config, the tensors under their Hugging Face names in the
//! Hugging Face layout (a GGUF's permuted Q/K rows undone), the tokenizer.

use std::path::Path;

use wapo_core::rl::{ModelConfig, Named};

use crate::error::{Error, Result};
use crate::tokenizer::Tokenizer;
use crate::{gguf, hf};

/// A model read from disk.
pub struct Loaded {
    pub config: ModelConfig,
    /// Every tensor of `Layout::new(&config)`, by name.
    pub tensors: Vec<Named>,
    pub tokenizer: Tokenizer,
    /// The Hugging Face class (`LlamaForCausalLM`, `Qwen2ForCausalLM`).
    pub architecture: String,
    /// The Hugging Face `model_type` (`llama`, `qwen2`, `mistral`).
    pub model_type: String,
}

/// Whether `path` names a GGUF file (by its extension).
fn is_gguf(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gguf"))
}

/// Loads a model directory or a `.gguf` file.
pub fn load(path: &Path) -> Result<Loaded> {
    if is_gguf(path) {
        let m = gguf::load_llama(path)?;
        let tokenizer = Tokenizer::from_gguf_vocab(&m.vocab, path)?;
        let (architecture, model_type) = hf_names_of_gguf(&m.architecture, path)?;
        return Ok(Loaded { config: m.config, tensors: m.tensors, tokenizer, architecture, model_type });
    }
    if !path.is_dir() {
        return Err(Error::file(path, "not a model: expected a Hugging Face directory or a .gguf file"));
    }
    let (cfg, tensors) = hf::load_model_dir(path)?;
    let tokenizer = Tokenizer::from_hf_dir(path)?;
    Ok(Loaded { config: cfg.config, tensors, tokenizer, architecture: cfg.architecture, model_type: cfg.model_type })
}

/// The tokenizer of a model alone, without reading its weights.
pub fn load_tokenizer(path: &Path) -> Result<Tokenizer> {
    if is_gguf(path) {
        let vocab = gguf::read_vocab(&gguf::Gguf::read(path)?)?;
        return Tokenizer::from_gguf_vocab(&vocab, path);
    }
    Tokenizer::from_hf_dir(path)
}

/// Writes `model` as a Hugging Face directory (f32 safetensors, config,
/// generation config, tokenizer files).
pub fn save_hf_dir(dir: &Path, model: &Loaded) -> Result<()> {
    save_hf_parts(dir, &model.config, &model.architecture, &model.model_type, &model.tensors, &model.tokenizer)
}

/// [`save_hf_dir`] from parts (a fine-tuned policy's parameters).
pub fn save_hf_parts(
    dir: &Path,
    config: &ModelConfig,
    architecture: &str,
    model_type: &str,
    tensors: &[Named],
    tokenizer: &Tokenizer,
) -> Result<()> {
    hf::write_model_dir(dir, config, architecture, model_type, tensors, tokenizer.bos(), tokenizer.eos())?;
    tokenizer.save(dir)
}

/// The Hugging Face class and model type of a GGUF `general.architecture`.
fn hf_names_of_gguf(arch: &str, path: &Path) -> Result<(String, String)> {
    match arch {
        "llama" => Ok(("LlamaForCausalLM".into(), "llama".into())),
        "qwen2" => Ok(("Qwen2ForCausalLM".into(), "qwen2".into())),
        other => Err(Error::at(path, "general.architecture", format!("unsupported architecture `{other}`"))),
    }
}

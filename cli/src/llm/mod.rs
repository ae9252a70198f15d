//! The commands on a pretrained language model (`tokenize`, `score`,
//! `generate`, `convert`): JSON on stdout, errors on stderr with exit code 2.
//! `--model` is a Hugging Face directory or a `.gguf` file.

pub mod convert;
pub mod generate;
pub mod score;
pub mod task;
pub mod tokenize;

use std::path::{Path, PathBuf};

use clap::Args;
use wapo_core::Tensor;
use wapo_core::host::HostTensor;
use wapo_cpu::model::CpuModel;
use wapo_io::model::Loaded;
use wapo_io::tokenizer::Tokenizer;

use crate::error::{CliError, Result};

/// The model argument every command here takes.
#[derive(Args, Debug, Clone)]
pub struct ModelArg {
    /// A Hugging Face model directory (config.json, model.safetensors,
    /// tokenizer.json) or a llama.cpp `.gguf` file.
    #[arg(long)]
    pub model: PathBuf,
}

/// A pretrained model on the CPU backend with its tokenizer; `T` is the
/// tensor its logits come in.
pub struct Lm<T: Tensor = HostTensor<f32>> {
    pub policy: CpuModel<T>,
    pub tokenizer: Tokenizer,
}

/// What a model file holds besides its tensors.
pub struct Meta {
    pub config: wapo_core::rl::ModelConfig,
    pub tokenizer: Tokenizer,
    /// The Hugging Face class and `model_type`, for writing it out again.
    pub architecture: String,
    pub model_type: String,
}

/// Loads `path` into a CPU policy; the file's tensors are dropped once copied.
pub fn load<T: Tensor>(path: &Path) -> Result<Lm<T>>
where
    T::Device: Default,
{
    let Loaded { config, tensors, tokenizer, .. } = wapo_io::model::load(path)?;
    let policy = CpuModel::from_named(config, &tensors, Default::default())?;
    Ok(Lm { policy, tokenizer })
}

impl<T: Tensor> Lm<T> {
    /// Token ids of `text`, through the model's chat template when `chat`.
    pub fn prompt_ids(&self, text: &str, chat: bool) -> Result<Vec<u32>> {
        let text = if chat { self.tokenizer.chat_prompt(text, None)? } else { text.to_string() };
        let ids = self.tokenizer.encode(&text)?;
        if ids.is_empty() {
            return Err(CliError::config("prompt", "is empty after tokenization"));
        }
        Ok(ids)
    }
}

/// Prints `value` as one line of JSON.
pub fn print_json(value: &serde_json::Value) {
    println!("{value}");
}

/// f32 values as JSON numbers (−inf, which a JSON number cannot hold, as null).
pub fn json_f32(xs: &[f32]) -> serde_json::Value {
    xs.iter().map(|&x| if x.is_finite() { serde_json::json!(x as f64) } else { serde_json::Value::Null }).collect()
}

//! The commands on a pretrained language model (`tokenize`, `score`,
//! `generate`, `convert`): JSON on stdout, errors on stderr with exit code 2.
//! `--model` is a Hugging Face directory or a `.gguf` file.

pub mod convert;
pub mod generate;
pub mod score;
pub mod task;
pub mod tokenize;

use std::path::PathBuf;

use clap::Args;
use wapo_io::tokenizer::Tokenizer;

use crate::config::Backend;
use crate::config::knob::Knob;
use crate::error::{CliError, Result};

/// The model argument every command here takes.
#[derive(Args, Debug, Clone)]
pub struct ModelArg {
    /// A Hugging Face model directory (config.json, model.safetensors,
    /// tokenizer.json) or a llama.cpp `.gguf` file.
    #[arg(long)]
    pub model: PathBuf,
}

/// Where `score` and `generate` run the model.
#[derive(Args, Debug, Clone)]
pub struct BackendArg {
    /// `cpu` or `wgpu` (any GPU through Vulkan, Metal or DX12).
    #[arg(long, default_value = "cpu")]
    pub backend: String,
}

impl BackendArg {
    pub fn get(&self) -> Result<Backend> {
        <Backend as Knob>::from_flag(&self.backend).ok_or_else(|| {
            CliError::config("backend", format!("expected {}, got `{}`", Backend::expected(), self.backend))
        })
    }
}

/// What a model file holds besides its tensors.
pub struct Meta {
    pub config: wapo_core::rl::ModelConfig,
    pub tokenizer: Tokenizer,
    /// The Hugging Face class and `model_type`, for writing it out again.
    pub architecture: String,
    pub model_type: String,
}

/// Token ids of `text`, through the model's chat template when `chat`.
pub fn prompt_ids(tokenizer: &Tokenizer, text: &str, chat: bool) -> Result<Vec<u32>> {
    let text = if chat { tokenizer.chat_prompt(text, None)? } else { text.to_string() };
    let ids = tokenizer.encode(&text)?;
    if ids.is_empty() {
        return Err(CliError::config("prompt", "is empty after tokenization"));
    }
    Ok(ids)
}

/// Prints `value` as one line of JSON.
pub fn print_json(value: &serde_json::Value) {
    println!("{value}");
}

/// f32 values as JSON numbers (−inf, which a JSON number cannot hold, as null).
pub fn json_f32(xs: &[f32]) -> serde_json::Value {
    xs.iter().map(|&x| if x.is_finite() { serde_json::json!(x as f64) } else { serde_json::Value::Null }).collect()
}

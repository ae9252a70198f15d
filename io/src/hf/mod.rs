//! Hugging Face model directories of the llama family.
//!
//! * [`config`] — `config.json` (llama, qwen2, mistral) to a
//!   [`ModelConfig`](wapo_core::rl::ModelConfig) and back.
//! * [`tensors`] — safetensors weights, one file or sharded, F32/F16/BF16
//!   to f32, checked against the config's layout.
//! * [`mod@write`] — writing a directory, and loading one whole.

pub mod config;
pub mod tensors;
pub mod write;

#[cfg(test)]
mod tests;

pub use config::{HfConfig, read_config, write_config};
pub use tensors::{check_against, read_tensors};
pub use write::{load_model_dir, write_model_dir};

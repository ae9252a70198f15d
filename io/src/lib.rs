//! wapo-io: the files a user brings and takes away.
//!
//! * [`gguf`] — llama.cpp's GGUF v3: metadata, tensors (F32, F16, BF16,
//!   Q8_0, Q4_0, Q4_1 dequantized at load), the llama mapping onto the
//!   Hugging Face names and rotary layout; a writer for tests and tools.
//! * [`hf`] — Hugging Face directories: `config.json`, safetensors (one
//!   file or sharded), reading and writing.
//! * [`tokenizer`] — the `tokenizers` crate behind one type, from
//!   `tokenizer.json` or rebuilt from GGUF metadata; the ChatML template.
//! * [`checkpoint`] — training checkpoints of any backend's policy
//!   (parameters, optimizer moments, train state), written atomically
//!   ([`atomic`]).
//! * [`safetensors_out`] — the one f32 safetensors writer (streamed, atomic).
//! * [`model`] — one entry point: load a model from either format, save a
//!   Hugging Face directory.
//! * [`jsonl`] — the user's own task: a JSONL file of prompts and answers
//!   with a verifier chosen by name.
//! * [`gsm8k`] — GSM8K's train and test files (built in, or from a
//!   directory) as the core's gsm8k examples.
//! * [`testing`] — where the tests find the real model.
//! * [`Error`] — names the file, the tensor or key, and what was wrong.

pub mod atomic;
pub mod checkpoint;
pub mod error;
pub mod gguf;
pub mod gsm8k;
pub mod hf;
pub mod jsonl;
pub mod model;
pub mod safetensors_out;
pub mod testing;
pub mod tokenizer;

pub use error::{Error, Result};

//! llama.cpp's GGUF files: reading (v2 and v3, little endian), f32
//! dequantization of F32, F16, BF16, Q8_0, Q4_0 and Q4_1 tensors, the llama
//! and qwen2 mapping onto the Hugging Face tensor names and rotary layout,
//! and a writer (v3) for tests and tools.
//!
//! GGUF stores dimensions fastest first (`ne[0]` is the row length); every
//! shape this module hands out is row-major, outermost first, so a linear
//! layer's weight is `(out, in)` as in `nn.Linear`.

mod ggml_type;
pub mod llama;
pub mod quant;
mod read;
mod value;
mod write;

#[cfg(test)]
mod tests;

pub use ggml_type::GgmlType;
pub use llama::{GgufModel, load_llama, read_llama_config, read_vocab};
pub use read::{DEFAULT_ALIGNMENT, Gguf, TensorInfo};
pub use value::{Array, Value};
pub use write::{GgufWriter, write_llama};

//! CPU backend of wapo-rs: [`CpuTensor`] implements the core's `Tensor` in
//! f32 on dfdx's `Cpu` device, with a fused logits-level objective.

pub mod fused;
pub mod gpt;
pub mod tensor;

pub use dfdx::prelude::Cpu;
pub use tensor::{CpuTensor, release_pooled_buffers};

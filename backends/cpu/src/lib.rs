//! CPU backend of wapo-rs.
//!
//! * [`CpuTensor`] — the core's `Tensor` in f32 on dfdx's `Cpu` device: the
//!   core's host tensor plus [`kernels::fused`], the one-pass logits-level
//!   objective.
//! * [`model`] — the policy of either family (the GPT, the llama family):
//!   one block graph ([`model::block`]) for the training forward, the
//!   backward and KV-cache decoding, the LM head in row chunks
//!   ([`model::head`]).
//! * [`kernels`] — the layers, one file per op, and the fused objective.

pub mod bench;
pub mod kernels;
pub mod model;
pub mod tensor;

pub use dfdx::prelude::Cpu;
pub use tensor::{CpuTensor, release_pooled_buffers};

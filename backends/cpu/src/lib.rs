//! CPU backend of wapo-rs.
//!
//! * [`CpuTensor`] — the core's `Tensor` in f32 on dfdx's `Cpu` device: the
//!   core's host tensor plus [`fused`], the one-pass logits-level objective.
//! * [`gpt`] — the policy of either family (the GPT, the llama family):
//!   one block graph ([`gpt::block`]) for the training forward, the backward
//!   and KV-cache generation, the LM head in row chunks ([`gpt::head`]).

pub mod fused;
pub mod gpt;
pub mod tensor;

pub use dfdx::prelude::Cpu;
pub use tensor::{CpuTensor, release_pooled_buffers};

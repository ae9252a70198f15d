//! Every WGSL kernel of the backend, one folder per op (`mod.rs` + its
//! `.wgsl`): the `Tensor` primitives (binary .. unary), the model's layers
//! llm.c style as `_forward` / `_backward` pairs writing into preallocated
//! buffers (adamw .. swiglu), and the fused logits-level objective
//! ([`fused`]). `common.wgsl` and `lanes.wgsl` are the helpers they share,
//! and [`chunks`] the deterministic sums over rows of the layers.

// The Tensor primitives.
pub(crate) mod binary;
pub(crate) mod copy;
pub(crate) mod fill;
pub(crate) mod gather;
pub(crate) mod index;
pub(crate) mod reduce;
pub(crate) mod segment;
pub(crate) mod select;
pub(crate) mod take;
pub(crate) mod unary;

// The model's layers.
pub mod adamw;
pub mod attention;
pub mod encoder;
pub mod gelu;
pub mod layernorm;
pub mod matmul;
pub mod rmsnorm;
pub mod rope;
pub mod rows;
pub mod sample;
pub mod swiglu;

// The fused objective.
pub(crate) mod fused;

mod chunks;
mod elementwise;
#[cfg(test)]
pub(crate) mod test_util;
mod view;

pub(crate) use elementwise::*;
pub use view::{View, alloc, download_u32, upload_u32, write};

//! Every kernel of the CPU backend, one file per op as the wgpu backend's
//! `kernels/<op>/` folders: the model's layers llm.c style, each a
//! `_forward` / `_backward` pair with outputs first, and the fused
//! logits-level objective ([`fused`]). Rows are independent, so they run in
//! parallel; parameter-gradient reductions over rows use a fixed chunking
//! (not the thread count) so that results are bit-identical on any machine.

pub mod attention;
pub mod encoder;
pub mod fused;
pub mod gelu;
pub mod layernorm;
pub mod matmul;
pub mod rmsnorm;
pub mod rope;
pub mod rows;
pub mod swiglu;

pub use encoder::*;
pub use gelu::*;
pub use layernorm::*;
pub use matmul::*;
pub use rmsnorm::*;
pub use rope::*;
pub use rows::*;
pub use swiglu::*;

/// Rows per task in parallel loops; fixed so that reductions do not depend
/// on the number of threads.
pub(crate) const ROW_CHUNK: usize = 64;

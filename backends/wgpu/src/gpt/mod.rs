//! The GPT policy of `DESIGN.md` on the GPU: every layer a hand-written WGSL
//! kernel pair ([`kernels`]).

pub mod kernels;

//! wgpu backend of wapo-rs: the [`wapo_core::Tensor`] primitives as WGSL
//! compute shaders (Vulkan, Metal, DX12), and a fused kernel pair for the
//! logits-level objective.
//!
//! * [`WgpuContext`] — adapter, device, pipeline cache, buffer pool.
//! * [`WgpuTensor`] — an f32 tensor on the device.
//! * [`gpt`] — the policy of both families (GPT, llama) as WGSL kernels:
//!   training and generation on the GPU.
//! * [`bench`] — the forward+backward benchmark of the objective (any backend).

pub mod bench;
mod context;
pub mod kernels;
mod launch;
pub mod model;
mod tensor;
mod transfer;

pub use context::{WgpuContext, WgpuDevice};
pub use tensor::WgpuTensor;

/// The device for a test: `Some` when an adapter exists. Without one the
/// skip is printed, and with `WAPO_REQUIRE_GPU=1` it is a failure instead.
pub fn test_context() -> Option<WgpuDevice> {
    match WgpuContext::new() {
        Ok(dev) => Some(dev),
        Err(e) => {
            let required = std::env::var("WAPO_REQUIRE_GPU").is_ok_and(|v| v == "1");
            assert!(!required, "WAPO_REQUIRE_GPU=1 but no wgpu device: {e}");
            // Straight to the process's stderr: the test harness captures
            // `eprintln!` of passing tests, and a skip must be seen.
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "skipped: no wgpu adapter ({e})");
            None
        }
    }
}

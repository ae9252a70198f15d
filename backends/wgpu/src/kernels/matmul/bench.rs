//! The GEMM's throughput on square problems (the figure compared with cuBLAS).

use std::time::Instant;

use wapo_core::{Error, Result};

use super::super::{View, alloc, write};
use super::{Gemm, gemm};
use crate::context::WgpuDevice;
use crate::tensor::WgpuTensor;

/// Times `iters` square f32 GEMMs of size n (after a warm-up) on `dev`; returns TFLOP/s (2·n³ per GEMM).
pub fn gemm_tflops(dev: &WgpuDevice, n: usize, iters: usize) -> Result<f64> {
    gemm_case_tflops(dev, Gemm { m: n, n, k: n, a_t: false, b_t: false, accumulate: false }, false, iters)
}

/// Times `iters` GEMMs `g` (with a bias when `bias`) on `dev` after a
/// warm-up; returns TFLOP/s (2·m·n·k per GEMM).
pub fn gemm_case_tflops(dev: &WgpuDevice, g: Gemm, bias: bool, iters: usize) -> Result<f64> {
    if g.m == 0 || g.n == 0 || g.k == 0 {
        return Err(Error::Config { field: "g", reason: "m, n and k must be positive" });
    }
    if iters == 0 {
        return Err(Error::Config { field: "iters", reason: "must be positive" });
    }
    let a = filled(dev, g.m * g.k, 1)?;
    let b = filled(dev, g.k * g.n, 2)?;
    let c = filled(dev, g.n, 3)?;
    let out = filled(dev, g.m * g.n, 4)?;
    let run = || gemm(View::all(&out), View::all(&a), View::all(&b), bias.then(|| View::all(&c)), g);
    run()?;
    dev.synchronize()?;
    let t0 = Instant::now();
    for _ in 0..iters {
        run()?;
    }
    dev.synchronize()?;
    let secs = t0.elapsed().as_secs_f64().max(1e-9);
    Ok(2.0 * g.m as f64 * g.n as f64 * g.k as f64 * iters as f64 / secs / 1e12)
}

/// A device tensor of `n` values in [-1, 1) from a fixed LCG (finite
/// products whatever the size).
fn filled(dev: &WgpuDevice, n: usize, seed: u32) -> Result<WgpuTensor> {
    let mut state = 0x9e37_79b9_u32 ^ seed;
    let data: Vec<f32> = (0..n)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 8) as f32 / (1u32 << 23) as f32 - 1.0
        })
        .collect();
    let t = alloc(dev, n)?;
    write(&t, 0, &data)?;
    Ok(t)
}

//! Per-kernel timings of the CPU policy's layers. The toy-setting training
//! benchmark and the ready-made CPU setup live in the `wapo-benches` crate.

#[cfg(test)]
mod kernel_timing {
    use std::time::Instant;

    use crate::kernels::attention::{Heads, Rows, attention_backward, attention_forward};
    use crate::kernels::*;

    #[test]
    #[ignore = "a benchmark: run in release"]
    fn kernel_times() {
        let rows = Rows { b: 64, g: 8, p: 196, s: 6 };
        let (r, c) = (rows.total(), 128);
        let x: Vec<f32> = (0..r * 3 * c).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect();
        let w: Vec<f32> = (0..3 * c * c).map(|i| ((i * 31) % 100) as f32 / 1000.0).collect();
        let b = vec![0.0f32; 3 * c];
        let mut out = vec![0.0f32; r * 3 * c];
        let t = Instant::now();
        matmul_forward(&mut out, &x[..r * c], &w, &b, c, 3 * c);
        let s = t.elapsed().as_secs_f64();
        println!("qkv matmul {r}x{c}x{}: {:.3} s, {:.1} GFLOP/s", 3 * c, s, 2.0 * (r * c * 3 * c) as f64 / s / 1e9);
        let hd = Heads { h: 4, kv: 4, hs: c / 4 };
        let mut att = vec![0.0f32; r * c];
        let mut probs = vec![0.0f32; r * 4 * rows.keys()];
        let t = Instant::now();
        attention_forward(&mut att, &mut probs, &x, rows, hd, &[]);
        println!("attention forward: {:.3} s", t.elapsed().as_secs_f64());
        let mut dqkv = vec![0.0f32; r * 3 * c];
        let t = Instant::now();
        attention_backward(&mut dqkv, &att, &probs, &x, rows, hd);
        println!("attention backward: {:.3} s", t.elapsed().as_secs_f64());
        let (mut m, mut rs) = (vec![0.0f32; r], vec![0.0f32; r]);
        let ones = vec![1.0f32; c];
        let t = Instant::now();
        layernorm_forward(&mut out[..r * c], &mut m, &mut rs, &x[..r * c], &ones, &b[..c], 1e-5);
        println!("layernorm forward: {:.3} s", t.elapsed().as_secs_f64());
        let t = Instant::now();
        gelu_forward(&mut out[..r * 2 * c], &x[..r * 2 * c]);
        println!("gelu forward (R×256): {:.3} s", t.elapsed().as_secs_f64());
        assert!(out.iter().all(|v| v.is_finite()));
    }
}

//! The rotary kernel against rotate_half, and its inverse.

use super::{RopePositions, RopeTables, rope};
use crate::kernels::test_util::{Lcg, check, get, put, put_u32};
use crate::kernels::{View, upload_u32};
use crate::test_context;

/// The rotation of the Hugging Face modelling code in f64:
/// `x·cos + rotate_half(x)·sin` with rotate_half(a | b) = (−b | a) and the
/// angle position·inv_freq(i) duplicated over both halves.
fn reference(x: &[f32], pos: &[u32], inv: &[f64], width: usize, heads: usize, sign: f64) -> Vec<f64> {
    let half = inv.len();
    let mut out: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    for (r, &p) in pos.iter().enumerate() {
        for h in 0..heads {
            let o = r * width + h * 2 * half;
            for d in 0..2 * half {
                let ang = p as f64 * inv[d % half];
                let rot = if d < half { -(x[o + d + half] as f64) } else { x[o + d - half] as f64 };
                out[o + d] = x[o + d] as f64 * ang.cos() + sign * rot * ang.sin();
            }
        }
    }
    out
}

#[test]
fn rotation_matches_rotate_half_and_inverts() {
    let Some(dev) = test_context() else { return };
    // Llama3-scaled frequencies from the model config, GQA rows (3 query +
    // 1 key head rotated, the value head left alone), per-row and shared positions.
    let cfg = wapo_core::rl::ModelConfig {
        rope_scaling: wapo_core::rl::RopeScaling::Llama3 {
            factor: 8.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_context: 8.0,
        },
        ..wapo_core::rl::ModelConfig::llama(11, 40, 24, 1, 3, 1, 8, 500_000.0)
    };
    let inv = cfg.rope_inv_freq();
    let tables = RopeTables::new(&dev, &inv, cfg.context).unwrap();
    let (rows, heads, width) = (6, cfg.heads + cfg.kv_heads, cfg.qkv_channels());
    let mut rng = Lcg(3);
    let x = rng.vec(rows * width, -1.0, 1.0);
    let pos: Vec<u32> = vec![0, 1, 5, 17, 39, 2];
    let tp = put_u32(&dev, &pos, 3).unwrap();
    let pv = View::at(&tp, 3, rows as u64);
    let tx = put(&dev, &x, 2).unwrap();
    let xv = View::at(&tx, 2, x.len() as u64);
    rope(xv, &tables, RopePositions::PerRow(pv), rows, width, heads, false).unwrap();
    let fwd = get(xv);
    check("rope forward", &fwd, &reference(&x, &pos, &inv, width, heads, 1.0), 1e-6);
    // The backward is the transpose: it undoes the forward.
    rope(xv, &tables, RopePositions::PerRow(pv), rows, width, heads, true).unwrap();
    check("rope inverse", &get(xv), &x.iter().map(|&v| v as f64).collect::<Vec<_>>(), 1e-6);
    let tx = put(&dev, &x, 0).unwrap();
    let xv = View::at(&tx, 0, x.len() as u64);
    rope(xv, &tables, RopePositions::Same(7), rows, width, heads, true).unwrap();
    check("rope backward, one position", &get(xv), &reference(&x, &[7; 6], &inv, width, heads, -1.0), 1e-6);
    // A position past the tables: an error shared, NaN per row.
    assert!(rope(xv, &tables, RopePositions::Same(40), rows, width, heads, false).is_err());
    let far = upload_u32(&dev, &[40; 6]).unwrap();
    rope(xv, &tables, RopePositions::PerRow(View::all(&far)), rows, width, heads, false).unwrap();
    assert!(get(xv)[0].is_nan());
}

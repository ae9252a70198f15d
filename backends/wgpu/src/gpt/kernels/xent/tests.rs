use super::*;
use crate::gpt::kernels::{alloc, upload_u32};

use crate::gpt::kernels::test_util::{rng, upload};

/// (loss, dlogits) in f64, as the CPU's `sft` computes them.
fn reference(z: &[f32], y: &[u32], v: usize, scale: f64) -> (Vec<f64>, Vec<f64>) {
    let mut loss = vec![];
    let mut d = vec![];
    for (r, &t) in y.iter().enumerate() {
        let z = &z[r * v..(r + 1) * v];
        let max = z.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b as f64));
        let sum: f64 = z.iter().map(|&x| (x as f64 - max).exp()).sum();
        let lse = max + sum.ln();
        loss.push(lse - z[t as usize] as f64);
        for (k, &x) in z.iter().enumerate() {
            let onehot = if k == t as usize { 1.0 } else { 0.0 };
            d.push(((x as f64 - lse).exp() - onehot) * scale);
        }
    }
    (loss, d)
}

fn check(rows: usize, v: usize, seed: u64, masked: bool) {
    let Some(dev) = crate::test_context() else { return };
    check_on(&dev, rows, v, seed, masked);
}

fn check_on(dev: &crate::context::WgpuDevice, rows: usize, v: usize, seed: u64, masked: bool) {
    let mut r = rng(seed);
    let mut z: Vec<f32> = (0..rows * v).map(|_| r() * 16.0 - 8.0).collect();
    let y: Vec<u32> = (0..rows).map(|_| ((r() * v as f32) as u32).min(v as u32 - 1)).collect();
    if masked && v > 1 {
        for (i, &t) in y.iter().enumerate() {
            // A masked entry that is not the target.
            z[i * v + (t as usize + 1) % v] = f32::NEG_INFINITY;
        }
    }
    let scale = 1.0 / rows as f32;
    let zt = upload(dev, &z);
    let yt = upload_u32(dev, &y).unwrap();
    // Loss and gradient in one tensor: two read_write views of one buffer.
    let out = alloc(dev, 3 + rows * v + rows).unwrap();
    softmax_xent(
        View::at(&out, 3, (rows * v) as u64),
        View::at(&out, 3 + (rows * v) as u64, rows as u64),
        View::all(&zt),
        View::all(&yt),
        rows,
        v,
        scale,
    )
    .unwrap();
    let got = out.to_vec().unwrap();
    let (gd, gl) = got[3..].split_at(rows * v);
    let (loss, d) = reference(&z, &y, v, scale as f64);
    let mut worst = (0f64, 0f64);
    for (g, e) in gl.iter().zip(&loss).chain(gd.iter().zip(&d)) {
        let abs = (*g as f64 - e).abs();
        let rel = abs / e.abs().max(1e-30);
        worst = (worst.0.max(abs), worst.1.max(rel.min(abs / 1e-6)));
        assert!(abs <= 1e-5 * e.abs() + 1e-7 * scale as f64, "rows {rows} v {v}: got {g}, expected {e}");
    }
    if masked && v > 1 {
        for (i, &t) in y.iter().enumerate() {
            assert_eq!(gd[i * v + (t as usize + 1) % v], 0.0, "masked entry has gradient");
        }
    }
    eprintln!("xent rows {rows} v {v}: max abs {:.3e}, max rel {:.3e}", worst.0, worst.1);
}

#[test]
fn matches_f64_small_vocab() {
    for rows in [1, 2, 63, 64, 65, 300] {
        check(rows, 7, rows as u64, false);
    }
    check(5, 1, 9, false);
}

#[test]
fn matches_f64_large_vocab() {
    check(1, 1000, 3, false);
    check(37, 1000, 4, true);
}

#[test]
fn batches_over_small_bindings() {
    // 16 rows of 1000 per 64 KiB binding.
    let Ok(dev) = crate::context::WgpuContext::with_binding_cap(64 * 1024) else { return };
    check_on(&dev, 37, 1000, 5, true);
}

#[test]
fn masked_logits() {
    check(300, 7, 11, true);
    check(3, 2, 12, true);
}

#[test]
fn rejects_aliased_input() {
    let Some(dev) = crate::test_context() else { return };
    let t = alloc(&dev, 16).unwrap();
    let y = upload_u32(&dev, &[0, 1]).unwrap();
    let e = softmax_xent(View::at(&t, 0, 8), View::at(&t, 8, 2), View::at(&t, 8, 8), View::all(&y), 2, 4, 1.0);
    assert!(e.is_err());
}

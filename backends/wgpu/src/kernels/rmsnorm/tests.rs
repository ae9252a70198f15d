//! RMSNorm forward and backward against the definition.

use super::{rmsnorm_backward, rmsnorm_forward};
use crate::kernels::View;
use crate::kernels::test_util::{Lcg, check, get, put};
use crate::test_context;

/// out, rstd in f64 from the definition (mean of squares over the row).
fn reference(x: &[f32], w: &[f32], c: usize, eps: f64) -> (Vec<f64>, Vec<f64>) {
    let (mut out, mut rstd) = (Vec::new(), Vec::new());
    for row in x.chunks(c) {
        let ms = row.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / c as f64;
        let s = 1.0 / (ms + eps).sqrt();
        out.extend(row.iter().zip(w).map(|(&v, &g)| v as f64 * s * g as f64));
        rstd.push(s);
    }
    (out, rstd)
}

/// Central differences of L = Σ dout·rmsnorm(x) in f64: the gradients of
/// x and w, worked from the forward alone.
fn numeric(x: &[f32], w: &[f32], d: &[f32], c: usize, eps: f64) -> (Vec<f64>, Vec<f64>) {
    let loss = |x: &[f64], w: &[f64]| -> f64 {
        let mut l = 0.0;
        for (r, row) in x.chunks(c).enumerate() {
            let s = 1.0 / (row.iter().map(|v| v * v).sum::<f64>() / c as f64 + eps).sqrt();
            for i in 0..c {
                l += d[r * c + i] as f64 * row[i] * s * w[i];
            }
        }
        l
    };
    let (x64, w64): (Vec<f64>, Vec<f64>) =
        (x.iter().map(|&v| v as f64).collect(), w.iter().map(|&v| v as f64).collect());
    let h = 1e-6;
    let grad = |v: &[f64], is_x: bool| -> Vec<f64> {
        (0..v.len())
            .map(|i| {
                let (mut a, mut b) = (v.to_vec(), v.to_vec());
                a[i] += h;
                b[i] -= h;
                let (la, lb) = if is_x { (loss(&a, &w64), loss(&b, &w64)) } else { (loss(&x64, &a), loss(&x64, &b)) };
                (la - lb) / (2.0 * h)
            })
            .collect()
    };
    (grad(&x64, true), grad(&w64, false))
}

#[test]
fn forward_and_backward_match_the_definition() {
    let Some(dev) = test_context() else { return };
    // Widths below, at and past one workgroup; rows past one gradient chunk.
    for (rows, c, eps) in [(3usize, 7usize, 1e-5f64), (5, 256, 1e-6), (300, 19, 1e-5), (2, 600, 1e-5)] {
        let mut rng = Lcg(rows as u64 * 31 + c as u64);
        let x = rng.vec(rows * c, -2.0, 2.0);
        let w = rng.vec(c, 0.5, 1.5);
        let d = rng.vec(rows * c, -1.0, 1.0);
        let (tx, tw, td) = (put(&dev, &x, 3).unwrap(), put(&dev, &w, 1).unwrap(), put(&dev, &d, 2).unwrap());
        let (xv, wv, dv) =
            (View::at(&tx, 3, x.len() as u64), View::at(&tw, 1, c as u64), View::at(&td, 2, d.len() as u64));
        let (to, tr) = (put(&dev, &vec![0.0; rows * c], 4).unwrap(), put(&dev, &vec![0.0; rows], 5).unwrap());
        let (ov, rv) = (View::at(&to, 4, (rows * c) as u64), View::at(&tr, 5, rows as u64));
        rmsnorm_forward(ov, rv, xv, wv, rows, c, eps as f32).unwrap();
        let (want_out, want_rstd) = reference(&x, &w, c, eps);
        check(&format!("rmsnorm out {rows}×{c}"), &get(ov), &want_out, 1e-5);
        check(&format!("rmsnorm rstd {rows}×{c}"), &get(rv), &want_rstd, 1e-5);

        // dinp and dw accumulate onto what they hold.
        let (dx0, dw0) = (rng.vec(rows * c, -1.0, 1.0), rng.vec(c, -1.0, 1.0));
        let (tdx, tdw) = (put(&dev, &dx0, 6).unwrap(), put(&dev, &dw0, 7).unwrap());
        let (dxv, dwv) = (View::at(&tdx, 6, dx0.len() as u64), View::at(&tdw, 7, c as u64));
        rmsnorm_backward(dxv, dwv, dv, xv, wv, rv, rows, c).unwrap();
        if rows * c <= 2000 {
            let (gx, gw) = numeric(&x, &w, &d, c, eps);
            let wx: Vec<f64> = gx.iter().zip(&dx0).map(|(g, &a)| g + a as f64).collect();
            let ww: Vec<f64> = gw.iter().zip(&dw0).map(|(g, &a)| g + a as f64).collect();
            check(&format!("rmsnorm dinp {rows}×{c}"), &get(dxv), &wx, 1e-4);
            check(&format!("rmsnorm dw {rows}×{c}"), &get(dwv), &ww, 1e-4);
        } else {
            // Past the chunk: dw against the closed form Σ dout·x·rstd.
            let mut ww: Vec<f64> = dw0.iter().map(|&a| a as f64).collect();
            for r in 0..rows {
                for i in 0..c {
                    ww[i] += d[r * c + i] as f64 * x[r * c + i] as f64 * want_rstd[r];
                }
            }
            check(&format!("rmsnorm dw {rows}×{c}"), &get(dwv), &ww, 1e-4);
        }
    }
}

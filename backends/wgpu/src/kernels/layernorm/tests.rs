//! LayerNorm forward and backward against a host reference.

use super::*;
use crate::WgpuContext;
use crate::context::WgpuDevice;
use crate::kernels::test_util::{Lcg, check, get, put};

const SHAPES: [(usize, usize); 7] = [(1, 1), (3, 5), (257, 1), (3, 128), (257, 5), (1, 300), (257, 300)];

/// (out, mean, rstd) of rows of c, in f64.
fn reference_forward(x: &[f32], w: &[f32], b: &[f32], c: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (mut out, mut mean, mut rstd) = (vec![], vec![], vec![]);
    for row in x.chunks(c) {
        let mu = row.iter().map(|&v| v as f64).sum::<f64>() / c as f64;
        let var = row.iter().map(|&v| (v as f64 - mu).powi(2)).sum::<f64>() / c as f64;
        let s = 1.0 / (var + 1e-5).sqrt();
        out.extend((0..c).map(|j| (row[j] as f64 - mu) * s * w[j] as f64 + b[j] as f64));
        mean.push(mu);
        rstd.push(s);
    }
    (out, mean, rstd)
}

fn forward_case(dev: &WgpuDevice, g: &mut Lcg, rows: usize, c: usize) {
    // An offset mean makes the two-pass variance matter.
    let x = g.vec(rows * c, 2.0, 4.0);
    let (w, b) = (g.vec(c, 0.5, 1.5), g.vec(c, -0.5, 0.5));
    let mut wb = w.clone();
    wb.extend_from_slice(&b);
    let (tx, twb) = (put(dev, &x, 7).unwrap(), put(dev, &wb, 3).unwrap());
    // out, mean and rstd in one activation block.
    let acts = put(dev, &vec![0.0; rows * c + 2 * rows], 5).unwrap();
    let ov = View::at(&acts, 5, (rows * c) as u64);
    let mv = View::at(&acts, 5 + (rows * c) as u64, rows as u64);
    let rv = View::at(&acts, 5 + (rows * c + rows) as u64, rows as u64);
    let (wv, bv) = (View::at(&twb, 3, c as u64), View::at(&twb, 3 + c as u64, c as u64));
    layernorm_forward(ov, mv, rv, View::at(&tx, 7, x.len() as u64), wv, bv, rows, c).unwrap();
    let (out, mean, rstd) = reference_forward(&x, &w, &b, c);
    let all = get(View::at(&acts, 5, (rows * c + 2 * rows) as u64));
    let name = format!("rows={rows} c={c}");
    check(&format!("layernorm_forward out {name}"), &all[..rows * c], &out, 1e-5);
    check(&format!("layernorm_forward mean {name}"), &all[rows * c..][..rows], &mean, 1e-6);
    check(&format!("layernorm_forward rstd {name}"), &all[rows * c + rows..], &rstd, 1e-5);
}

#[test]
fn forward_matches_reference() {
    let Some(dev) = crate::test_context() else { return };
    let mut g = Lcg(21);
    for (rows, c) in SHAPES {
        forward_case(&dev, &mut g, rows, c);
    }
}

fn backward_case(dev: &WgpuDevice, g: &mut Lcg, rows: usize, c: usize) {
    let x = g.vec(rows * c, -1.0, 3.0);
    let dout = g.vec(rows * c, -1.0, 1.0);
    let w = g.vec(c, 0.5, 1.5);
    let (_, mean, rstd) = reference_forward(&x, &w, &w, c);
    let (mean32, rstd32): (Vec<f32>, Vec<f32>) =
        (mean.iter().map(|&v| v as f32).collect(), rstd.iter().map(|&v| v as f32).collect());
    let dinp0 = g.vec(rows * c, -1.0, 1.0);
    // dw and db: two read_write views of one gradient block, nonzero.
    let grads0 = g.vec(2 * c + 3, -1.0, 1.0);
    let (tx, td, tw) = (put(dev, &x, 1).unwrap(), put(dev, &dout, 2).unwrap(), put(dev, &w, 3).unwrap());
    let (tm, tr) = (put(dev, &mean32, 4).unwrap(), put(dev, &rstd32, 5).unwrap());
    let (tdi, tg) = (put(dev, &dinp0, 6).unwrap(), put(dev, &grads0, 7).unwrap());
    let div = View::at(&tdi, 6, dinp0.len() as u64);
    let dwv = View::at(&tg, 7, c as u64);
    let dbv = View::at(&tg, 7 + c as u64 + 3, c as u64);
    let n = (rows * c) as u64;
    let (mv, rv) = (View::at(&tm, 4, rows as u64), View::at(&tr, 5, rows as u64));
    let (dov, xv, wv) = (View::at(&td, 2, n), View::at(&tx, 1, n), View::at(&tw, 3, c as u64));
    layernorm_backward(div, dwv, dbv, dov, xv, wv, mv, rv, rows, c).unwrap();

    let mut dinp: Vec<f64> = dinp0.iter().map(|&v| v as f64).collect();
    let mut grads: Vec<f64> = grads0.iter().map(|&v| v as f64).collect();
    for r in 0..rows {
        let (mu, s) = (mean32[r] as f64, rstd32[r] as f64);
        let norm = |j: usize| (x[r * c + j] as f64 - mu) * s;
        let dn = |j: usize| dout[r * c + j] as f64 * w[j] as f64;
        let dm = (0..c).map(dn).sum::<f64>() / c as f64;
        let dnm = (0..c).map(|j| dn(j) * norm(j)).sum::<f64>() / c as f64;
        for j in 0..c {
            dinp[r * c + j] += (dn(j) - dm - norm(j) * dnm) * s;
            grads[j] += dout[r * c + j] as f64 * norm(j);
            grads[c + 3 + j] += dout[r * c + j] as f64;
        }
    }
    let name = format!("rows={rows} c={c}");
    check(&format!("layernorm_backward dinp {name}"), &get(div), &dinp, 2e-5);
    let got = get(View::at(&tg, 7, grads0.len() as u64));
    check(&format!("layernorm_backward dw {name}"), &got[..c], &grads[..c], 2e-5);
    check(&format!("layernorm_backward db {name}"), &got[c + 3..], &grads[c + 3..], 2e-5);
    assert_eq!(got[c..c + 3], grads0[c..c + 3], "between dw and db");
}

#[test]
fn backward_matches_reference() {
    let Some(dev) = crate::test_context() else { return };
    let mut g = Lcg(22);
    for (rows, c) in SHAPES {
        backward_case(&dev, &mut g, rows, c);
    }
}

#[test]
fn backward_is_deterministic() {
    let Some(dev) = crate::test_context() else { return };
    let mut g = Lcg(23);
    let (rows, c) = (600, 7);
    let (x, d) = (g.vec(rows * c, -1.0, 1.0), g.vec(rows * c, -1.0, 1.0));
    let (tx, td, tw) = (put(&dev, &x, 0).unwrap(), put(&dev, &d, 0).unwrap(), put(&dev, &[1.0; 7], 0).unwrap());
    let (tm, tr) = (put(&dev, &vec![0.1; rows], 0).unwrap(), put(&dev, &vec![1.1; rows], 0).unwrap());
    let n = (rows * c) as u64;
    let mut runs = vec![];
    for _ in 0..2 {
        let tdi = put(&dev, &vec![0.0; rows * c], 0).unwrap();
        let tg = put(&dev, &vec![0.0; 2 * c], 0).unwrap();
        let (dwv, dbv) = (View::at(&tg, 0, c as u64), View::at(&tg, c as u64, c as u64));
        let (mv, rv) = (View::at(&tm, 0, rows as u64), View::at(&tr, 0, rows as u64));
        let (dov, xv, wv) = (View::at(&td, 0, n), View::at(&tx, 0, n), View::at(&tw, 0, c as u64));
        layernorm_backward(View::at(&tdi, 0, n), dwv, dbv, dov, xv, wv, mv, rv, rows, c).unwrap();
        runs.push(tg.to_vec().unwrap());
    }
    assert_eq!(runs[0], runs[1]);
}

#[test]
fn rows_split_beyond_the_binding_limit() {
    if crate::test_context().is_none() {
        return;
    }
    // 16 KiB bindings: 4032 elements, so 768 rows of 5 per dispatch in the
    // backward (whole chunks of 256) and 806 in the forward.
    let dev = WgpuContext::with_binding_cap(16384).unwrap();
    let mut g = Lcg(24);
    forward_case(&dev, &mut g, 1000, 5);
    backward_case(&dev, &mut g, 1000, 5);
    // Rows too long for one binding are an error, not a panic.
    let t = put(&dev, &vec![0.0; 8100], 0).unwrap();
    let (tm, tr) = (put(&dev, &[0.0], 0).unwrap(), put(&dev, &[0.0], 0).unwrap());
    let (tw, tb) = (put(&dev, &vec![1.0; 4050], 0).unwrap(), put(&dev, &vec![0.0; 4050], 0).unwrap());
    let e = layernorm_forward(
        View::at(&t, 0, 4050),
        View::at(&tm, 0, 1),
        View::at(&tr, 0, 1),
        View::at(&tb, 0, 4050),
        View::at(&tw, 0, 4050),
        View::at(&tw, 0, 4050),
        1,
        4050,
    );
    assert!(e.is_err());
}

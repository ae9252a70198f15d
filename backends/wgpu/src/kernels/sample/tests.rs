//! The samplers (plain and top-k / top-p) against the host's inverse-CDF rule.

use super::*;
use crate::kernels::{alloc, download_u32};

use crate::kernels::test_util::{rng, upload};

/// generate.rs's `sample`, transcribed.
fn reference(z: &[f32], temperature: f64, u: Option<f32>) -> (u32, f32) {
    let tau = if temperature > 0.0 { temperature } else { 1.0 };
    let max = z.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b as f64 / tau));
    let sum: f64 = z.iter().map(|&x| (x as f64 / tau - max).exp()).sum();
    let lse = max + sum.ln();
    let pick = match u {
        Some(u) if temperature > 0.0 => {
            let target = u as f64 * sum;
            let mut acc = 0.0;
            let mut pick = None;
            for (k, &x) in z.iter().enumerate() {
                let e = (x as f64 / tau - max).exp();
                acc += e;
                if e > 0.0 && target < acc {
                    pick = Some(k);
                    break;
                }
            }
            pick.unwrap_or_else(|| z.iter().rposition(|&x| (x as f64 / tau - max).exp() > 0.0).unwrap_or(0))
        }
        _ => {
            let mut best = 0;
            for (k, &x) in z.iter().enumerate() {
                if x > z[best] {
                    best = k;
                }
            }
            best
        }
    };
    (pick as u32, (z[pick] as f64 / tau - lse) as f32)
}

/// Logit rows of several kinds: random, masked, one-hot-ish, ties.
fn logit_rows(rows: usize, v: usize, seed: u64) -> Vec<f32> {
    let mut r = rng(seed);
    let mut z: Vec<f32> = (0..rows * v).map(|_| r() * 10.0 - 5.0).collect();
    for row in 0..rows {
        let zr = &mut z[row * v..(row + 1) * v];
        match row % 5 {
            1 if v > 2 => {
                for k in (0..v).step_by(2) {
                    zr[k] = f32::NEG_INFINITY;
                }
            }
            2 => {
                zr.fill(0.0);
                zr[v / 2] = 40.0;
            }
            3 => {
                zr.fill(-3.0);
                zr[v - 1] = 120.0;
            }
            4 if v > 3 => {
                let m = zr.iter().cloned().fold(f32::NEG_INFINITY, f32::max) + 1.0;
                zr[1] = m;
                zr[v - 1] = m;
            }
            _ => {}
        }
    }
    z
}

fn check(n: usize, v: usize, div: usize, temperature: f32, seed: u64) -> usize {
    let Some(dev) = crate::test_context() else { return 0 };
    check_on(&dev, n, v, div, temperature, seed)
}

fn check_on(dev: &crate::context::WgpuDevice, n: usize, v: usize, div: usize, temperature: f32, seed: u64) -> usize {
    let (steps, s) = (3, 1);
    let rows = n.div_ceil(div);
    let z = logit_rows(rows, v, seed);
    let mut r = rng(seed + 1);
    let mut u: Vec<f32> = (0..n * steps).map(|_| r()).collect();
    let special = [0.0, 1e-7, 1e-3, 0.5, 0.999, 0.99999994, 1.0 - 1e-6];
    for (i, &x) in special.iter().enumerate().take(n) {
        u[i * steps + s] = x;
    }
    let zt = upload(dev, &z);
    let ut = upload(dev, &u);
    // Tokens and log-probs in one tensor: two read_write views of one buffer.
    let out = upload(dev, &vec![-1.0; 2 * n * steps + 1]);
    let tokens = View::at(&out, 1, (n * steps) as u64);
    let logprobs = View::at(&out, 1 + (n * steps) as u64, (n * steps) as u64);
    sample(tokens, logprobs, View::all(&zt), View::all(&ut), n, v, div, steps, s, temperature).unwrap();
    let all = out.to_vec().unwrap();
    let toks = download_u32(&out, 1 + n * steps).unwrap();
    let mut worst = 0f64;
    for i in 0..n {
        let row = &z[(i / div) * v..(i / div + 1) * v];
        let uu = (temperature > 0.0).then_some(u[i * steps + s]);
        let (y, l) = reference(row, temperature as f64, uu);
        let (gy, gl) = (toks[1 + i * steps + s], all[1 + n * steps + i * steps + s]);
        assert_eq!(gy, y, "n {n} v {v} τ {temperature} row {i} u {uu:?}: token");
        let diff = (gl as f64 - l as f64).abs();
        worst = worst.max(diff);
        assert!(diff <= 1e-5 * l.abs().max(1.0) as f64, "n {n} v {v} row {i}: log-prob {gl} vs {l}");
        // Other steps are untouched.
        assert_eq!(all[1 + i * steps], -1.0);
    }
    eprintln!("sample n {n} v {v} div {div} τ {temperature}: tokens equal, max |Δℓ| {worst:.3e}");
    n
}

#[test]
fn matches_reference_small_vocab() {
    for (v, t) in [(1, 1.0), (2, 1.0), (7, 0.7), (13, 1.0), (30, 1.3)] {
        check(30, v, 3, t, v as u64);
        check(17, v, 1, t, 100 + v as u64);
    }
}

#[test]
fn matches_reference_large_vocab() {
    check(10, 1000, 3, 1.0, 7);
    check(5, 5003, 1, 0.8, 8);
}

#[test]
fn batches_over_small_bindings() {
    // 16 logit rows of 1000 per 64 KiB binding: batches start at rows 0, 16.
    let Ok(dev) = crate::context::WgpuContext::with_binding_cap(64 * 1024) else { return };
    check_on(&dev, 59, 1000, 3, 1.0, 31);
    check_on(&dev, 40, 1000, 1, 0.0, 32);
}

#[test]
fn greedy_takes_the_first_maximum() {
    check(12, 7, 3, 0.0, 21);
    check(6, 1000, 1, 0.0, 22);
    let Some(dev) = crate::test_context() else { return };
    let z = [1.0, 3.0, f32::NEG_INFINITY, 3.0, 2.0];
    let zt = upload(&dev, &z);
    let out = alloc(&dev, 2).unwrap();
    let (tok, lp) = (View::at(&out, 0, 1), View::at(&out, 1, 1));
    // A dummy uniform view of the outputs' own tensor is fine when greedy.
    sample(tok, lp, View::all(&zt), View::at(&out, 0, 1), 1, 5, 1, 1, 0, 0.0).unwrap();
    assert_eq!(download_u32(&out, 1).unwrap()[0], 1);
    let (_, l) = reference(&z, 0.0, None);
    assert!((out.to_vec().unwrap()[1] - l).abs() < 1e-6);
}

#[test]
fn many_uniforms_agree() {
    // A dense sweep: tokens differ from f64 only at CDF boundaries.
    let Some(dev) = crate::test_context() else { return };
    let (n, v) = (4000, 11);
    let z = logit_rows(1, v, 3);
    let u: Vec<f32> = (0..n).map(|i| (i as f32 + 0.5) / n as f32).collect();
    let (zt, ut) = (upload(&dev, &z), upload(&dev, &u));
    let (tt, lt) = (alloc(&dev, n).unwrap(), alloc(&dev, n).unwrap());
    sample(View::all(&tt), View::all(&lt), View::all(&zt), View::all(&ut), n, v, n, 1, 0, 0.9).unwrap();
    let toks = download_u32(&tt, n).unwrap();
    for i in 0..n {
        assert_eq!(toks[i], reference(&z, 0.9, Some(u[i])).0, "u {}", u[i]);
    }
}

#[test]
fn edge_uniforms_follow_the_f64_rules() {
    let Some(dev) = crate::test_context() else { return };
    let ninf = f32::NEG_INFINITY;
    // exp(−123) is 0 in f32 but has mass in f64: u = 0 takes token 0.
    let mut rows = vec![vec![-3.0, -3.0, -3.0, 120.0], vec![ninf, ninf, 2.0, 1.0], vec![ninf, 0.5, ninf, ninf]];
    rows.push(vec![0.0, 0.0, 0.0, f32::NAN]);
    let us = [0.0f32, 1e-30, 0.99999994, 1.0, 2.0, -0.5];
    for row in &rows {
        for &u in &us {
            let (zt, ut) = (upload(&dev, row), upload(&dev, &[u]));
            let (tt, lt) = (alloc(&dev, 1).unwrap(), alloc(&dev, 1).unwrap());
            sample(View::all(&tt), View::all(&lt), View::all(&zt), View::all(&ut), 1, 4, 1, 1, 0, 1.0).unwrap();
            let (y, l) = reference(row, 1.0, Some(u));
            assert_eq!(download_u32(&tt, 1).unwrap()[0], y, "row {row:?} u {u}");
            let gl = lt.to_vec().unwrap()[0];
            assert!(gl == l || (gl - l).abs() <= 1e-5 * l.abs().max(1.0) || (gl.is_nan() && l.is_nan()), "{gl} vs {l}");
        }
    }
}

#[test]
fn many_uniforms_agree_large_vocab() {
    // Chunks of 16 tokens: the walk crosses chunk boundaries.
    let Some(dev) = crate::test_context() else { return };
    let (n, v) = (2000, 1000);
    let z = logit_rows(1, v, 4);
    let u: Vec<f32> = (0..n).map(|i| (i as f32 + 0.25) / n as f32).collect();
    let (zt, ut) = (upload(&dev, &z), upload(&dev, &u));
    let (tt, lt) = (alloc(&dev, n).unwrap(), alloc(&dev, n).unwrap());
    sample(View::all(&tt), View::all(&lt), View::all(&zt), View::all(&ut), n, v, n, 1, 0, 1.0).unwrap();
    let toks = download_u32(&tt, n).unwrap();
    let lps = lt.to_vec().unwrap();
    let mut worst = 0f32;
    for i in 0..n {
        let (y, l) = reference(&z, 1.0, Some(u[i]));
        assert_eq!(toks[i], y, "u {}", u[i]);
        worst = worst.max((lps[i] - l).abs());
    }
    assert!(worst < 1e-5);
    eprintln!("sample sweep v {v}: {n} tokens equal, max |Δℓ| {worst:.3e}");
}

#[test]
fn rejects_bad_arguments() {
    let Some(dev) = crate::test_context() else { return };
    let z = alloc(&dev, 8).unwrap();
    let o = alloc(&dev, 8).unwrap();
    let (a, b) = (View::at(&o, 0, 4), View::at(&o, 4, 4));
    assert!(sample(a, b, View::all(&z), View::all(&z), 4, 2, 1, 1, 1, 1.0).is_err());
    assert!(sample(a, b, View::all(&z), View::all(&z), 4, 2, 0, 1, 0, 1.0).is_err());
    assert!(sample(a, b, View::all(&z), View::at(&z, 0, 2), 4, 2, 1, 1, 0, 1.0).is_err());
    assert!(sample(a, b, View::all(&z), View::at(&o, 0, 4), 4, 2, 1, 1, 0, 1.0).is_err());
}

/// generate.rs's `sample_with` (the truncated draw), transcribed.
fn reference_truncated(z: &[f32], temperature: f64, top_k: usize, top_p: f64, u: f32) -> (u32, f32) {
    let max = z.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b as f64 / temperature));
    let mut order: Vec<(u32, f64)> = z
        .iter()
        .enumerate()
        .map(|(k, &x)| (k as u32, (x as f64 / temperature - max).exp()))
        .filter(|&(_, e)| e > 0.0)
        .collect();
    order.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    if top_k > 0 {
        order.truncate(top_k);
    }
    if top_p > 0.0 && top_p < 1.0 {
        let total: f64 = order.iter().map(|x| x.1).sum();
        let (mut acc, mut keep) = (0.0, order.len());
        for (j, x) in order.iter().enumerate() {
            acc += x.1;
            if acc >= top_p * total {
                keep = j + 1;
                break;
            }
        }
        order.truncate(keep);
    }
    order.sort_by_key(|x| x.0);
    let sum: f64 = order.iter().map(|x| x.1).sum();
    let target = u as f64 * sum;
    let mut acc = 0.0;
    let mut pick = order[order.len() - 1];
    for &x in &order {
        acc += x.1;
        if target < acc {
            pick = x;
            break;
        }
    }
    (pick.0, (pick.1 / sum).ln() as f32)
}

/// Rows for the cuts: [`logit_rows`], and rows of few distinct values
/// (many ties at every cut), half of them −inf.
fn truncation_rows(rows: usize, v: usize, seed: u64) -> Vec<f32> {
    let mut z = logit_rows(rows, v, seed);
    let mut r = rng(seed + 7);
    for row in (0..rows).filter(|row| row % 3 == 2) {
        for k in 0..v {
            let level = (r() * 3.0).floor();
            z[row * v + k] = if row % 2 == 0 && k % 2 == 1 { f32::NEG_INFINITY } else { level };
        }
    }
    z
}

fn check_truncated(dev: &crate::context::WgpuDevice, n: usize, v: usize, div: usize, tau: f32, cut: Truncation) {
    let (steps, s) = (2, 1);
    let rows = n.div_ceil(div);
    let z = truncation_rows(rows, v, v as u64 + cut.top_k as u64);
    let mut r = rng(v as u64 + 3);
    let mut u: Vec<f32> = (0..n * steps).map(|_| r()).collect();
    for (i, &x) in [0.0, 0.99999994, 1e-7, 0.5].iter().enumerate().take(n) {
        u[i * steps + s] = x;
    }
    let (zt, ut) = (upload(dev, &z), upload(dev, &u));
    let (tt, lt) = (alloc(dev, n * steps).unwrap(), alloc(dev, n * steps).unwrap());
    let (tv, lv) = (View::all(&tt), View::all(&lt));
    sample_truncated(tv, lv, View::all(&zt), View::all(&ut), n, v, div, steps, s, tau, cut).unwrap();
    let (toks, lps) = (download_u32(&tt, n * steps).unwrap(), lt.to_vec().unwrap());
    let mut worst = 0f64;
    for i in 0..n {
        let row = &z[(i / div) * v..(i / div + 1) * v];
        let uu = u[i * steps + s];
        let (y, l) = reference_truncated(row, tau as f64, cut.top_k, cut.top_p as f64, uu);
        let (gy, gl) = (toks[i * steps + s], lps[i * steps + s]);
        assert_eq!(gy, y, "v {v} {cut:?} τ {tau} row {i} u {uu}: token");
        let diff = (gl as f64 - l as f64).abs();
        worst = worst.max(diff);
        assert!(diff <= 1e-5 * l.abs().max(1.0) as f64, "v {v} {cut:?} row {i}: log-prob {gl} vs {l}");
    }
    eprintln!("truncated n {n} v {v} {cut:?} τ {tau}: tokens equal, max |Δℓ| {worst:.3e}");
}

/// A row with a NaN or an infinite maximum has no distribution to
/// truncate (the CPU rule): the cuts are skipped, and the draw is over
/// every token with mass, in id order.
#[test]
fn truncated_rows_without_a_distribution_are_not_cut() {
    let Some(dev) = crate::test_context() else { return };
    let cut = Truncation { top_k: 1, top_p: 0.5 };
    // With the cuts only token 2 could be drawn; u = 0 draws token 0.
    for row in [[0.0, 1.0, 3.0, f32::NAN], [0.0, 1.0, 3.0, 2.0]] {
        let (zt, ut) = (upload(&dev, &row), upload(&dev, &[0.0]));
        let (tt, lt) = (alloc(&dev, 1).unwrap(), alloc(&dev, 1).unwrap());
        let (tv, lv) = (View::all(&tt), View::all(&lt));
        sample_truncated(tv, lv, View::all(&zt), View::all(&ut), 1, 4, 1, 1, 0, 1.0, cut).unwrap();
        let want = if row[3].is_nan() { 0 } else { 2 };
        assert_eq!(download_u32(&tt, 1).unwrap()[0], want, "{row:?}");
    }
}

#[test]
fn truncated_matches_reference() {
    let Some(dev) = crate::test_context() else { return };
    let cuts = [(1, 0.0), (3, 0.0), (0, 0.37), (5, 0.83), (2, 1.0), (0, 0.999), (40, 0.61)];
    for v in [1, 2, 7, 30] {
        for (k, p) in cuts {
            check_truncated(&dev, 24, v, 2, 1.0, Truncation { top_k: k, top_p: p });
            // k ≥ V: only top-p cuts.
            check_truncated(&dev, 9, v, 1, 0.7, Truncation { top_k: v + k, top_p: p });
        }
    }
    for (k, p) in cuts {
        check_truncated(&dev, 12, 1000, 3, 1.3, Truncation { top_k: k, top_p: p });
        check_truncated(&dev, 6, 5003, 1, 0.8, Truncation { top_k: k * 37, top_p: p });
    }
}

//! The GEMM (every variant, tile and split) and the column sums against host references; the GEMM plan.

use super::super::{View, alloc, write};
use super::bench::gemm_tflops;
use super::*;
use crate::WgpuTensor;
use crate::context::WgpuDevice;

/// Marks the elements around a view, which a kernel must leave alone.
const SENTINEL: f32 = 12345.0;

struct Rng(u64);

impl Rng {
    fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n)
            .map(|_| {
                self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }
}

/// A tensor holding `data` at element `off`, sentinels before and after.
fn padded(dev: &WgpuDevice, off: usize, data: &[f32]) -> WgpuTensor {
    let t = alloc(dev, off + data.len() + 5).unwrap();
    write(&t, 0, &vec![SENTINEL; off + data.len() + 5]).unwrap();
    write(&t, off as u64, data).unwrap();
    t
}

/// Reads `len` elements at `off`, asserting the sentinels around them.
fn read_back(t: &WgpuTensor, off: usize, len: usize) -> Vec<f32> {
    let v = t.to_vec().unwrap();
    assert!(v[..off].iter().chain(&v[off + len..]).all(|&x| x == SENTINEL), "a write outside the view");
    v[off..off + len].to_vec()
}

/// Asserts `got` within 1e-5 of `want` relative to `scale` (Σ|terms|);
/// returns the max abs and relative differences.
fn compare(what: &str, got: &[f32], want: &[f64], scale: &[f64]) -> (f64, f64) {
    let (mut abs, mut rel) = (0.0f64, 0.0f64);
    for (i, ((&g, &w), &s)) in got.iter().zip(want).zip(scale).enumerate() {
        let d = (g as f64 - w).abs();
        assert!(d <= 1e-5 * s + 1e-30, "{what}: element {i}: got {g}, want {w} (scale {s})");
        abs = abs.max(d);
        rel = rel.max(d / s.max(1e-30));
    }
    (abs, rel)
}

/// The f64 reference of `gemm` and the Σ|terms| of every element.
fn reference(g: &Gemm, a: &[f32], b: &[f32], bias: Option<&[f32]>, out0: &[f32]) -> (Vec<f64>, Vec<f64>) {
    let (m, n, k) = (g.m, g.n, g.k);
    let mut want = vec![0.0; m * n];
    let mut scale = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            let (mut s, mut sa) = (0.0f64, 0.0f64);
            for l in 0..k {
                let x = if g.a_t { a[l * m + i] } else { a[i * k + l] } as f64;
                let y = if g.b_t { b[j * k + l] } else { b[l * n + j] } as f64;
                s += x * y;
                sa += (x * y).abs();
            }
            if g.accumulate {
                s += out0[i * n + j] as f64;
                sa += (out0[i * n + j] as f64).abs();
            }
            if let Some(bias) = bias {
                s += bias[j] as f64;
                sa += (bias[j] as f64).abs();
            }
            want[i * n + j] = s;
            scale[i * n + j] = sa;
        }
    }
    (want, scale)
}

/// Runs one GEMM on views at odd offsets (`plan` forced when Some) and checks
/// it against the reference; returns the max abs and relative differences.
fn check_gemm(dev: &WgpuDevice, g: Gemm, with_bias: bool, plan: Option<Plan>, seed: u64) -> (f64, f64) {
    let mut rng = Rng(seed);
    let (a, b, bias, out0) = (rng.vec(g.m * g.k), rng.vec(g.k * g.n), rng.vec(g.n), rng.vec(g.m * g.n));
    let (oa, ob, obias, oo) = if seed.is_multiple_of(2) { (3, 5, 1, 7) } else { (0, 4, 0, 8) };
    let (ta, tb, tbias, to) =
        (padded(dev, oa, &a), padded(dev, ob, &b), padded(dev, obias, &bias), padded(dev, oo, &out0));
    let (m, n, k) = (g.m as u64, g.n as u64, g.k as u64);
    let (va, vb, vo) =
        (View::at(&ta, oa as u64, m * k), View::at(&tb, ob as u64, k * n), View::at(&to, oo as u64, m * n));
    let vbias = with_bias.then(|| View::at(&tbias, obias as u64, n));
    match plan {
        Some(p) => gemm_planned(vo, va, vb, vbias, g, p).unwrap(),
        None => gemm(vo, va, vb, vbias, g).unwrap(),
    }
    let got = read_back(&to, oo, g.m * g.n);
    let (want, scale) = reference(&g, &a, &b, with_bias.then_some(&bias[..]), &out0);
    compare(&format!("{g:?} bias {with_bias} plan {plan:?}"), &got, &want, &scale)
}

fn variants() -> impl Iterator<Item = (bool, bool, bool, bool)> {
    (0..16).map(|i| (i & 1 != 0, i & 2 != 0, i & 4 != 0, i & 8 != 0))
}

#[test]
fn gemm_every_variant_on_odd_shapes() {
    let Some(dev) = crate::test_context() else { return };
    let (mut abs, mut rel) = (0.0f64, 0.0f64);
    let mut seed = 1;
    for (m, n, k) in [(1, 1, 1), (7, 5, 3), (65, 33, 129), (130, 10, 257), (300, 3, 1000), (3, 300, 40)] {
        for (a_t, b_t, accumulate, bias) in variants() {
            let g = Gemm { m, n, k, a_t, b_t, accumulate };
            let (d, r) = check_gemm(&dev, g, bias, None, seed);
            (abs, rel, seed) = (abs.max(d), rel.max(r), seed + 1);
        }
    }
    println!("gemm: max abs diff {abs:.3e}, max rel diff {rel:.3e}");
}

#[test]
fn gemm_every_tile_and_split() {
    let Some(dev) = crate::test_context() else { return };
    let (mut abs, mut rel) = (0.0f64, 0.0f64);
    let mut seed = 100u64;
    let shapes = [(130, 129, 200), (1, 7, 45), (257, 3, 77), (8, 140, 1)];
    for (m, n, k) in shapes {
        for tiles in [Tiles::Big, Tiles::Small] {
            for splits in [1, 3] {
                for (a_t, b_t, accumulate, bias) in variants() {
                    // Every variant per plan on the first shape, a quarter on the others.
                    if m != 130 && !seed.is_multiple_of(4) {
                        seed += 1;
                        continue;
                    }
                    let g = Gemm { m, n, k, a_t, b_t, accumulate };
                    let (d, r) = check_gemm(&dev, g, bias, Some(Plan::new(tiles, k, splits)), seed);
                    (abs, rel, seed) = (abs.max(d), rel.max(r), seed + 1);
                }
            }
        }
    }
    println!("gemm (forced plans): max abs diff {abs:.3e}, max rel diff {rel:.3e}");
}

#[test]
fn gemm_plan_fits_the_shapes() {
    let g = |m, n, k, a_t| Gemm { m, n, k, a_t, b_t: false, accumulate: false };
    let cap = 1 << 30;
    assert_eq!(plan(&g(4096, 4096, 4096, false), cap), Plan { tiles: Tiles::Big, splits: 1, split_k: 4096 });
    // Weight gradient over 100k rows: few output tiles, so k is split.
    let p = plan(&g(1536, 512, 100_000, true), cap);
    assert_eq!(p.tiles, Tiles::Big);
    assert!(p.splits > 1 && p.splits * p.split_k >= 100_000 && (p.splits - 1) * p.split_k < 100_000, "{p:?}");
    // LM head (a vocabulary of 10): narrow tiles.
    assert_eq!(plan(&g(100_000, 10, 512, false), cap).tiles, Tiles::Small);
    assert_eq!(plan(&g(100_000, 10, 512, false), cap).splits, 1);
    // Generation: a few rows.
    assert_eq!(plan(&g(4, 1536, 512, false), cap).tiles, Tiles::Small);
    // The partials stay within the cap.
    let p = plan(&g(1536, 512, 100_000, true), 1536 * 512 * 3);
    assert!(p.splits <= 3, "{p:?}");
    // Splits cover k exactly once, in whole k-tiles.
    for k in [1, 7, 8, 9, 100, 1001] {
        for s in 1..6 {
            let p = Plan::new(Tiles::Big, k, s);
            assert!(
                p.split_k.is_multiple_of(8) && p.splits * p.split_k >= k && (p.splits - 1) * p.split_k < k,
                "{p:?}"
            );
        }
    }
}

#[test]
fn gemm_and_column_sum_share_tensors() {
    let Some(dev) = crate::test_context() else { return };
    let (r, c, oc) = (37, 20, 12);
    let mut rng = Rng(7);
    let (inp, w, bias) = (rng.vec(r * c), rng.vec(oc * c), rng.vec(oc));
    // One parameter block holding W and its bias, read in one dispatch.
    let params = padded(&dev, 3, &[w.clone(), bias.clone()].concat());
    let tin = padded(&dev, 0, &inp);
    let out = padded(&dev, 2, &vec![0.0; r * oc]);
    let g = Gemm { m: r, n: oc, k: c, a_t: false, b_t: true, accumulate: false };
    let (rw, rb) = (View::at(&params, 3, (oc * c) as u64), View::at(&params, (3 + oc * c) as u64, oc as u64));
    let vo = View::at(&out, 2, (r * oc) as u64);
    gemm(vo, View::all(&tin).sub(0, (r * c) as u64), rw, Some(rb), g).unwrap();
    let fwd = read_back(&out, 2, r * oc);
    let (want, scale) = reference(&g, &inp, &w, Some(&bias), &[]);
    let (d1, r1) = compare("forward", &fwd, &want, &scale);

    // Weight and bias gradients into one gradient block, both accumulating.
    let (dw0, db0) = (rng.vec(oc * c), rng.vec(oc));
    let grads = padded(&dev, 1, &[dw0.clone(), db0.clone()].concat());
    let (gw, gb) = (View::at(&grads, 1, (oc * c) as u64), View::at(&grads, (1 + oc * c) as u64, oc as u64));
    let gg = Gemm { m: oc, n: c, k: r, a_t: true, b_t: false, accumulate: true };
    gemm(gw, vo, View::all(&tin).sub(0, (r * c) as u64), None, gg).unwrap();
    column_sum(gb, vo, r, oc, true).unwrap();
    let got = read_back(&grads, 1, oc * c + oc);
    let (want, scale) = reference(&gg, &fwd, &inp, None, &dw0);
    let (d2, r2) = compare("weight gradient", &got[..oc * c], &want, &scale);
    let (want, scale) = column_reference(&fwd, r, oc, Some(&db0));
    let (d3, r3) = compare("bias gradient", &got[oc * c..], &want, &scale);

    // An output sharing its tensor with an input is refused, and the
    // context stays usable.
    let e = gemm(
        View::at(&params, 0, 4),
        rw,
        rw,
        None,
        Gemm { m: 2, n: 2, k: 2, a_t: false, b_t: false, accumulate: false },
    );
    assert!(e.is_err());
    assert!(column_sum(gb, gw, 2, 2, false).is_err());
    gemm(vo, View::all(&tin).sub(0, (r * c) as u64), rw, Some(rb), g).unwrap();
    assert_eq!(read_back(&out, 2, r * oc), fwd);
    let (d, rel) = (d1.max(d2).max(d3), r1.max(r2).max(r3));
    println!("shared tensors: max abs diff {d:.3e}, max rel diff {rel:.3e}");
}

/// The f64 column sums of x (rows, n) [+ out0] and their Σ|terms|.
fn column_reference(x: &[f32], rows: usize, n: usize, out0: Option<&[f32]>) -> (Vec<f64>, Vec<f64>) {
    let mut want = vec![0.0; n];
    let mut scale = vec![0.0; n];
    for j in 0..n {
        for i in 0..rows {
            want[j] += x[i * n + j] as f64;
            scale[j] += (x[i * n + j] as f64).abs();
        }
        if let Some(o) = out0 {
            want[j] += o[j] as f64;
            scale[j] += (o[j] as f64).abs();
        }
    }
    (want, scale)
}

#[test]
fn column_sum_odd_shapes() {
    let Some(dev) = crate::test_context() else { return };
    let (mut abs, mut rel) = (0.0f64, 0.0f64);
    let mut rng = Rng(11);
    let mut cases = vec![(140_001, 3), (2, 1)];
    for rows in [1, 5, 257, 1003] {
        for n in [1, 3, 70, 130] {
            cases.push((rows, n));
        }
    }
    for (i, (rows, n)) in cases.into_iter().enumerate() {
        for accumulate in [false, true] {
            let (x, out0) = (rng.vec(rows * n), rng.vec(n));
            let (ox, oo) = (i % 3, 2 * i % 5);
            let (tx, to) = (padded(&dev, ox, &x), padded(&dev, oo, &out0));
            column_sum(
                View::at(&to, oo as u64, n as u64),
                View::at(&tx, ox as u64, (rows * n) as u64),
                rows,
                n,
                accumulate,
            )
            .unwrap();
            let got = read_back(&to, oo, n);
            let (want, scale) = column_reference(&x, rows, n, accumulate.then_some(&out0[..]));
            let (d, r) = compare(&format!("column_sum rows {rows} n {n} acc {accumulate}"), &got, &want, &scale);
            (abs, rel) = (abs.max(d), rel.max(r));
        }
    }
    // No rows: zeros, or the output unchanged when accumulating.
    let to = padded(&dev, 1, &[1.0, 2.0]);
    let x = padded(&dev, 0, &[0.0]);
    column_sum(View::at(&to, 1, 2), View::at(&x, 0, 0), 0, 2, true).unwrap();
    assert_eq!(read_back(&to, 1, 2), [1.0, 2.0]);
    column_sum(View::at(&to, 1, 2), View::at(&x, 0, 0), 0, 2, false).unwrap();
    assert_eq!(read_back(&to, 1, 2), [0.0, 0.0]);
    println!("column_sum: max abs diff {abs:.3e}, max rel diff {rel:.3e}");
}

#[test]
fn gemm_tflops_smoke() {
    let Some(dev) = crate::test_context() else { return };
    let t = gemm_tflops(&dev, 64, 1).unwrap();
    println!("gemm 64³: {t:.3e} TFLOP/s");
    assert!(t.is_finite() && t > 0.0);
}

/// Times `g` launched as `p` (the default plan when None): TFLOP/s.
fn time_planned(dev: &WgpuDevice, g: Gemm, p: Option<Plan>, tensors: &[WgpuTensor; 3], iters: usize) -> f64 {
    let [a, b, out] = tensors;
    let run = || match p {
        Some(p) => gemm_planned(View::all(out), View::all(a), View::all(b), None, g, p).unwrap(),
        None => gemm(View::all(out), View::all(a), View::all(b), None, g).unwrap(),
    };
    run();
    dev.synchronize().unwrap();
    let t0 = std::time::Instant::now();
    for _ in 0..iters {
        run();
    }
    dev.synchronize().unwrap();
    2.0 * (g.m * g.n * g.k * iters) as f64 / t0.elapsed().as_secs_f64() / 1e12
}

/// The GEMMs of a GPT at full size on a real GPU: sampled outputs against
/// the f64 reference, then throughput per plan. Run with `--ignored`.
#[test]
#[ignore = "needs a fast GPU"]
fn gemm_gpt_shapes_on_gpu() {
    let Some(dev) = crate::test_context() else { return };
    println!("adapter: {}", dev.adapter_name());
    let r = 65536;
    let g = |m, n, k, a_t, b_t, accumulate| Gemm { m, n, k, a_t, b_t, accumulate };
    let cases = [
        ("square nn", g(4096, 4096, 4096, false, false, false)),
        ("square nt", g(4096, 4096, 4096, false, true, false)),
        ("square tn", g(4096, 4096, 4096, true, false, false)),
        ("square tt", g(4096, 4096, 4096, true, true, false)),
        ("fwd qkv", g(r, 1536, 512, false, true, false)),
        ("fwd fc", g(r, 2048, 512, false, true, false)),
        ("fwd proj", g(r, 512, 2048, false, true, false)),
        ("dinp qkv", g(r, 512, 1536, false, false, false)),
        ("dW qkv", g(1536, 512, r, true, false, true)),
        ("dW proj", g(512, 2048, r, true, false, true)),
        ("lm fwd", g(r, 10, 512, false, true, false)),
        ("lm dinp", g(r, 512, 10, false, false, false)),
        ("lm dW", g(10, 512, r, true, false, true)),
        ("gen 64", g(64, 1536, 512, false, true, false)),
        ("gen 8", g(8, 1536, 512, false, true, false)),
    ];
    let mut rng = Rng(5);
    for (name, g) in cases {
        let (a, b, out0) = (rng.vec(g.m * g.k), rng.vec(g.k * g.n), rng.vec(g.m * g.n));
        let tensors = [padded(&dev, 0, &a), padded(&dev, 0, &b), padded(&dev, 0, &out0)];
        gemm(
            View::all(&tensors[2]).sub(0, (g.m * g.n) as u64),
            View::all(&tensors[0]),
            View::all(&tensors[1]),
            None,
            g,
        )
        .unwrap();
        let got = read_back(&tensors[2], 0, g.m * g.n);
        let mut worst = 0.0f64;
        for s in 0..512 {
            let (i, j) = ((s * 7919 + s * s) % g.m, (s * 104_729) % g.n);
            let (mut x, mut scale) = (0.0f64, 0.0f64);
            for l in 0..g.k {
                let p = if g.a_t { a[l * g.m + i] } else { a[i * g.k + l] } as f64
                    * if g.b_t { b[j * g.k + l] } else { b[l * g.n + j] } as f64;
                x += p;
                scale += p.abs();
            }
            if g.accumulate {
                x += out0[i * g.n + j] as f64;
                scale += (out0[i * g.n + j] as f64).abs();
            }
            let d = (got[i * g.n + j] as f64 - x).abs() / scale;
            assert!(d < 1e-5, "{name}: ({i}, {j}): got {}, want {x}", got[i * g.n + j]);
            worst = worst.max(d);
        }
        let iters = (1e12 / (2.0 * (g.m * g.n * g.k) as f64)).clamp(5.0, 400.0) as usize;
        let p = plan(&g, (dev.max_binding_bytes() / 4) as usize);
        let t = time_planned(&dev, g, None, &tensors, iters);
        print!("{name:10} {g:?}: {p:?} {t:6.2} TFLOP/s (rel err {worst:.1e})");
        let alts = [Plan::new(Tiles::Big, g.k, 1), Plan::new(Tiles::Small, g.k, 1), Plan::new(Tiles::Big, g.k, 8)];
        for alt in alts.into_iter().chain([Plan::new(Tiles::Small, g.k, 16)]) {
            if alt != p && (alt.splits == 1 || g.k >= 8192) {
                let t = time_planned(&dev, g, Some(alt), &tensors, iters);
                print!(" | {:?}×{} {t:.2}", alt.tiles, alt.splits);
            }
        }
        println!(" | again {:.2}", time_planned(&dev, g, None, &tensors, iters));
    }
    let (rows, n) = (r, 1536);
    let x = padded(&dev, 0, &rng.vec(rows * n));
    let out = alloc(&dev, n).unwrap();
    column_sum(View::all(&out), View::all(&x), rows, n, false).unwrap();
    dev.synchronize().unwrap();
    let t0 = std::time::Instant::now();
    for _ in 0..20 {
        column_sum(View::all(&out), View::all(&x), rows, n, true).unwrap();
    }
    dev.synchronize().unwrap();
    let gbs = 20.0 * (rows * n * 4) as f64 / t0.elapsed().as_secs_f64() / 1e9;
    println!("column_sum ({rows}, {n}): {gbs:.0} GB/s");
    println!("gemm_tflops(4096, 20): {:.2}", gemm_tflops(&dev, 4096, 20).unwrap());
}

//! The kernels against an f64 reference: the unshared causal attention of
//! the N full sequences (prompt, then the sample's own completion), with
//! grouped-query heads (query head h reads key/value head h / (H/H_kv)).

use wapo_core::rl::Rows;

use super::{Heads, attention_backward, attention_decode, attention_forward};
use crate::gpt::kernels::{View, alloc, write};
use crate::tensor::WgpuTensor;

/// (B, G, P, S, C, H, H_kv): odd layouts, more keys than one chunk of 64,
/// head sizes 1..80 (not powers of two, more than 64), grouped queries (two
/// and four query heads per key head, and one key head for all).
const CASES: [(usize, usize, usize, usize, usize, usize, usize); 12] = [
    (2, 3, 5, 4, 8, 2, 2),
    (1, 1, 1, 0, 8, 2, 2),
    (3, 2, 7, 1, 12, 4, 4),
    (2, 1, 6, 0, 12, 4, 4),
    (2, 2, 3, 2, 8, 8, 8),
    (1, 3, 2, 5, 6, 2, 2),
    (2, 2, 70, 3, 16, 2, 2),
    (1, 2, 3, 2, 160, 2, 2),
    (1, 2, 66, 2, 128, 2, 2),
    (2, 3, 5, 4, 16, 4, 2),
    (1, 2, 4, 3, 24, 4, 1),
    (2, 2, 67, 2, 32, 8, 2),
];

fn rng(seed: u64) -> impl FnMut() -> f32 {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

fn random(n: usize, seed: u64) -> Vec<f32> {
    let mut r = rng(seed);
    (0..n).map(|_| r()).collect()
}

/// A tensor of `pad + data.len() + 3` elements (NaN around) holding data at `pad`.
fn placed(dev: &crate::WgpuDevice, data: &[f32], pad: usize) -> WgpuTensor {
    let t = alloc(dev, pad + data.len() + 3).unwrap();
    write(&t, 0, &vec![f32::NAN; pad + data.len() + 3]).unwrap();
    write(&t, pad as u64, data).unwrap();
    t
}

/// The rows (of the shared layout) of sample n's full sequence.
fn sequence(rows: Rows, n: usize) -> Vec<usize> {
    let b = n / rows.g;
    (0..rows.p).map(|j| b * rows.p + j).chain((0..rows.s).map(|s| rows.prefix_rows() + n * rows.s + s)).collect()
}

fn dotf(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Row width, head size and query head `hh`'s q, k, v offsets in a q|k|v row.
fn offsets(hd: Heads, hh: usize) -> (usize, usize, usize, usize, usize) {
    let hs = hd.c / hd.h;
    let g = hh / (hd.h / hd.kv);
    (hd.c + 2 * hd.kv * hs, hs, hh * hs, hd.c + g * hs, hd.c + (hd.kv + g) * hs)
}

/// Probabilities of query `seq[t]` (head h) over keys seq[0..=t].
fn softmax_row(qkv: &[f64], seq: &[usize], t: usize, hd: Heads, hh: usize) -> Vec<f64> {
    let (w, hs, qo, ko, _) = offsets(hd, hh);
    let q = &qkv[seq[t] * w + qo..][..hs];
    let sc: Vec<f64> = seq[..=t].iter().map(|&k| dotf(q, &qkv[k * w + ko..][..hs]) / (hs as f64).sqrt()).collect();
    let m = sc.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = sc.iter().map(|s| (s - m).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.iter().map(|x| x / sum).collect()
}

/// out (R, C) and probs (R, H, P + S) in f64.
fn ref_forward(qkv: &[f64], rows: Rows, hd: Heads) -> (Vec<f64>, Vec<f64>) {
    let (c, h) = (hd.c, hd.h);
    let (r, ks) = (rows.total(), rows.keys());
    let mut out = vec![0.0; r * c];
    let mut probs = vec![0.0; r * h * ks];
    for n in 0..rows.n() {
        let seq = sequence(rows, n);
        for t in 0..seq.len() {
            for hh in 0..h {
                let (w, hs, qo, _, vo) = offsets(hd, hh);
                let p = softmax_row(qkv, &seq, t, hd, hh);
                let i = seq[t];
                probs[(i * h + hh) * ks..][..p.len()].copy_from_slice(&p);
                for d in 0..hs {
                    out[i * c + qo + d] = p.iter().zip(&seq).map(|(pj, &k)| pj * qkv[k * w + vo + d]).sum();
                }
            }
        }
    }
    (out, probs)
}

/// ∂(Σ dout·out)/∂qkv in f64, each prompt query counted once (in its
/// group's first sample), the gradients of a shared row's copies summed.
fn ref_backward(qkv: &[f64], dout: &[f64], rows: Rows, hd: Heads) -> Vec<f64> {
    let c = hd.c;
    let mut g = vec![0.0; qkv.len()];
    for n in 0..rows.n() {
        let seq = sequence(rows, n);
        let first = if n % rows.g == 0 { 0 } else { rows.p };
        for t in first..seq.len() {
            let i = seq[t];
            for hh in 0..hd.h {
                let (w, hs, qo, ko, vo) = offsets(hd, hh);
                let sc = 1.0 / (hs as f64).sqrt();
                let p = softmax_row(qkv, &seq, t, hd, hh);
                let d_o = &dout[i * c + qo..][..hs];
                let dp: Vec<f64> = seq[..=t].iter().map(|&k| dotf(d_o, &qkv[k * w + vo..][..hs])).collect();
                let dsum = dotf(&p, &dp);
                for (j, &k) in seq[..=t].iter().enumerate() {
                    let ds = p[j] * (dp[j] - dsum) * sc;
                    for d in 0..hs {
                        g[i * w + qo + d] += ds * qkv[k * w + ko + d];
                        g[k * w + ko + d] += ds * qkv[i * w + qo + d];
                        g[k * w + vo + d] += p[j] * d_o[d];
                    }
                }
            }
        }
    }
    g
}

/// Max |a − b| / (1 + |b|) and max |a − b|.
fn diff(a: &[f32], b: &[f64]) -> (f64, f64) {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).fold((0.0f64, 0.0f64), |(r, m), (&x, &y)| {
        let e = (x as f64 - y).abs();
        assert!(e.is_finite(), "non-finite result {x} (expected {y})");
        (r.max(e / (1.0 + y.abs())), m.max(e))
    })
}

fn widen(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| v as f64).collect()
}

#[test]
fn reference_gradient_matches_finite_differences() {
    let (rows, hd) = (Rows { b: 2, g: 2, p: 3, s: 2 }, Heads { c: 8, h: 4, kv: 2 });
    let qkv = widen(&random(rows.total() * hd.width(), 1));
    let dout = widen(&random(rows.total() * hd.c, 2));
    let g = ref_backward(&qkv, &dout, rows, hd);
    let loss = |x: &[f64]| dotf(&ref_forward(x, rows, hd).0, &dout);
    let mut worst = 0.0f64;
    for e in (0..qkv.len()).step_by(7) {
        let (mut a, mut b) = (qkv.clone(), qkv.clone());
        a[e] += 1e-5;
        b[e] -= 1e-5;
        worst = worst.max(((loss(&a) - loss(&b)) / 2e-5 - g[e]).abs());
    }
    println!("reference gradient vs central differences: max abs diff {worst:.2e}");
    assert!(worst < 1e-7, "{worst}");
}

#[test]
fn forward_matches_unshared_reference() {
    let Some(dev) = crate::test_context() else { return };
    for (ci, &(b, g, p, s, c, h, kv)) in CASES.iter().enumerate() {
        let (rows, hd) = (Rows { b, g, p, s }, Heads { c, h, kv });
        let (r, ks) = (rows.total(), rows.keys());
        let qkv = random(r * hd.width(), 10 + ci as u64);
        let tq = placed(&dev, &qkv, 5);
        // probs and out: two read_write views of one tensor.
        let np = r * h * ks;
        let act = placed(&dev, &vec![0.0; np + 2 + r * c], 3);
        let probs = View::at(&act, 3, np as u64);
        let out = View::at(&act, (3 + np + 2) as u64, (r * c) as u64);
        attention_forward(out, probs, View::at(&tq, 5, qkv.len() as u64), None, rows, hd).unwrap();
        let got = act.to_vec().unwrap();
        let (ro, rp) = ref_forward(&widen(&qkv), rows, hd);
        let (eo, mo) = diff(&got[3 + np + 2..][..r * c], &ro);
        let (ep, mp) = diff(&got[3..][..np], &rp);
        println!("forward {rows:?} {hd:?}: out max abs {mo:.2e} rel {eo:.2e}; probs max abs {mp:.2e}");
        assert!(eo < 2e-5 && ep < 2e-5, "{rows:?} {hd:?}: out {eo}, probs {ep}");
        assert!(got[..3].iter().all(|v| v.is_nan()), "written before the probs view");
        assert!(got[3 + np + 2 + r * c..].iter().all(|v| v.is_nan()), "written after the out view");
    }
}

#[test]
fn backward_matches_reference_gradient() {
    let Some(dev) = crate::test_context() else { return };
    for (ci, &(b, g, p, s, c, h, kv)) in CASES.iter().enumerate() {
        let (rows, hd) = (Rows { b, g, p, s }, Heads { c, h, kv });
        let (r, ks) = (rows.total(), rows.keys());
        let qkv = random(r * hd.width(), 20 + ci as u64);
        let dout = random(r * c, 30 + ci as u64);
        let tq = placed(&dev, &qkv, 1);
        let td = placed(&dev, &dout, 2);
        let (tp, to) = (alloc(&dev, r * h * ks).unwrap(), alloc(&dev, r * c).unwrap());
        let qv = View::at(&tq, 1, qkv.len() as u64);
        attention_forward(View::all(&to), View::all(&tp), qv, None, rows, hd).unwrap();
        // dqkv starts NaN: every element must be overwritten.
        let tg = placed(&dev, &vec![f32::NAN; qkv.len()], 7);
        let gv = View::at(&tg, 7, qkv.len() as u64);
        attention_backward(gv, View::at(&td, 2, dout.len() as u64), View::all(&tp), qv, rows, hd).unwrap();
        let got = tg.to_vec().unwrap();
        let want = ref_backward(&widen(&qkv), &widen(&dout), rows, hd);
        let (e, m) = diff(&got[7..][..qkv.len()], &want);
        println!("backward {rows:?} {hd:?}: dqkv max abs {m:.2e} rel {e:.2e}");
        assert!(e < 5e-5, "{rows:?} {hd:?}: {e}");
        // Deterministic: a second run gives the same bits.
        attention_backward(gv, View::at(&td, 2, dout.len() as u64), View::all(&tp), qv, rows, hd).unwrap();
        let again = tg.to_vec().unwrap();
        assert!(got.iter().zip(&again).all(|(a, b)| a.to_bits() == b.to_bits()), "backward not deterministic");
    }
}

#[test]
fn decode_matches_reference_at_each_step() {
    let Some(dev) = crate::test_context() else { return };
    for (ci, &(b, g, p, steps, c, h, kv)) in [
        (2, 3, 5, 4, 12, 4, 4),
        (1, 1, 1, 2, 8, 2, 2),
        (1, 2, 70, 3, 16, 2, 2),
        (2, 2, 3, 2, 160, 2, 2),
        (2, 3, 5, 4, 16, 4, 2),
        (1, 2, 4, 3, 24, 4, 1),
    ]
    .iter()
    .enumerate()
    {
        let (rows, hd) = (Rows { b, g, p, s: steps }, Heads { c, h, kv });
        let (n, c3) = (rows.n(), hd.width());
        let qkv = random(rows.total() * c3, 40 + ci as u64);
        let (ro, _) = ref_forward(&widen(&qkv), rows, hd);
        let pr = rows.prefix_rows();
        let prefix = placed(&dev, &qkv[..pr * c3], 3);
        // The cache starts NaN: rows past ns must not be read.
        let cache = placed(&dev, &vec![f32::NAN; n * steps * c3], 0);
        let out = alloc(&dev, n * c).unwrap();
        let mut worst = 0.0f64;
        for ns in 1..=steps {
            let mut step = vec![0.0; n * c3];
            for i in 0..n {
                let row = &qkv[(pr + i * steps + ns - 1) * c3..][..c3];
                write(&cache, ((i * steps + ns - 1) * c3) as u64, row).unwrap();
                step[i * c3..][..c3].copy_from_slice(row);
            }
            let ts = placed(&dev, &step, 1);
            let (sv, pv) = (View::at(&ts, 1, step.len() as u64), View::at(&prefix, 3, (pr * c3) as u64));
            let cv = View::at(&cache, 0, (n * steps * c3) as u64);
            attention_decode(View::all(&out), sv, pv, cv, None, n, g, p, steps, ns, hd).unwrap();
            let got = out.to_vec().unwrap();
            let want: Vec<f64> = (0..n).flat_map(|i| ro[(pr + i * steps + ns - 1) * c..][..c].to_vec()).collect();
            let (e, m) = diff(&got, &want);
            worst = worst.max(e);
            println!("decode {rows:?} {hd:?} ns={ns}: out max abs {m:.2e} rel {e:.2e}");
        }
        assert!(worst < 2e-5, "{rows:?} {hd:?}: {worst}");
    }
}

#[test]
fn bad_geometry_is_an_error() {
    let Some(dev) = crate::test_context() else { return };
    let t = alloc(&dev, 4096).unwrap();
    let u = alloc(&dev, 4096).unwrap();
    let v = View::all(&t);
    let w = View::all(&u);
    let mha = Heads::mha;
    assert!(attention_forward(w, w, v, None, Rows { b: 1, g: 1, p: 0, s: 2 }, mha(8, 2)).is_err());
    assert!(attention_forward(w, w, v, None, Rows { b: 1, g: 1, p: 2, s: 2 }, mha(9, 2)).is_err());
    assert!(attention_forward(w, w, v, None, Rows { b: 1, g: 1, p: 2, s: 2 }, mha(8, 0)).is_err());
    assert!(attention_forward(w, w, v, None, Rows { b: 1, g: 1, p: 2, s: 2 }, Heads { c: 8, h: 4, kv: 3 }).is_err());
    assert!(attention_forward(w, w, v, None, Rows { b: 1, g: 1, p: 2, s: 2 }, Heads { c: 8, h: 4, kv: 0 }).is_err());
    assert!(attention_forward(w, w, w, None, Rows { b: 1, g: 1, p: 2, s: 2 }, mha(8, 2)).is_err());
    assert!(attention_forward(w, w, v, None, Rows { b: 40, g: 4, p: 20, s: 2 }, mha(8, 2)).is_err());
    assert!(attention_decode(w, v, v, v, None, 3, 2, 2, 2, 1, mha(8, 2)).is_err());
    assert!(attention_decode(w, v, v, v, None, 2, 2, 2, 2, 3, mha(8, 2)).is_err());
}

#[test]
fn large_grid_spills_into_y() {
    let Some(dev) = crate::test_context() else { return };
    // 832 rows × 80 heads = 66,560 workgroups: past one dimension's 65,535.
    let (rows, c, h) = (Rows { b: 8, g: 8, p: 40, s: 8 }, 160, 80);
    let hd = Heads::mha(c, h);
    let (r, ks) = (rows.total(), rows.keys());
    let qkv = random(r * 3 * c, 50);
    let dout = random(r * c, 51);
    let (tq, td) = (placed(&dev, &qkv, 0), placed(&dev, &dout, 0));
    let (tp, to, tg) = (alloc(&dev, r * h * ks).unwrap(), alloc(&dev, r * c).unwrap(), alloc(&dev, r * 3 * c).unwrap());
    let qv = View::at(&tq, 0, qkv.len() as u64);
    attention_forward(View::all(&to), View::all(&tp), qv, None, rows, hd).unwrap();
    attention_backward(View::all(&tg), View::at(&td, 0, dout.len() as u64), View::all(&tp), qv, rows, hd).unwrap();
    let (ro, _) = ref_forward(&widen(&qkv), rows, hd);
    let (eo, mo) = diff(&to.to_vec().unwrap(), &ro);
    let want = ref_backward(&widen(&qkv), &widen(&dout), rows, hd);
    let (eg, mg) = diff(&tg.to_vec().unwrap(), &want);
    println!("{rows:?} c={c} h={h}: out max abs {mo:.2e} rel {eo:.2e}; dqkv max abs {mg:.2e} rel {eg:.2e}");
    assert!(eo < 2e-5 && eg < 5e-5, "out {eo}, dqkv {eg}");
}

/// Device timings at the model's sizes (`--ignored`; meaningful on a GPU).
#[test]
#[ignore]
fn timing_typical_sizes() {
    let Some(dev) = crate::test_context() else { return };
    let sync = |t: &WgpuTensor| {
        let _ = crate::transfer::read_f32(t.ctx(), t.buf(), 1).unwrap();
    };
    for (b, g, p, s, c, h) in [(64, 8, 196, 6, 128, 4), (64, 8, 256, 6, 512, 8)] {
        let rows = Rows { b, g, p, s };
        let (r, ks, n) = (rows.total(), rows.keys(), rows.n());
        let (tq, td) = (placed(&dev, &random(r * 3 * c, 1), 0), placed(&dev, &random(r * c, 2), 0));
        let (tp, to, tg) =
            (alloc(&dev, r * h * ks).unwrap(), alloc(&dev, r * c).unwrap(), alloc(&dev, r * 3 * c).unwrap());
        let qv = View::at(&tq, 0, (r * 3 * c) as u64);
        let dv = View::at(&td, 0, (r * c) as u64);
        let cache = placed(&dev, &random(n * s * 3 * c, 3), 0);
        let step = placed(&dev, &random(n * 3 * c, 4), 0);
        let pv = View::at(&tq, 0, (rows.prefix_rows() * 3 * c) as u64);
        let sv = View::at(&step, 0, (n * 3 * c) as u64);
        let cv = View::at(&cache, 0, (n * s * 3 * c) as u64);
        let time = |f: &dyn Fn()| {
            f();
            sync(&tg);
            let t0 = std::time::Instant::now();
            for _ in 0..20 {
                f();
            }
            sync(&tg);
            t0.elapsed().as_secs_f64() / 20.0 * 1e3
        };
        let hd = Heads::mha(c, h);
        let fwd = time(&|| attention_forward(View::all(&to), View::all(&tp), qv, None, rows, hd).unwrap());
        let bwd = time(&|| attention_backward(View::all(&tg), dv, View::all(&tp), qv, rows, hd).unwrap());
        let dec = time(&|| attention_decode(View::all(&to), sv, pv, cv, None, n, g, p, s, s, hd).unwrap());
        println!("{rows:?} c={c} h={h} (R = {r}): forward {fwd:.3} ms, backward {bwd:.3} ms, decode {dec:.3} ms");
    }
}

/// Each row's query and the keys it sees under left padding `pad` (B):
/// a padding query sees itself only, every other query its prompt's keys
/// from `pad[b]` on. Each row once (a shared prompt row in its group's
/// first sample).
fn padded_queries(rows: Rows, pad: &[usize]) -> Vec<(usize, Vec<usize>)> {
    let mut out = Vec::new();
    for n in 0..rows.n() {
        let (seq, q0) = (sequence(rows, n), pad[n / rows.g]);
        let first = if n % rows.g == 0 { 0 } else { rows.p };
        for t in first..seq.len() {
            let keys = if t < q0 { vec![seq[t]] } else { seq[q0..=t].to_vec() };
            out.push((seq[t], keys));
        }
    }
    out
}

/// out, probs (over the key positions of `Rows`) and ∂(Σ dout·out)/∂qkv in
/// f64 under left padding.
fn ref_padded(qkv: &[f64], dout: &[f64], rows: Rows, hd: Heads, pad: &[usize]) -> [Vec<f64>; 3] {
    let (c, h, ks) = (hd.c, hd.h, rows.keys());
    let r = rows.total();
    let (mut out, mut probs, mut g) = (vec![0.0; r * c], vec![0.0; r * h * ks], vec![0.0; qkv.len()]);
    // Key row → its position in the query's probability row.
    let slot = |k: usize| match k < rows.prefix_rows() {
        true => k % rows.p,
        false => rows.p + (k - rows.prefix_rows()) % rows.s,
    };
    for (i, keys) in padded_queries(rows, pad) {
        for hh in 0..h {
            let (w, hs, qo, ko, vo) = offsets(hd, hh);
            let sc = 1.0 / (hs as f64).sqrt();
            let q = &qkv[i * w + qo..][..hs];
            let s: Vec<f64> = keys.iter().map(|&k| dotf(q, &qkv[k * w + ko..][..hs]) * sc).collect();
            let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
            let sum: f64 = e.iter().sum();
            let p: Vec<f64> = e.iter().map(|x| x / sum).collect();
            for (j, &k) in keys.iter().enumerate() {
                probs[(i * h + hh) * ks + slot(k)] = p[j];
                for d in 0..hs {
                    out[i * c + qo + d] += p[j] * qkv[k * w + vo + d];
                }
            }
            let d_o = &dout[i * c + qo..][..hs];
            let dp: Vec<f64> = keys.iter().map(|&k| dotf(d_o, &qkv[k * w + vo..][..hs])).collect();
            let dsum = dotf(&p, &dp);
            for (j, &k) in keys.iter().enumerate() {
                let ds = p[j] * (dp[j] - dsum) * sc;
                for d in 0..hs {
                    g[i * w + qo + d] += ds * qkv[k * w + ko + d];
                    g[k * w + ko + d] += ds * qkv[i * w + qo + d];
                    g[k * w + vo + d] += p[j] * d_o[d];
                }
            }
        }
    }
    [out, probs, g]
}

/// Left padding: the forward's out and probs, the backward, and the decode
/// step against the f64 reference; a pad of 67 > 64 starts the key loop
/// past a whole chunk of threads.
#[test]
fn padded_keys_are_skipped() {
    let Some(dev) = crate::test_context() else { return };
    for (ci, (rows, hd, pad)) in [
        (Rows { b: 2, g: 2, p: 70, s: 3 }, Heads { c: 16, h: 4, kv: 2 }, vec![0usize, 67]),
        (Rows { b: 3, g: 1, p: 4, s: 2 }, Heads::mha(8, 2), vec![3, 1, 2]),
    ]
    .into_iter()
    .enumerate()
    {
        let (r, ks, c, h, w) = (rows.total(), rows.keys(), hd.c, hd.h, hd.width());
        let qkv = random(r * w, 50 + ci as u64);
        let dout = random(r * c, 60 + ci as u64);
        let [ro, rp, rg] = ref_padded(&widen(&qkv), &widen(&dout), rows, hd, &pad);
        let tq = placed(&dev, &qkv, 0);
        let qv = View::at(&tq, 0, qkv.len() as u64);
        let pads: Vec<u32> = pad.iter().map(|&x| x as u32).collect();
        let tpad = crate::gpt::kernels::upload_u32(&dev, &pads).unwrap();
        let (tp, to) = (alloc(&dev, r * h * ks).unwrap(), alloc(&dev, r * c).unwrap());
        attention_forward(View::all(&to), View::all(&tp), qv, Some(View::all(&tpad)), rows, hd).unwrap();
        let (eo, _) = diff(&to.to_vec().unwrap(), &ro);
        let (ep, _) = diff(&tp.to_vec().unwrap(), &rp);
        let td = placed(&dev, &dout, 0);
        let tg = placed(&dev, &vec![f32::NAN; qkv.len()], 0);
        let gv = View::at(&tg, 0, qkv.len() as u64);
        attention_backward(gv, View::at(&td, 0, dout.len() as u64), View::all(&tp), qv, rows, hd).unwrap();
        let (eg, _) = diff(&tg.to_vec().unwrap()[..qkv.len()], &rg);
        println!("padded {rows:?} {hd:?} pad {pad:?}: out {eo:.2e} probs {ep:.2e} dqkv {eg:.2e}");
        assert!(eo < 2e-5 && ep < 2e-5 && eg < 5e-5, "{rows:?}: out {eo} probs {ep} dqkv {eg}");

        // The decode step of the last completion position, its cache the
        // completion rows of each sample.
        let (n, pr, s) = (rows.n(), rows.prefix_rows(), rows.s);
        let cache = placed(&dev, &qkv[pr * w..], 0);
        let step: Vec<f32> = (0..n).flat_map(|i| qkv[(pr + i * s + s - 1) * w..][..w].to_vec()).collect();
        let ts = placed(&dev, &step, 0);
        let out = alloc(&dev, n * c).unwrap();
        let (sv, pv) = (View::at(&ts, 0, step.len() as u64), View::at(&tq, 0, (pr * w) as u64));
        let cv = View::at(&cache, 0, (n * s * w) as u64);
        attention_decode(View::all(&out), sv, pv, cv, Some(View::all(&tpad)), n, rows.g, rows.p, s, s, hd).unwrap();
        let want: Vec<f64> = (0..n).flat_map(|i| ro[(pr + i * s + s - 1) * c..][..c].to_vec()).collect();
        let (ed, _) = diff(&out.to_vec().unwrap(), &want);
        println!("padded decode: out {ed:.2e}");
        assert!(ed < 2e-5, "decode {ed}");
    }
}

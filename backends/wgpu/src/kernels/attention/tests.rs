//! The kernels against an f64 reference: the unshared causal attention of
//! the N full sequences (prompt, then the sample's own completion), with
//! grouped-query heads (query head h reads key/value head h / (H/H_kv)).

use wapo_core::rl::Rows;

use super::{Heads, attention_backward, attention_decode, attention_forward};
use crate::kernels::{View, alloc, write};
use crate::tensor::WgpuTensor;

/// (B, G, P, S, C, H, H_kv): odd layouts, more keys than one chunk of 64,
/// head sizes 1..160 (not powers of two, more than 64), grouped queries (two
/// and four query heads per key head, and one key head for all); the last
/// three have prompts and completions longer than a tile (16 rows at hs ≤
/// 64, 8 at ≤ 128, 4 above) and more keys than one streamed block.
const CASES: [(usize, usize, usize, usize, usize, usize, usize); 15] = [
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
    (2, 2, 70, 40, 16, 4, 2),
    (1, 2, 70, 40, 128, 2, 1),
    (1, 2, 37, 21, 320, 2, 2),
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

/// Probabilities of query row `i` (head hh) over key rows `keys`, and the
/// log-sum-exp of its scaled scores.
fn softmax(qkv: &[f64], i: usize, keys: &[usize], hd: Heads, hh: usize) -> (Vec<f64>, f64) {
    let (w, hs, qo, ko, _) = offsets(hd, hh);
    let q = &qkv[i * w + qo..][..hs];
    let sc: Vec<f64> = keys.iter().map(|&k| dotf(q, &qkv[k * w + ko..][..hs]) / (hs as f64).sqrt()).collect();
    let m = sc.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = sc.iter().map(|s| (s - m).exp()).collect();
    let sum: f64 = e.iter().sum();
    (e.iter().map(|x| x / sum).collect(), m + sum.ln())
}

/// Probabilities of query `seq[t]` (head h) over keys seq[0..=t].
fn softmax_row(qkv: &[f64], seq: &[usize], t: usize, hd: Heads, hh: usize) -> Vec<f64> {
    softmax(qkv, seq[t], &seq[..=t], hd, hh).0
}

/// out (R, C) and the log-sum-exp (R, H) in f64.
fn ref_forward(qkv: &[f64], rows: Rows, hd: Heads) -> (Vec<f64>, Vec<f64>) {
    let (c, h) = (hd.c, hd.h);
    let r = rows.total();
    let mut out = vec![0.0; r * c];
    let mut lse = vec![0.0; r * h];
    for n in 0..rows.n() {
        let seq = sequence(rows, n);
        for t in 0..seq.len() {
            for hh in 0..h {
                let (w, hs, qo, _, vo) = offsets(hd, hh);
                let i = seq[t];
                let (p, l) = softmax(qkv, i, &seq[..=t], hd, hh);
                lse[i * h + hh] = l;
                for d in 0..hs {
                    out[i * c + qo + d] = p.iter().zip(&seq).map(|(pj, &k)| pj * qkv[k * w + vo + d]).sum();
                }
            }
        }
    }
    (out, lse)
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

/// Max |a − b| over a tensor and its scale max |b| (at least 1e-3, so that
/// an all-zero reference still needs a near-zero result).
fn scaled(a: &[f32], b: &[f64]) -> (f64, f64) {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(1e-3f64, |s, y| s.max(y.abs()));
    let m = a.iter().zip(b).fold(0.0f64, |m, (&x, &y)| {
        let e = (x as f64 - y).abs();
        assert!(e.is_finite(), "non-finite result {x} (expected {y})");
        m.max(e)
    });
    (m, scale)
}

/// dq, dk, dv of a (R, W) gradient: each the columns of its heads.
fn split_qkv<T: Copy>(g: &[T], hd: Heads) -> [Vec<T>; 3] {
    let (w, hs) = (hd.width(), hd.c / hd.h);
    let cols = [0..hd.c, hd.c..hd.c + hd.kv * hs, hd.c + hd.kv * hs..w];
    cols.map(|r| g.chunks(w).flat_map(|row| row[r.clone()].to_vec()).collect())
}

/// Compares dq, dk, dv with the reference, each against its own scale.
fn check_grads(what: &str, got: &[f32], want: &[f64], hd: Heads, tol: f64) {
    let (g, w) = (split_qkv(got, hd), split_qkv(want, hd));
    for (name, (a, b)) in ["dq", "dk", "dv"].iter().zip(g.iter().zip(&w)) {
        let (m, s) = scaled(a, b);
        println!("{what}: {name} max abs diff {m:.2e} (scale {s:.2e})");
        assert!(m / s < tol, "{what}: {name} max abs diff {m} at scale {s}");
    }
}

/// Compares one forward output with the reference against its scale.
fn check(what: &str, name: &str, got: &[f32], want: &[f64], tol: f64) {
    let (m, s) = scaled(got, want);
    println!("{what}: {name} max abs diff {m:.2e} (scale {s:.2e})");
    assert!(m / s < tol, "{what}: {name} max abs diff {m} at scale {s}");
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

/// Tolerances relative to each tensor's scale: the forward's f32 sums, and
/// the backward's, which sum more terms.
const FWD_TOL: f64 = 2e-5;
const BWD_TOL: f64 = 5e-5;

#[test]
fn forward_matches_unshared_reference() {
    let Some(dev) = crate::test_context() else { return };
    for (ci, &(b, g, p, s, c, h, kv)) in CASES.iter().enumerate() {
        let (rows, hd) = (Rows { b, g, p, s }, Heads { c, h, kv });
        let r = rows.total();
        let qkv = random(r * hd.width(), 10 + ci as u64);
        let tq = placed(&dev, &qkv, 5);
        // lse and out: two read_write views of one tensor.
        let nl = r * h;
        let mut init = vec![0.0; nl + 2 + r * c];
        init[nl..][..2].fill(f32::NAN);
        let act = placed(&dev, &init, 3);
        let lse = View::at(&act, 3, nl as u64);
        let out = View::at(&act, (3 + nl + 2) as u64, (r * c) as u64);
        attention_forward(out, lse, View::at(&tq, 5, qkv.len() as u64), None, rows, hd).unwrap();
        let got = act.to_vec().unwrap();
        let (ro, rl) = ref_forward(&widen(&qkv), rows, hd);
        let what = format!("forward {rows:?} {hd:?}");
        check(&what, "out", &got[3 + nl + 2..][..r * c], &ro, FWD_TOL);
        check(&what, "lse", &got[3..][..nl], &rl, FWD_TOL);
        assert!(got[..3].iter().all(|v| v.is_nan()), "written before the lse view");
        assert!(got[3 + nl..][..2].iter().all(|v| v.is_nan()), "written between the views");
        assert!(got[3 + nl + 2 + r * c..].iter().all(|v| v.is_nan()), "written after the out view");
    }
}

/// Runs the forward and the backward of one case; returns dqkv (R, W).
fn run_backward(
    dev: &crate::WgpuDevice,
    rows: Rows,
    hd: Heads,
    qkv: &[f32],
    dout: &[f32],
    pad: Option<&[u32]>,
) -> Vec<f32> {
    let (r, c, h) = (rows.total(), hd.c, hd.h);
    let tq = placed(dev, qkv, 1);
    let td = placed(dev, dout, 2);
    let (tl, to) = (alloc(dev, r * h).unwrap(), alloc(dev, r * c).unwrap());
    let tpad = pad.map(|p| crate::kernels::upload_u32(dev, p).unwrap());
    let pv = || tpad.as_ref().map(View::all);
    let qv = View::at(&tq, 1, qkv.len() as u64);
    attention_forward(View::all(&to), View::all(&tl), qv, pv(), rows, hd).unwrap();
    // dqkv starts NaN: every element must be overwritten.
    let tg = placed(dev, &vec![f32::NAN; qkv.len()], 7);
    let gv = View::at(&tg, 7, qkv.len() as u64);
    let dv = View::at(&td, 2, dout.len() as u64);
    attention_backward(gv, dv, View::all(&to), View::all(&tl), qv, pv(), rows, hd).unwrap();
    let got = tg.to_vec().unwrap();
    assert!(got[..7].iter().chain(&got[7 + qkv.len()..]).all(|v| v.is_nan()), "written outside the dqkv view");
    got[7..][..qkv.len()].to_vec()
}

#[test]
fn backward_matches_reference_gradient() {
    let Some(dev) = crate::test_context() else { return };
    for (ci, &(b, g, p, s, c, h, kv)) in CASES.iter().enumerate() {
        let (rows, hd) = (Rows { b, g, p, s }, Heads { c, h, kv });
        let r = rows.total();
        let qkv = random(r * hd.width(), 20 + ci as u64);
        let dout = random(r * c, 30 + ci as u64);
        let got = run_backward(&dev, rows, hd, &qkv, &dout, None);
        let want = ref_backward(&widen(&qkv), &widen(&dout), rows, hd);
        check_grads(&format!("backward {rows:?} {hd:?}"), &got, &want, hd, BWD_TOL);
    }
}

/// Deterministic: two runs of the backward give the same bits (several
/// tiles and blocks per segment, grouped heads, padding).
#[test]
fn backward_is_deterministic() {
    let Some(dev) = crate::test_context() else { return };
    let (rows, hd) = (Rows { b: 2, g: 2, p: 70, s: 40 }, Heads { c: 128, h: 4, kv: 2 });
    let qkv = random(rows.total() * hd.width(), 70);
    let dout = random(rows.total() * hd.c, 71);
    let pad = [3u32, 20];
    let a = run_backward(&dev, rows, hd, &qkv, &dout, Some(&pad));
    let b = run_backward(&dev, rows, hd, &qkv, &dout, Some(&pad));
    assert!(a.iter().all(|v| v.is_finite()));
    assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()), "backward not deterministic");
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
    assert!(attention_forward(w, w, v, None, Rows { b: 1, g: 1, p: 2, s: 2 }, mha(514, 2)).is_err());
    let rows = Rows { b: 1, g: 1, p: 2, s: 2 };
    // dqkv may not share a tensor with an input; inputs must be long enough.
    assert!(attention_backward(v, w, w, w, v, None, rows, mha(8, 2)).is_err());
    assert!(attention_backward(w, v, v, View::at(&t, 0, 7), v, None, rows, mha(8, 2)).is_err());
    assert!(attention_backward(w, v, v, v, v, None, rows, mha(8, 3)).is_err());
    assert!(attention_decode(w, v, v, v, None, 3, 2, 2, 2, 1, mha(8, 2)).is_err());
    assert!(attention_decode(w, v, v, v, None, 2, 2, 2, 2, 3, mha(8, 2)).is_err());
}

#[test]
fn large_grid_spills_into_y() {
    let Some(dev) = crate::test_context() else { return };
    // 88 tiles of 16 rows × 800 heads = 70,400 workgroups: past one
    // dimension's 65,535.
    let (rows, c, h) = (Rows { b: 8, g: 8, p: 40, s: 8 }, 800, 800);
    let hd = Heads::mha(c, h);
    let r = rows.total();
    let qkv = random(r * 3 * c, 50);
    let dout = random(r * c, 51);
    let tq = placed(&dev, &qkv, 0);
    let (tl, to) = (alloc(&dev, r * h).unwrap(), alloc(&dev, r * c).unwrap());
    let qv = View::at(&tq, 0, qkv.len() as u64);
    attention_forward(View::all(&to), View::all(&tl), qv, None, rows, hd).unwrap();
    let (ro, rl) = ref_forward(&widen(&qkv), rows, hd);
    let what = format!("{rows:?} c={c} h={h}");
    check(&what, "out", &to.to_vec().unwrap(), &ro, FWD_TOL);
    check(&what, "lse", &tl.to_vec().unwrap(), &rl, FWD_TOL);
    let got = run_backward(&dev, rows, hd, &qkv, &dout, None);
    check_grads(&what, &got, &ref_backward(&widen(&qkv), &widen(&dout), rows, hd), hd, BWD_TOL);
}

/// Device timings at the model's sizes (`--ignored`; meaningful on a GPU).
#[test]
#[ignore]
fn timing_typical_sizes() {
    let Some(dev) = crate::test_context() else { return };
    let sync = |t: &WgpuTensor| {
        let _ = crate::transfer::read_f32(t.ctx(), t.buf(), 1).unwrap();
    };
    for (b, g, p, s, c, h, kv) in [(64, 8, 196, 6, 128, 4, 4), (64, 8, 256, 6, 512, 8, 8), (8, 8, 48, 64, 576, 9, 3)] {
        let rows = Rows { b, g, p, s };
        let hd = Heads { c, h, kv };
        let (r, n, w) = (rows.total(), rows.n(), hd.width());
        let (tq, td) = (placed(&dev, &random(r * w, 1), 0), placed(&dev, &random(r * c, 2), 0));
        let (tl, to, tg) = (alloc(&dev, r * h).unwrap(), alloc(&dev, r * c).unwrap(), alloc(&dev, r * w).unwrap());
        let qv = View::at(&tq, 0, (r * w) as u64);
        let dv = View::at(&td, 0, (r * c) as u64);
        let cache = placed(&dev, &random(n * s * w, 3), 0);
        let step = placed(&dev, &random(n * w, 4), 0);
        let pv = View::at(&tq, 0, (rows.prefix_rows() * w) as u64);
        let sv = View::at(&step, 0, (n * w) as u64);
        let cv = View::at(&cache, 0, (n * s * w) as u64);
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
        let (o, l) = (View::all(&to), View::all(&tl));
        let fwd = time(&|| attention_forward(o, l, qv, None, rows, hd).unwrap());
        let bwd = time(&|| attention_backward(View::all(&tg), dv, o, l, qv, None, rows, hd).unwrap());
        let dec = time(&|| attention_decode(o, sv, pv, cv, None, n, g, p, s, s, hd).unwrap());
        println!("{rows:?} {hd:?} (R = {r}): forward {fwd:.3} ms, backward {bwd:.3} ms, decode {dec:.3} ms");
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

/// out, the log-sum-exp and ∂(Σ dout·out)/∂qkv in f64 under left padding.
fn ref_padded(qkv: &[f64], dout: &[f64], rows: Rows, hd: Heads, pad: &[usize]) -> [Vec<f64>; 3] {
    let (c, h) = (hd.c, hd.h);
    let r = rows.total();
    let (mut out, mut lse, mut g) = (vec![0.0; r * c], vec![0.0; r * h], vec![0.0; qkv.len()]);
    for (i, keys) in padded_queries(rows, pad) {
        for hh in 0..h {
            let (w, hs, qo, ko, vo) = offsets(hd, hh);
            let sc = 1.0 / (hs as f64).sqrt();
            let (p, l) = softmax(qkv, i, &keys, hd, hh);
            lse[i * h + hh] = l;
            for (j, &k) in keys.iter().enumerate() {
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
    [out, lse, g]
}

/// Left padding: the forward's out and lse, the backward, and the decode
/// step against the f64 reference; a pad of 67 > 64 starts the keys past a
/// whole chunk of the decode's threads, and pads of 20 and 69 of 70 leave
/// whole tiles and key blocks of padding.
#[test]
fn padded_keys_are_skipped() {
    let Some(dev) = crate::test_context() else { return };
    for (ci, (rows, hd, pad)) in [
        (Rows { b: 2, g: 2, p: 70, s: 3 }, Heads { c: 16, h: 4, kv: 2 }, vec![0usize, 67]),
        (Rows { b: 3, g: 1, p: 4, s: 2 }, Heads::mha(8, 2), vec![3, 1, 2]),
        (Rows { b: 2, g: 2, p: 70, s: 40 }, Heads { c: 128, h: 2, kv: 1 }, vec![20, 69]),
    ]
    .into_iter()
    .enumerate()
    {
        let (r, c, h, w) = (rows.total(), hd.c, hd.h, hd.width());
        let qkv = random(r * w, 50 + ci as u64);
        let dout = random(r * c, 60 + ci as u64);
        let [ro, rl, rg] = ref_padded(&widen(&qkv), &widen(&dout), rows, hd, &pad);
        let tq = placed(&dev, &qkv, 0);
        let qv = View::at(&tq, 0, qkv.len() as u64);
        let pads: Vec<u32> = pad.iter().map(|&x| x as u32).collect();
        let tpad = crate::kernels::upload_u32(&dev, &pads).unwrap();
        let (tl, to) = (alloc(&dev, r * h).unwrap(), alloc(&dev, r * c).unwrap());
        attention_forward(View::all(&to), View::all(&tl), qv, Some(View::all(&tpad)), rows, hd).unwrap();
        let what = format!("padded {rows:?} {hd:?} pad {pad:?}");
        check(&what, "out", &to.to_vec().unwrap(), &ro, FWD_TOL);
        check(&what, "lse", &tl.to_vec().unwrap(), &rl, FWD_TOL);
        let got = run_backward(&dev, rows, hd, &qkv, &dout, Some(&pads));
        check_grads(&what, &got, &rg, hd, BWD_TOL);

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

/// The pool size the kernels declare is the one the host sizes blocks by,
/// and every head size up to the limit gets tiles and blocks that fit.
#[test]
fn tiles_fit_workgroup_memory() {
    assert!(include_str!("tiles.wgsl").contains(&format!("const POOL: u32 = {}u;", super::POOL)));
    assert!(include_str!("tiles.wgsl").contains(&format!("const MAXR: u32 = {}u;", super::MAXR)));
    for hs in 1..=super::MAX_HEAD {
        let (bt, st) = (super::tile_rows(hs), super::stride(hs));
        assert!(super::WG.is_multiple_of(bt) && bt * hs <= super::WG * super::MAXR, "hs {hs}: bt {bt}");
        let fwd = super::block_rows("f", |bs| bt * st + bs * st + bt * bs).unwrap();
        let kv = super::block_rows("kv", |bs| 2 * (bt * st + bs * st + bs * bt)).unwrap();
        let q = super::block_rows("q", |bs| 2 * bt * st + bs * st + bt * bs).unwrap();
        assert!(fwd >= 1 && kv >= 1 && q >= 1);
    }
}

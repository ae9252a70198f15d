//! The chunked head's device statistics against the host path.

use wapo_core::rl::TokenStats;
use wapo_core::{Shape, Tensor};

use crate::WgpuTensor;
use crate::kernels::fused::grad::grad_logits_at;
use crate::kernels::fused::stats::{Stats, row_stats_at};
use crate::kernels::test_util::Lcg;
use crate::test_context;

/// Rows per chunk below: 12 rows make chunks of 5, 5 and 2.
const CHUNK: usize = 5;

/// Equal where both are −inf, else within `tol`·(1 + |want|).
fn close(name: &str, got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{name}: lengths");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let same_inf = w.is_infinite() && g == w;
        assert!(same_inf || (g - w).abs() <= tol * (1.0 + w.abs()), "{name}[{i}]: got {g}, want {w}");
    }
}

/// The chunked head's kernels (each chunk of rows its own logits tensor,
/// its statistics and ∂loss/∂z written at the chunk's rows of the whole
/// batch's) against the f64 host path of the trait's default
/// (`TokenStats::of_logits` and its gradient formula), with masked (−inf)
/// vocabulary entries, a −inf logit at the sampled token and a row of only
/// −inf; V = 37 (scalar kernels) and V = 64 (vec4 kernels).
#[test]
fn device_statistics_match_the_host_path() {
    let Some(dev) = test_context() else { return };
    for (v, tau) in [(37usize, 1.0f64), (64, 0.7)] {
        let (n, t) = (3, 4);
        let mut rng = Lcg(v as u64);
        let mut z: Vec<f64> = (0..n * t * v).map(|_| 12.0 * rng.next() - 6.0).collect();
        let tokens: Vec<u32> = (0..n * t).map(|_| rng.below(v as u32)).collect();
        for k in (0..z.len()).step_by(7) {
            z[k] = f64::NEG_INFINITY;
        }
        z[5 * v + tokens[5] as usize] = f64::NEG_INFINITY;
        z[9 * v..10 * v].fill(f64::NEG_INFINITY);
        let want = TokenStats::of_logits(&z, &tokens, wapo_core::rl::Processing::temperature(tau));
        assert!(want.logprobs[5] == f32::NEG_INFINITY && want.logprobs[9] == f32::NEG_INFINITY);

        let rows = n * t;
        let chunks: Vec<(usize, usize, WgpuTensor)> = (0..rows)
            .step_by(CHUNK)
            .map(|lo| {
                let hi = (lo + CHUNK).min(rows);
                (lo, hi, WgpuTensor::upload(&dev, &z[lo * v..hi * v], Shape::d2(hi - lo, v)).unwrap())
            })
            .collect();
        let ids: Vec<f64> = tokens.iter().map(|&y| f64::from(y)).collect();
        let tok = WgpuTensor::upload(&dev, &ids, Shape::d1(rows)).unwrap();
        let st = Stats::new(&dev, Shape::d1(rows)).unwrap();
        let inv_t = (1.0 / tau) as f32;
        for (lo, hi, zc) in &chunks {
            row_stats_at(zc, (hi - lo) as u64, &tok, &st, *lo as u64, inv_t).unwrap();
        }
        let got = TokenStats {
            logprobs: st.logp.to_vec().unwrap(),
            entropy: st.entropy.to_vec().unwrap(),
            sum_p_sq: st.sum_p_sq.to_vec().unwrap(),
            sum_p_sq_logp: st.sum_p_sq_logp.to_vec().unwrap(),
        };
        close("logprobs", &got.logprobs, &want.logprobs, 1e-5);
        close("entropy", &got.entropy, &want.entropy, 1e-5);
        close("sum_p_sq", &got.sum_p_sq, &want.sum_p_sq, 1e-5);
        close("sum_p_sq_logp", &got.sum_p_sq_logp, &want.sum_p_sq_logp, 1e-5);

        // Rows with a −inf ℓ get no gradient: their ∂loss/∂ℓ is zero, as the
        // objective's mask would make it.
        let g: Vec<f32> = (0..n * t).map(|i| if i == 5 || i == 9 { 0.0 } else { 0.5 - rng.next() as f32 }).collect();
        let gt: Vec<f64> = g.iter().map(|&x| f64::from(x) / tau).collect();
        let gt = WgpuTensor::upload(&dev, &gt, Shape::d1(rows)).unwrap();
        let mut dz = Vec::with_capacity(z.len());
        for (lo, hi, zc) in &chunks {
            let out = WgpuTensor::empty(&dev, Shape::d2(hi - lo, v)).unwrap();
            grad_logits_at(zc, (hi - lo) as u64, &tok, &st, &gt, *lo as u64, inv_t, &out).unwrap();
            dz.extend(out.to_vec().unwrap());
        }
        // A chunk reaching past the batch's rows is refused.
        assert!(row_stats_at(&chunks[0].2, CHUNK as u64, &tok, &st, (rows - 1) as u64, inv_t).is_err());
        let mut want_dz = vec![0.0f32; z.len()];
        for (i, &y) in tokens.iter().enumerate() {
            let s = wapo_core::logits::row_stats(&z[i * v..(i + 1) * v], y as usize, tau);
            for k in 0..v {
                let p = if g[i] == 0.0 { 0.0 } else { (z[i * v + k] / tau - s.lse).exp() };
                let hot = if k == y as usize && g[i] != 0.0 { 1.0 } else { 0.0 };
                want_dz[i * v + k] = (g[i] as f64 / tau * (hot - p)) as f32;
            }
        }
        close("grad_logits", &dz, &want_dz, 1e-5);
        println!("V = {v}, τ = {tau}: statistics and gradient match");
    }
}

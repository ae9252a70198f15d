//! The two per-row kernels of the fused objective: statistics of one logits
//! row in one streaming pass, and its gradient row.
//!
//! The statistics are core's [`wapo_core::logits::row_stats`] with the online
//! rescaling done per block of [`BLOCK`] values instead of per value: a
//! block's max is taken, the running sums are moved to the new max, then the
//! block (now in L1) adds its moments in f32 lanes the compiler vectorizes.
//! Each block's lane sums go into f64 running sums, so V = 151,936 loses no
//! more precision than V = 64.
//!
//! The order keeps f32 exact where it can be: the max m is taken over the
//! raw logits, and every exponent is d = (z − m)·(1/τ), the shift before the
//! scale. z − m is exact when z is near m (and otherwise rounded relative to
//! itself), whereas z/τ − m/τ is a difference of two large rounded numbers:
//! at |z/τ| ≈ 1300 each carries ~1e-4 of rounding, which moves p, ℓ and the
//! loss by as much. ℓ likewise is the sampled token's shifted logit
//! (z_y − m)/τ minus log Σe.

use super::exp::exp_neg;

/// f32 lanes of the vector loops (a multiple of any SIMD width up to 512 bits).
const LANES: usize = 16;
/// Values per block: small enough for L1, large enough to amortize the rescale.
const BLOCK: usize = 1024;
/// exp of anything below this is 0 in f32; clamping keeps e·d finite (0·(−inf) is NaN).
const D_FLOOR: f32 = -104.0;

/// What the gradient pass needs of a row, and what the objective reports.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Stats {
    /// Max of the raw logits z over the row (the shift of the moments).
    pub max: f32,
    /// log Σ exp((z − max)/τ).
    pub log_sum: f32,
    /// ℓ = z_y/τ − logsumexp(z/τ).
    pub logp: f32,
    pub entropy: f32,
    pub sum_p_sq: f32,
    /// Σ p² log p.
    pub sum_p_sq_logp: f32,
}

/// Statistics of one row at inverse temperature `inv_t` for sampled token `y < row.len()`.
///
/// Non-finite rows follow the composed path: a +inf gives lse = +inf, H = Σp² = 0;
/// else a NaN gives NaN; a row of only −inf gives lse = ℓ = −inf, H = Σp² = 0.
pub(crate) fn stats(row: &[f32], y: usize, inv_t: f32) -> Stats {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") {
            // SAFETY: the only precondition of a safe `#[target_feature]`
            // function is that the CPU has the feature, checked just above.
            return unsafe { simd::stats_avx512(row, y, inv_t) };
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: as above, for AVX2 and FMA.
            return unsafe { simd::stats_avx2(row, y, inv_t) };
        }
    }
    stats_body(row, y, inv_t)
}

/// One gradient row: ∂loss/∂z_v = c·(1[v = y] − p_v) with c = g/τ and
/// p_v = exp((z_v − max)/τ − log_sum); all zeros where c = 0 (the composed
/// path's masked product, so non-finite rows of unused positions give 0).
pub(crate) fn grad(row: &[f32], out: &mut [f32], y: usize, inv_t: f32, st: Stats, c: f32) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has the feature the callee is compiled for.
            return unsafe { simd::grad_avx512(row, out, y, inv_t, st, c) };
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has the features the callee is compiled for.
            return unsafe { simd::grad_avx2(row, out, y, inv_t, st, c) };
        }
    }
    grad_body(row, out, y, inv_t, st, c)
}

/// The kernels compiled for wider vector units, chosen at run time.
#[cfg(target_arch = "x86_64")]
mod simd {
    use super::{Stats, grad_body, stats_body};

    #[target_feature(enable = "avx512f")]
    pub(super) fn stats_avx512(row: &[f32], y: usize, inv_t: f32) -> Stats {
        stats_body(row, y, inv_t)
    }
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn stats_avx2(row: &[f32], y: usize, inv_t: f32) -> Stats {
        stats_body(row, y, inv_t)
    }
    #[target_feature(enable = "avx512f")]
    pub(super) fn grad_avx512(row: &[f32], out: &mut [f32], y: usize, inv_t: f32, st: Stats, c: f32) {
        grad_body(row, out, y, inv_t, st, c)
    }
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn grad_avx2(row: &[f32], out: &mut [f32], y: usize, inv_t: f32, st: Stats, c: f32) {
        grad_body(row, out, y, inv_t, st, c)
    }
}

#[inline(always)]
fn stats_body(row: &[f32], y: usize, inv_t: f32) -> Stats {
    let mut m = f32::NEG_INFINITY;
    let (mut s0, mut s1, mut s2, mut s3) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    let mut nan = false;
    for block in row.chunks(BLOCK) {
        let (bm, bnan) = block_max(block);
        nan |= bnan;
        if bm > m {
            if m != f32::NEG_INFINITY {
                // Move the sums to the new max; shift the (z − m)/τ moments.
                let dm = (m as f64 - bm as f64) * inv_t as f64;
                let f = dm.exp();
                s1 = f * (s1 + dm * s0);
                s3 = f * f * (s3 + dm * s2);
                s0 *= f;
                s2 *= f * f;
            }
            m = bm;
        }
        if m.is_infinite() {
            continue;
        }
        let [a0, a1, a2, a3] = moments(block, m, inv_t);
        s0 += a0;
        s1 += a1;
        s2 += a2;
        s3 += a3;
    }
    // τ > 0, so a +inf or −inf z/τ is a +inf or −inf z; the shifted logit
    // (z_y − m)/τ is then −inf, NaN or +inf as z_y/τ − m/τ would be.
    let dy = (row[y] - m) * inv_t;
    if m == f32::INFINITY {
        return Stats { max: m, log_sum: 0.0, logp: dy, entropy: 0.0, sum_p_sq: 0.0, sum_p_sq_logp: 0.0 };
    }
    if nan {
        let n = f32::NAN;
        return Stats { max: m, log_sum: n, logp: n, entropy: n, sum_p_sq: n, sum_p_sq_logp: n };
    }
    if m == f32::NEG_INFINITY {
        let logp = f32::NEG_INFINITY;
        return Stats { max: m, log_sum: 0.0, logp, entropy: 0.0, sum_p_sq: 0.0, sum_p_sq_logp: 0.0 };
    }
    let log_s0 = s0.ln();
    let s0sq = s0 * s0;
    // The sampled token's shifted logit in f64: z_y − m is exact there.
    let dy = (row[y] as f64 - m as f64) * inv_t as f64;
    Stats {
        max: m,
        log_sum: log_s0 as f32,
        logp: (dy - log_s0) as f32,
        entropy: (log_s0 - s1 / s0) as f32,
        sum_p_sq: (s2 / s0sq) as f32,
        sum_p_sq_logp: ((s3 - log_s0 * s2) / s0sq) as f32,
    }
}

/// (max over the non-NaN values of the block, whether a NaN occurred).
#[inline(always)]
fn block_max(block: &[f32]) -> (f32, bool) {
    let mut mx = [f32::NEG_INFINITY; LANES];
    let mut nan = [0u32; LANES];
    let mut src = block.chunks_exact(LANES);
    for b in &mut src {
        for j in 0..LANES {
            let v = b[j];
            mx[j] = if v > mx[j] { v } else { mx[j] };
            nan[j] |= ((v.to_bits() & 0x7fff_ffff) > 0x7f80_0000) as u32;
        }
    }
    let mut m = mx.iter().fold(f32::NEG_INFINITY, |a, b| if *b > a { *b } else { a });
    let mut any_nan = nan.iter().any(|f| *f != 0);
    for v in src.remainder() {
        m = if *v > m { *v } else { m };
        any_nan |= v.is_nan();
    }
    (m, any_nan)
}

/// [Σe, Σe·d, Σe², Σe²·d] over the block, d = (z − m)/τ, e = exp(d).
#[inline(always)]
fn moments(block: &[f32], m: f32, inv_t: f32) -> [f64; 4] {
    let mut acc = [[0.0f32; LANES]; 4];
    let mut it = block.chunks_exact(LANES);
    for z in &mut it {
        for j in 0..LANES {
            let d = (z[j] - m) * inv_t;
            let d = if d < D_FLOOR { D_FLOOR } else { d };
            let e = exp_neg(d);
            let ed = e * d;
            acc[0][j] += e;
            acc[1][j] += ed;
            acc[2][j] += e * e;
            acc[3][j] += e * ed;
        }
    }
    let mut out = acc.map(|a| a.iter().map(|v| *v as f64).sum::<f64>());
    for z in it.remainder() {
        let d = ((z - m) * inv_t).max(D_FLOOR) as f64;
        let e = d.exp();
        out[0] += e;
        out[1] += e * d;
        out[2] += e * e;
        out[3] += e * e * d;
    }
    out
}

#[inline(always)]
fn grad_body(row: &[f32], out: &mut [f32], y: usize, inv_t: f32, st: Stats, c: f32) {
    if c == 0.0 || !st.max.is_finite() {
        out.fill(0.0);
        return;
    }
    let (m, ls) = (st.max, st.log_sum);
    let p = |z: f32| exp_neg((z - m) * inv_t - ls);
    let mut src = row.chunks_exact(LANES);
    let mut dst = out.chunks_exact_mut(LANES);
    for (z, o) in (&mut src).zip(&mut dst) {
        for j in 0..LANES {
            o[j] = -(p(z[j]) * c);
        }
    }
    for (z, o) in src.remainder().iter().zip(dst.into_remainder()) {
        *o = -(p(*z) * c);
    }
    out[y] = (1.0 - p(row[y])) * c;
}

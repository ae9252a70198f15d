//! The row-wise layers of the GPT, llm.c style: each a `_forward` /
//! `_backward` pair, outputs first. Rows are independent, so they run in
//! parallel; parameter-gradient reductions over rows use a fixed chunking
//! (not the thread count) so that results are bit-identical on any machine.

use rayon::prelude::*;

/// Rows per task in parallel loops; fixed so that reductions do not depend
/// on the number of threads.
pub(super) const ROW_CHUNK: usize = 64;

/// `c (m, n) = alpha · a (m, k) · b (k, n) + beta · c`, with arbitrary
/// strides for `a` and `b` and a row-major `c`.
#[allow(clippy::too_many_arguments)]
pub fn gemm(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    sa: (usize, usize),
    b: &[f32],
    sb: (usize, usize),
    beta: f32,
    c: &mut [f32],
) {
    gemm_strided(m, k, n, 1.0, a, sa, b, sb, beta, c, n);
}

/// [`gemm`] with a scale `alpha` and row stride `rsc` ≥ n for `c`.
#[allow(clippy::too_many_arguments)]
pub fn gemm_strided(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: &[f32],
    (rsa, csa): (usize, usize),
    b: &[f32],
    (rsb, csb): (usize, usize),
    beta: f32,
    c: &mut [f32],
    rsc: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    let span = |rows: usize, cols: usize, rs: usize, cs: usize| {
        if rows == 0 || cols == 0 { 0 } else { (rows - 1) * rs + (cols - 1) * cs + 1 }
    };
    assert!(a.len() >= span(m, k, rsa, csa), "gemm: a too short");
    assert!(b.len() >= span(k, n, rsb, csb), "gemm: b too short");
    assert!(rsc >= n && c.len() >= span(m, n, rsc, 1), "gemm: c too short");
    // SAFETY: the asserts above prove that every element sgemm reads of a
    // (indices i·rsa + p·csa, i < m, p < k) and of b (p·rsb + j·csb) and
    // every element it writes of c (i·rsc + j with j < n ≤ rsc, so no two
    // (i, j) alias) lies inside the borrowed slices; `c` is borrowed
    // mutably, so it does not overlap `a` or `b`.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            alpha,
            a.as_ptr(),
            rsa as isize,
            csa as isize,
            b.as_ptr(),
            rsb as isize,
            csb as isize,
            beta,
            c.as_mut_ptr(),
            rsc as isize,
            1,
        );
    }
}

/// out (R, OC) = inp (R, C) · wᵀ + bias, with w (OC, C) as in `nn.Linear`.
pub fn matmul_forward(out: &mut [f32], inp: &[f32], w: &[f32], bias: &[f32], c: usize, oc: usize) {
    let r = inp.len() / c;
    out[..r * oc].par_chunks_mut(oc * ROW_CHUNK).for_each(|rows| {
        for row in rows.chunks_mut(oc) {
            if bias.is_empty() {
                row.fill(0.0);
            } else {
                row.copy_from_slice(bias);
            }
        }
    });
    gemm(r, c, oc, inp, (c, 1), w, (1, c), 1.0, out);
}

/// Accumulates dinp (R, C) += dout · w, dw (OC, C) += doutᵀ · inp and
/// dbias (OC) += Σ_rows dout.
#[allow(clippy::too_many_arguments)]
pub fn matmul_backward(
    dinp: &mut [f32],
    dw: &mut [f32],
    dbias: &mut [f32],
    dout: &[f32],
    inp: &[f32],
    w: &[f32],
    c: usize,
    oc: usize,
) {
    let r = inp.len() / c;
    gemm(r, oc, c, dout, (oc, 1), w, (c, 1), 1.0, dinp);
    gemm(oc, r, c, dout, (1, oc), inp, (c, 1), 1.0, dw);
    if !dbias.is_empty() {
        column_sums(dbias, dout, oc);
    }
}

/// acc (W) += Σ_rows x (R, W), reduced in fixed chunks.
fn column_sums(acc: &mut [f32], x: &[f32], w: usize) {
    let partial: Vec<Vec<f32>> = x
        .par_chunks(w * ROW_CHUNK)
        .map(|rows| {
            let mut s = vec![0.0f32; w];
            for row in rows.chunks(w) {
                for (a, v) in s.iter_mut().zip(row) {
                    *a += v;
                }
            }
            s
        })
        .collect();
    for s in partial {
        for (a, v) in acc.iter_mut().zip(&s) {
            *a += v;
        }
    }
}

/// out (R, C) = (inp − mean) · rstd · w + b per row; saves mean and rstd (R).
pub fn layernorm_forward(
    out: &mut [f32],
    mean: &mut [f32],
    rstd: &mut [f32],
    inp: &[f32],
    w: &[f32],
    b: &[f32],
    eps: f32,
) {
    let c = w.len();
    out.par_chunks_mut(c)
        .zip(mean.par_iter_mut().zip(rstd.par_iter_mut()))
        .zip(inp.par_chunks(c))
        .with_min_len(ROW_CHUNK)
        .for_each(|((o, (m, rs)), x)| {
            let mu = x.iter().sum::<f32>() / c as f32;
            let var = x.iter().map(|v| (v - mu) * (v - mu)).sum::<f32>() / c as f32;
            let s = 1.0 / (var + eps).sqrt();
            for i in 0..c {
                o[i] = (x[i] - mu) * s * w[i] + b[i];
            }
            *m = mu;
            *rs = s;
        });
}

/// dinp (R, C) += ∂/∂inp; dw, db (C) += ∂/∂w, ∂/∂b.
#[allow(clippy::too_many_arguments)]
pub fn layernorm_backward(
    dinp: &mut [f32],
    dw: &mut [f32],
    db: &mut [f32],
    dout: &[f32],
    inp: &[f32],
    w: &[f32],
    mean: &[f32],
    rstd: &[f32],
) {
    let c = w.len();
    let partial: Vec<(Vec<f32>, Vec<f32>)> = dinp
        .par_chunks_mut(c * ROW_CHUNK)
        .enumerate()
        .map(|(chunk, di_rows)| {
            let (mut pw, mut pb) = (vec![0.0f32; c], vec![0.0f32; c]);
            for (j, di) in di_rows.chunks_mut(c).enumerate() {
                let r = chunk * ROW_CHUNK + j;
                let (x, d) = (&inp[r * c..(r + 1) * c], &dout[r * c..(r + 1) * c]);
                let (mu, s) = (mean[r], rstd[r]);
                let (mut dm, mut dnm) = (0.0f32, 0.0f32);
                for i in 0..c {
                    let norm = (x[i] - mu) * s;
                    let dn = d[i] * w[i];
                    dm += dn;
                    dnm += dn * norm;
                    pw[i] += d[i] * norm;
                    pb[i] += d[i];
                }
                dm /= c as f32;
                dnm /= c as f32;
                for i in 0..c {
                    let norm = (x[i] - mu) * s;
                    di[i] += (d[i] * w[i] - dm - norm * dnm) * s;
                }
            }
            (pw, pb)
        })
        .collect();
    for (pw, pb) in partial {
        for i in 0..c {
            dw[i] += pw[i];
            db[i] += pb[i];
        }
    }
}

const GELU_SCALE: f32 = 0.797_884_6; // sqrt(2/π)

/// GELU, tanh approximation (GPT-2): out = ½x(1 + tanh(√(2/π)(x + 0.044715x³))).
pub fn gelu_forward(out: &mut [f32], inp: &[f32]) {
    out.par_chunks_mut(4096).zip(inp.par_chunks(4096)).for_each(|(o, x)| {
        for (o, &x) in o.iter_mut().zip(x) {
            let u = GELU_SCALE * (x + 0.044715 * x * x * x);
            *o = 0.5 * x * (1.0 + tanh(u));
        }
    });
}

/// dinp = GELU'(inp) · dout (overwrites).
pub fn gelu_backward(dinp: &mut [f32], inp: &[f32], dout: &[f32]) {
    dinp.par_chunks_mut(4096).zip(inp.par_chunks(4096).zip(dout.par_chunks(4096))).for_each(|(di, (x, d))| {
        for i in 0..di.len() {
            let x = x[i];
            let u = GELU_SCALE * (x + 0.044715 * x * x * x);
            let t = tanh(u);
            let sech2 = 1.0 - t * t;
            let du = GELU_SCALE * (1.0 + 3.0 * 0.044715 * x * x);
            di[i] = (0.5 * (1.0 + t) + 0.5 * x * sech2 * du) * d[i];
        }
    });
}

/// tanh from a branch-free exp, so that the GELU loops vectorize (libm's
/// `tanhf` is a scalar call and dominated the MLP). Absolute error < 2e-7:
/// beyond |u| = 9, tanh is ±1 in f32.
#[inline(always)]
fn tanh(u: f32) -> f32 {
    let e = exp_small(2.0 * u.clamp(-9.0, 9.0));
    1.0 - 2.0 / (e + 1.0)
}

/// e^x for |x| ≤ 18: x = k·ln2 + r with |r| ≤ ln2/2, e^r by its degree-6
/// Taylor polynomial (relative error < 2e-7), 2^k from the exponent bits.
#[inline(always)]
fn exp_small(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // Round to nearest by the 1.5·2^23 trick: plain SSE2 arithmetic.
    const MAGIC: f32 = 12_582_912.0;
    let k = (x * LOG2E + MAGIC) - MAGIC;
    let r = x - k * LN2_HI - k * LN2_LO;
    let p = 1.0 + r * (1.0 + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    p * f32::from_bits(((k as i32 + 127) as u32) << 23)
}

/// out = a + b.
pub fn residual_forward(out: &mut [f32], a: &[f32], b: &[f32]) {
    out.par_chunks_mut(4096).zip(a.par_chunks(4096).zip(b.par_chunks(4096))).for_each(|(o, (a, b))| {
        for i in 0..o.len() {
            o[i] = a[i] + b[i];
        }
    });
}

/// out (R, C) = wte[token] + wpe[pos] for each row; `wpe` empty (rotary
/// models): the token embedding alone.
pub fn encoder_forward(out: &mut [f32], tokens: &[u32], pos: &[usize], wte: &[f32], wpe: &[f32]) {
    let c = out.len() / tokens.len().max(1);
    out.par_chunks_mut(c).zip(tokens.par_iter().zip(pos.par_iter())).with_min_len(ROW_CHUNK).for_each(
        |(o, (&t, &p))| {
            let e = &wte[t as usize * c..][..c];
            if wpe.is_empty() {
                o.copy_from_slice(e);
            } else {
                let q = &wpe[p * c..][..c];
                for i in 0..c {
                    o[i] = e[i] + q[i];
                }
            }
        },
    );
}

/// dwte[token] += dout, dwpe[pos] += dout (when there is one), in row order
/// (deterministic).
pub fn encoder_backward(dwte: &mut [f32], dwpe: &mut [f32], dout: &[f32], tokens: &[u32], pos: &[usize]) {
    let c = dout.len() / tokens.len().max(1);
    for (r, d) in dout.chunks(c).enumerate() {
        let t = tokens[r] as usize;
        for i in 0..c {
            dwte[t * c + i] += d[i];
        }
        if !dwpe.is_empty() {
            for i in 0..c {
                dwpe[pos[r] * c + i] += d[i];
            }
        }
    }
}

/// Σ a·b with eight accumulators, so that it vectorizes.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ar, br) = (ac.remainder(), bc.remainder());
    for (x, y) in ac.zip(bc) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut s = acc.iter().sum::<f32>();
    for (x, y) in ar.iter().zip(br) {
        s += x * y;
    }
    s
}

/// y += alpha · x.
#[inline]
pub fn axpy(y: &mut [f32], alpha: f32, x: &[f32]) {
    for (y, x) in y.iter_mut().zip(x) {
        *y += alpha * x;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn fast_tanh_matches_libm() {
        let mut worst = 0.0f32;
        for i in -40_000..=40_000 {
            let u = i as f32 * 5e-4;
            worst = worst.max((super::tanh(u) - u.tanh()).abs());
        }
        for u in [-1e3f32, -30.0, -9.5, 9.5, 30.0, 1e3] {
            assert!((super::tanh(u) - u.signum()).abs() <= 6e-8, "{u}");
        }
        assert!(worst < 5e-7, "{worst}");
    }
}

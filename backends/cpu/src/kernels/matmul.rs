//! The matmuls: sgemm from `matrixmultiply` (any strides), the linear
//! layer's forward and backward (bias gradient in fixed row chunks), and the
//! vector helpers of attention.

use rayon::prelude::*;

use super::ROW_CHUNK;

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

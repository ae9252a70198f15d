//! SwiGLU (the llama family's MLP activation): silu(gate) · up, forward
//! and backward.

use rayon::prelude::*;

use super::ROW_CHUNK;

/// out (R, M) = silu(gate) · up, from fch (R, 2M) = gate | up.
pub fn swiglu_forward(out: &mut [f32], fch: &[f32], m: usize) {
    out.par_chunks_mut(m).zip(fch.par_chunks(2 * m)).with_min_len(ROW_CHUNK).for_each(|(o, x)| {
        let (g, u) = x.split_at(m);
        for i in 0..m {
            o[i] = silu(g[i]) * u[i];
        }
    });
}

/// dfch (R, 2M) = ∂/∂(gate | up) from dout (R, M) (overwrites).
pub fn swiglu_backward(dfch: &mut [f32], fch: &[f32], dout: &[f32], m: usize) {
    dfch.par_chunks_mut(2 * m).zip(fch.par_chunks(2 * m).zip(dout.par_chunks(m))).with_min_len(ROW_CHUNK).for_each(
        |(dx, (x, d))| {
            let (g, u) = x.split_at(m);
            let (dg, du) = dx.split_at_mut(m);
            for i in 0..m {
                let sg = sigmoid(g[i]);
                dg[i] = d[i] * u[i] * sg * (1.0 + g[i] * (1.0 - sg));
                du[i] = d[i] * g[i] * sg;
            }
        },
    );
}

#[inline]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

#[inline]
fn silu(x: f32) -> f32 {
    x * sigmoid(x)
}

//! The llama family's row-wise layers, llm.c style `_forward`/`_backward`
//! pairs beside the GPT's in [`super::kernels`]: RMSNorm, rotary position
//! embeddings (the Hugging Face `rotate_half` layout: a head's first half
//! pairs with its second half) and SwiGLU. Parameter-gradient reductions use
//! the same fixed row chunks as the GPT's, so results do not depend on the
//! thread count.

use rayon::prelude::*;

use super::kernels::ROW_CHUNK;

/// out (R, C) = inp · rstd · w per row, rstd = 1/√(mean(inp²) + ε); saves rstd (R).
pub fn rmsnorm_forward(out: &mut [f32], rstd: &mut [f32], inp: &[f32], w: &[f32], eps: f32) {
    let c = w.len();
    out.par_chunks_mut(c).zip(rstd.par_iter_mut()).zip(inp.par_chunks(c)).with_min_len(ROW_CHUNK).for_each(
        |((o, rs), x)| {
            let ms = x.iter().map(|v| v * v).sum::<f32>() / c as f32;
            let s = 1.0 / (ms + eps).sqrt();
            for i in 0..c {
                o[i] = x[i] * s * w[i];
            }
            *rs = s;
        },
    );
}

/// dinp (R, C) += ∂/∂inp; dw (C) += ∂/∂w.
pub fn rmsnorm_backward(dinp: &mut [f32], dw: &mut [f32], dout: &[f32], inp: &[f32], w: &[f32], rstd: &[f32]) {
    let c = w.len();
    let partial: Vec<Vec<f32>> = dinp
        .par_chunks_mut(c * ROW_CHUNK)
        .enumerate()
        .map(|(chunk, di_rows)| {
            let mut pw = vec![0.0f32; c];
            for (j, di) in di_rows.chunks_mut(c).enumerate() {
                let r = chunk * ROW_CHUNK + j;
                let (x, d, s) = (&inp[r * c..(r + 1) * c], &dout[r * c..(r + 1) * c], rstd[r]);
                let mut dnm = 0.0f32;
                for i in 0..c {
                    let norm = x[i] * s;
                    dnm += d[i] * w[i] * norm;
                    pw[i] += d[i] * norm;
                }
                dnm /= c as f32;
                for i in 0..c {
                    di[i] += (d[i] * w[i] - x[i] * s * dnm) * s;
                }
            }
            pw
        })
        .collect();
    for pw in partial {
        for i in 0..c {
            dw[i] += pw[i];
        }
    }
}

/// cos and sin of position · inv_freq for every position of the context:
/// (context, hs/2) each, computed in f64 and rounded once.
#[derive(Clone, Debug, Default)]
pub struct RopeTable {
    pub half: usize,
    pub cos: Vec<f32>,
    pub sin: Vec<f32>,
}

impl RopeTable {
    pub fn new(inv_freq: &[f64], context: usize) -> Self {
        let half = inv_freq.len();
        let (mut cos, mut sin) = (Vec::with_capacity(context * half), Vec::with_capacity(context * half));
        for p in 0..context {
            for &f in inv_freq {
                let a = p as f64 * f;
                cos.push(a.cos() as f32);
                sin.push(a.sin() as f32);
            }
        }
        RopeTable { half, cos, sin }
    }

    /// Rotates every head of the first `heads` heads of each row of `x`
    /// (rows of `stride` floats, heads of 2·half floats from the row start) by
    /// its position; `inverse` applies the transpose (the backward).
    pub fn apply(&self, x: &mut [f32], stride: usize, heads: usize, pos: &[usize], inverse: bool) {
        let h2 = self.half;
        x.par_chunks_mut(stride).zip(pos.par_iter()).with_min_len(ROW_CHUNK).for_each(|(row, &p)| {
            let (cos, sin) = (&self.cos[p * h2..(p + 1) * h2], &self.sin[p * h2..(p + 1) * h2]);
            for head in row[..heads * 2 * h2].chunks_mut(2 * h2) {
                let (a, b) = head.split_at_mut(h2);
                for i in 0..h2 {
                    let (x1, x2, s) = (a[i], b[i], if inverse { -sin[i] } else { sin[i] });
                    a[i] = x1 * cos[i] - x2 * s;
                    b[i] = x2 * cos[i] + x1 * s;
                }
            }
        });
    }
}

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

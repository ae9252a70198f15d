//! RMSNorm (the llama family's norm), forward and backward; the gain
//! gradient reduced in fixed row chunks, as LayerNorm's.

use rayon::prelude::*;

use super::ROW_CHUNK;

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

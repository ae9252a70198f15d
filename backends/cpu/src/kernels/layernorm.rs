//! LayerNorm (the GPT's norm), forward and backward; the gain and bias
//! gradients reduced in fixed row chunks.

use rayon::prelude::*;

use super::ROW_CHUNK;

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

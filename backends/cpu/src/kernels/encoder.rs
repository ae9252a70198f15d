//! The token (+ learned position) embedding, forward and backward.

use rayon::prelude::*;

use super::ROW_CHUNK;

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

//! Rotary position embeddings in the Hugging Face `rotate_half` layout (a
//! head's first half pairs with its second half): the cos/sin tables and
//! the rotation of q and k, forward and inverse.

use rayon::prelude::*;

use super::ROW_CHUNK;

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

//! Causal multi-head attention over a shared prompt (the row layout of
//! [`Rows`]). [`attend`] scores one query (the one-token generation step, whose
//! completion keys live in the KV cache); [`super::attention_train`] runs
//! the training forward and backward on whole blocks with sgemm.

pub use wapo_core::rl::Rows;

use super::kernels::{axpy, dot};

/// Geometry of one head inside a (rows, 3C) qkv buffer.
#[derive(Clone, Copy)]
pub struct Heads {
    pub c: usize,
    pub h: usize,
}

impl Heads {
    pub fn hs(&self) -> usize {
        self.c / self.h
    }
    pub fn scale(&self) -> f32 {
        1.0 / (self.hs() as f32).sqrt()
    }
}

/// Keys of one query: the first `np` rows of `pre` and the first `ns` rows
/// of `suf`, both (rows, 3C).
#[derive(Clone, Copy)]
pub struct Keys<'a> {
    pub pre: &'a [f32],
    pub np: usize,
    pub suf: &'a [f32],
    pub ns: usize,
}

impl Keys<'_> {
    #[inline]
    pub fn row(&self, j: usize, c3: usize) -> &[f32] {
        if j < self.np {
            &self.pre[j * c3..(j + 1) * c3]
        } else {
            let j = j - self.np;
            &self.suf[j * c3..(j + 1) * c3]
        }
    }
}

/// One query row (3C, q first) over all heads: writes out (C) and the
/// probabilities (H, stride) of its np + ns keys.
pub fn attend(out: &mut [f32], probs: &mut [f32], stride: usize, q: &[f32], keys: Keys<'_>, hd: Heads) {
    let (c, hs, c3) = (hd.c, hd.hs(), 3 * hd.c);
    let nk = keys.np + keys.ns;
    out.fill(0.0);
    for h in 0..hd.h {
        let qh = &q[h * hs..(h + 1) * hs];
        let pr = &mut probs[h * stride..h * stride + nk];
        let mut max = f32::NEG_INFINITY;
        for (j, p) in pr.iter_mut().enumerate() {
            let k = &keys.row(j, c3)[c + h * hs..c + (h + 1) * hs];
            *p = dot(qh, k) * hd.scale();
            max = max.max(*p);
        }
        let mut sum = 0.0;
        for p in pr.iter_mut() {
            *p = (*p - max).exp();
            sum += *p;
        }
        let inv = 1.0 / sum;
        let oh = &mut out[h * hs..(h + 1) * hs];
        for (j, p) in pr.iter_mut().enumerate() {
            *p *= inv;
            axpy(oh, *p, &keys.row(j, c3)[2 * c + h * hs..2 * c + (h + 1) * hs]);
        }
    }
}

/// `b` chunks of `len` (empty chunks when `len` is 0: prompts without completions).
pub(super) fn group_chunks(x: &mut [f32], len: usize, b: usize) -> Vec<&mut [f32]> {
    if len == 0 { (0..b).map(|_| <&mut [f32]>::default()).collect() } else { x.chunks_mut(len).collect() }
}

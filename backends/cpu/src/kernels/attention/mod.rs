//! Causal multi-head attention over a shared prompt (the row layout of
//! [`Rows`]). [`attend`] scores one query (the one-token generation step, whose
//! completion keys live in the KV cache); [`train`] runs
//! the training forward and backward on whole blocks with sgemm.

pub use wapo_core::rl::Rows;

use crate::kernels::matmul::{axpy, dot};

pub mod train;

pub use train::{attention_backward, attention_forward};

/// Geometry of the heads inside a (rows, C + 2·H_kv·hs) q|k|v buffer: H
/// query heads, then H_kv key heads, then H_kv value heads; query head h
/// reads key/value head h / (H/H_kv) (grouped-query attention; H_kv = H is
/// plain multi-head attention).
#[derive(Clone, Copy)]
pub struct Heads {
    pub h: usize,
    pub kv: usize,
    pub hs: usize,
}

impl Heads {
    pub fn new(cfg: &wapo_core::rl::ModelConfig) -> Self {
        Heads { h: cfg.heads, kv: cfg.kv_heads, hs: cfg.head_size() }
    }
    pub fn hs(&self) -> usize {
        self.hs
    }
    /// Width of the attention output: C = H·hs.
    pub fn c(&self) -> usize {
        self.h * self.hs
    }
    /// Width of a q|k|v row.
    pub fn width(&self) -> usize {
        (self.h + 2 * self.kv) * self.hs
    }
    /// Offsets of query head `h`'s q, k and v inside a q|k|v row.
    pub fn offsets(&self, h: usize) -> (usize, usize, usize) {
        let g = h / (self.h / self.kv);
        (h * self.hs, (self.h + g) * self.hs, (self.h + self.kv + g) * self.hs)
    }
    pub fn scale(&self) -> f32 {
        1.0 / (self.hs as f32).sqrt()
    }
}

/// Keys of one query: the first `np` rows of `pre` and the first `ns` rows
/// of `suf`, both q|k|v rows.
#[derive(Clone, Copy)]
pub struct Keys<'a> {
    pub pre: &'a [f32],
    pub np: usize,
    /// The first `skip` prompt keys are padding, attended by no query.
    pub skip: usize,
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

/// One query row (a q|k|v row, q first) over all heads: writes out (C) and
/// the probabilities (H, stride) of its np + ns keys.
pub fn attend(out: &mut [f32], probs: &mut [f32], stride: usize, q: &[f32], keys: Keys<'_>, hd: Heads) {
    let (hs, c3) = (hd.hs(), hd.width());
    let nk = keys.np + keys.ns;
    out.fill(0.0);
    for h in 0..hd.h {
        let (qo, ko, vo) = hd.offsets(h);
        let qh = &q[qo..qo + hs];
        let pr = &mut probs[h * stride..h * stride + nk];
        let mut max = f32::NEG_INFINITY;
        for (j, p) in pr.iter_mut().enumerate() {
            if j < keys.skip {
                *p = f32::NEG_INFINITY;
                continue;
            }
            let k = &keys.row(j, c3)[ko..ko + hs];
            *p = dot(qh, k) * hd.scale();
            max = max.max(*p);
        }
        let mut sum = 0.0;
        for p in pr.iter_mut() {
            *p = (*p - max).exp();
            sum += *p;
        }
        let inv = 1.0 / sum;
        let oh = &mut out[qo..qo + hs];
        for (j, p) in pr.iter_mut().enumerate() {
            *p *= inv;
            axpy(oh, *p, &keys.row(j, c3)[vo..vo + hs]);
        }
    }
}

/// `b` chunks of `len` (empty chunks when `len` is 0: prompts without completions).
pub(super) fn group_chunks(x: &mut [f32], len: usize, b: usize) -> Vec<&mut [f32]> {
    if len == 0 { (0..b).map(|_| <&mut [f32]>::default()).collect() } else { x.chunks_mut(len).collect() }
}

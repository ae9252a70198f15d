//! The transformer block, once for both families: the family is data (which
//! norm, whether q and k rotate, which MLP activation, how many key/value
//! heads), read from [`ModelConfig`]. The training forward, the backward and
//! the KV-cache decode step all run these two functions; only attention
//! differs between them, and the caller passes it in.

use std::ops::Range;

use wapo_core::rl::layout::{LayerViews, Layout};
use wapo_core::rl::{Family, ModelConfig};

use crate::kernels::attention::Heads;
use crate::kernels::*;

/// The weights and constants one forward or backward reads.
#[derive(Clone, Copy)]
pub struct Net<'a> {
    pub cfg: &'a ModelConfig,
    pub lay: &'a Layout,
    pub params: &'a [f32],
    /// Rotary tables (empty for the GPT).
    pub rope: &'a RopeTable,
}

/// What the backward of one block needs, saved by the forward. The norms'
/// outputs and the MLP activation are cheap to recompute from what is saved
/// and are not kept: at a real model's shapes that is a third of the
/// activation memory.
#[derive(Default)]
pub struct LayerActs {
    pub ln1_mean: Vec<f32>, // (R) (LayerNorm only)
    pub ln1_rstd: Vec<f32>, // (R)
    pub qkv: Vec<f32>,      // (R, C + 2·H_kv·hs), q and k rotated
    pub probs: Vec<f32>,    // (R, H, keys)
    pub atty: Vec<f32>,     // (R, C)
    pub res2: Vec<f32>,     // (R, C) residual after attention
    pub ln2_mean: Vec<f32>, // (R)
    pub ln2_rstd: Vec<f32>, // (R)
    pub fch: Vec<f32>,      // (R, M) or (R, 2M) gate | up
}

/// Transient buffers of one block's forward or backward, shared by all layers.
#[derive(Default)]
pub struct BlockScratch {
    pub ln: Vec<f32>,  // (R, C) a norm's output
    pub act: Vec<f32>, // (R, M) GELU(fch) or silu(gate)·up
    pub tmp: Vec<f32>, // (R, C)
    pub grads: [Vec<f32>; 4],
    /// Recomputed norm statistics (the saved ones are used; these are discarded).
    stats: [Vec<f32>; 2],
}

/// `v` resized to `n` zeros, reusing its allocation.
pub fn zeroed(v: &mut Vec<f32>, n: usize) -> &mut [f32] {
    v.clear();
    v.resize(n, 0.0);
    v
}

/// Disjoint mutable views of two ranges of `x` (`a` before `b`; `b` may be
/// empty, as a llama's biases are).
pub fn pair<'a>(x: &'a mut [f32], a: &Range<usize>, b: &Range<usize>) -> (&'a mut [f32], &'a mut [f32]) {
    if b.is_empty() {
        return (&mut x[a.clone()], &mut []);
    }
    let (lo, hi) = x.split_at_mut(b.start);
    (&mut lo[a.clone()], &mut hi[..b.len()])
}

impl Net<'_> {
    fn p(&self, r: &Range<usize>) -> &[f32] {
        &self.params[r.clone()]
    }

    /// LayerNorm (GPT) or RMSNorm (llama) of the rows of `x`.
    pub fn norm_forward(
        &self,
        out: &mut Vec<f32>,
        mean: &mut Vec<f32>,
        rstd: &mut Vec<f32>,
        x: &[f32],
        w: &Range<usize>,
        b: &Range<usize>,
    ) {
        let (c, eps) = (self.cfg.channels, self.cfg.norm_eps as f32);
        let r = x.len() / c;
        match self.cfg.family {
            Family::Gpt => {
                layernorm_forward(zeroed(out, r * c), zeroed(mean, r), zeroed(rstd, r), x, self.p(w), self.p(b), eps)
            }
            Family::Llama => rmsnorm_forward(zeroed(out, r * c), zeroed(rstd, r), x, self.p(w), eps),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub fn norm_backward(
        &self,
        dinp: &mut [f32],
        grads: &mut [f32],
        dout: &[f32],
        x: &[f32],
        w: &Range<usize>,
        b: &Range<usize>,
        mean: &[f32],
        rstd: &[f32],
    ) {
        let (gw, gb) = pair(grads, w, b);
        match self.cfg.family {
            Family::Gpt => layernorm_backward(dinp, gw, gb, dout, x, self.p(w), mean, rstd),
            Family::Llama => rmsnorm_backward(dinp, gw, dout, x, self.p(w), rstd),
        }
    }

    /// Rotates q and k of the q|k|v rows by position (llama); the GPT's
    /// positions are in its embedding instead.
    pub fn rotate(&self, qkv: &mut [f32], pos: &[usize], inverse: bool) {
        if self.cfg.family == Family::Llama {
            let hd = Heads::new(self.cfg);
            self.rope.apply(qkv, hd.width(), hd.h + hd.kv, pos, inverse);
        }
    }

    /// The MLP activation of `fch` into `act`.
    fn activation(&self, act: &mut Vec<f32>, fch: &[f32]) {
        let m = self.cfg.mlp;
        let r = fch.len() / self.cfg.fc_channels();
        match self.cfg.family {
            Family::Gpt => gelu_forward(zeroed(act, r * m), fch),
            Family::Llama => swiglu_forward(zeroed(act, r * m), fch, m),
        }
    }

    /// One block: `out` = block(`x`), saving in `la` what the backward needs.
    /// `attend(atty, probs, qkv)` fills the attention output (R, C) from the
    /// rotated q|k|v rows.
    #[allow(clippy::too_many_arguments)]
    pub fn block_forward(
        &self,
        w: &LayerViews,
        la: &mut LayerActs,
        x: &[f32],
        out: &mut [f32],
        pos: &[usize],
        sc: &mut BlockScratch,
        attend: impl FnOnce(&mut Vec<f32>, &mut Vec<f32>, &[f32]),
    ) {
        let cfg = self.cfg;
        let (c, m) = (cfg.channels, cfg.mlp);
        let (qkvc, fcc) = (cfg.qkv_channels(), cfg.fc_channels());
        let r = x.len() / c;
        self.norm_forward(&mut sc.ln, &mut la.ln1_mean, &mut la.ln1_rstd, x, &w.ln1_w, &w.ln1_b);
        matmul_forward(zeroed(&mut la.qkv, r * qkvc), &sc.ln, self.p(&w.qkv_w), self.p(&w.qkv_b), c, qkvc);
        self.rotate(&mut la.qkv, pos, false);
        attend(&mut la.atty, &mut la.probs, &la.qkv);
        let t = zeroed(&mut sc.tmp, r * c);
        matmul_forward(t, &la.atty, self.p(&w.proj_w), self.p(&w.proj_b), c, c);
        residual_forward(zeroed(&mut la.res2, r * c), x, t);
        self.norm_forward(&mut sc.ln, &mut la.ln2_mean, &mut la.ln2_rstd, &la.res2, &w.ln2_w, &w.ln2_b);
        matmul_forward(zeroed(&mut la.fch, r * fcc), &sc.ln, self.p(&w.fc_w), self.p(&w.fc_b), c, fcc);
        self.activation(&mut sc.act, &la.fch);
        matmul_forward(t, &sc.act, self.p(&w.fcproj_w), self.p(&w.fcproj_b), m, c);
        residual_forward(out, &la.res2, t);
    }

    /// The backward of one block: `dres` (R, C) holds ∂/∂out on entry and
    /// ∂/∂x on exit; parameter gradients accumulate into `grads`.
    /// `attend_back(dqkv, datty, la)` fills ∂/∂(rotated q|k|v rows).
    #[allow(clippy::too_many_arguments)]
    pub fn block_backward(
        &self,
        w: &LayerViews,
        la: &LayerActs,
        x: &[f32],
        dres: &mut [f32],
        grads: &mut [f32],
        pos: &[usize],
        sc: &mut BlockScratch,
        attend_back: impl FnOnce(&mut [f32], &[f32], &LayerActs),
    ) {
        let cfg = self.cfg;
        let (c, m) = (cfg.channels, cfg.mlp);
        let (qkvc, fcc) = (cfg.qkv_channels(), cfg.fc_channels());
        let r = x.len() / c;
        let [s1, s3, s4, s5] = &mut sc.grads;
        let [mean, rstd] = &mut sc.stats;
        self.activation(&mut sc.act, &la.fch);
        let dh = zeroed(s3, r * m);
        {
            let (gw, gb) = pair(grads, &w.fcproj_w, &w.fcproj_b);
            matmul_backward(dh, gw, gb, dres, &sc.act, self.p(&w.fcproj_w), m, c);
        }
        let dfch = zeroed(s4, r * fcc);
        match cfg.family {
            Family::Gpt => gelu_backward(dfch, &la.fch, dh),
            Family::Llama => swiglu_backward(dfch, &la.fch, dh, m),
        }
        self.norm_forward(&mut sc.ln, mean, rstd, &la.res2, &w.ln2_w, &w.ln2_b);
        let dln = zeroed(s1, r * c);
        {
            let (gw, gb) = pair(grads, &w.fc_w, &w.fc_b);
            matmul_backward(dln, gw, gb, dfch, &sc.ln, self.p(&w.fc_w), c, fcc);
        }
        self.norm_backward(dres, grads, dln, &la.res2, &w.ln2_w, &w.ln2_b, &la.ln2_mean, &la.ln2_rstd);
        let datty = zeroed(s3, r * c);
        {
            let (gw, gb) = pair(grads, &w.proj_w, &w.proj_b);
            matmul_backward(datty, gw, gb, dres, &la.atty, self.p(&w.proj_w), c, c);
        }
        let dqkv = zeroed(s5, r * qkvc);
        attend_back(dqkv, datty, la);
        self.rotate(dqkv, pos, true);
        self.norm_forward(&mut sc.ln, mean, rstd, x, &w.ln1_w, &w.ln1_b);
        let dln = zeroed(s1, r * c);
        {
            let (gw, gb) = pair(grads, &w.qkv_w, &w.qkv_b);
            matmul_backward(dln, gw, gb, dqkv, &sc.ln, self.p(&w.qkv_w), c, qkvc);
        }
        self.norm_backward(dres, grads, dln, x, &w.ln1_w, &w.ln1_b, &la.ln1_mean, &la.ln1_rstd);
    }
}

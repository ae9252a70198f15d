//! The GPT's training forward and backward over a shared-prompt row layout
//! (see [`super::attention`]): every row-wise layer runs once per row, the
//! prompt rows once per group, and attention joins them.

use wapo_core::rl::ModelConfig;

use super::attention::{Heads, Rows};
use super::attention_train::{attention_backward, attention_forward};
use super::kernels::*;
use wapo_core::rl::layout::{LayerViews, Layout};

/// What the backward of one block needs, saved by the forward.
#[derive(Default)]
pub struct LayerActs {
    pub ln1: Vec<f32>,      // (R, C)
    pub ln1_mean: Vec<f32>, // (R)
    pub ln1_rstd: Vec<f32>, // (R)
    pub qkv: Vec<f32>,      // (R, 3C)
    pub probs: Vec<f32>,    // (R, H, P+S)
    pub atty: Vec<f32>,     // (R, C)
    pub res2: Vec<f32>,     // (R, C) residual after attention
    pub ln2: Vec<f32>,      // (R, C)
    pub ln2_mean: Vec<f32>, // (R)
    pub ln2_rstd: Vec<f32>, // (R)
    pub fch: Vec<f32>,      // (R, M)
    pub fch_gelu: Vec<f32>, // (R, M)
}

/// Saved activations of the last forward, and backward scratch.
#[derive(Default)]
pub struct Acts {
    pub rows: Option<Rows>,
    /// T, completion tokens scored per sample.
    pub t: usize,
    pub tokens: Vec<u32>,     // (R)
    pub pos: Vec<usize>,      // (R)
    pub resid: Vec<Vec<f32>>, // L+1 × (R, C)
    pub layers: Vec<LayerActs>,
    pub lnf: Vec<f32>, // (R, C)
    pub lnf_mean: Vec<f32>,
    pub lnf_rstd: Vec<f32>,
    /// (N·T) the row whose output scores completion token t of sample n.
    pub sel: Vec<usize>,
    pub lnf_sel: Vec<f32>, // (N·T, C)
    pub logits: Vec<f32>,  // (N·T, V)
    scratch: [Vec<f32>; 6],
}

/// `v` resized to `n` zeros, reusing its allocation.
pub fn zeroed(v: &mut Vec<f32>, n: usize) -> &mut [f32] {
    v.clear();
    v.resize(n, 0.0);
    v
}

/// Disjoint mutable views of two ranges of `x` (`a` before `b`).
fn pair<'a>(
    x: &'a mut [f32],
    a: &std::ops::Range<usize>,
    b: &std::ops::Range<usize>,
) -> (&'a mut [f32], &'a mut [f32]) {
    let (lo, hi) = x.split_at_mut(b.start);
    (&mut lo[a.clone()], &mut hi[..b.len()])
}

/// Training forward. `prompts` (B, P); `completions` (N, T) with N = B·G.
/// Scores completion token t of sample n with the output at position
/// P−1+t; fills `acts` (logits (N·T, V) included).
#[allow(clippy::too_many_arguments)]
pub fn forward(
    acts: &mut Acts,
    cfg: &ModelConfig,
    lay: &Layout,
    params: &[f32],
    prompts: &[u32],
    completions: &[u32],
    rows: Rows,
    t: usize,
) {
    let (c, m, v) = (cfg.channels, cfg.mlp, cfg.vocab);
    let hd = Heads { c, h: cfg.heads };
    let r = rows.total();
    acts.rows = Some(rows);
    acts.t = t;
    acts.tokens.clear();
    acts.pos.clear();
    acts.tokens.extend_from_slice(prompts);
    acts.pos.extend((0..rows.b).flat_map(|_| 0..rows.p));
    for n in 0..rows.n() {
        acts.tokens.extend_from_slice(&completions[n * t..n * t + rows.s]);
        acts.pos.extend(rows.p..rows.p + rows.s);
    }
    acts.resid.resize_with(cfg.layers + 1, Vec::new);
    acts.layers.resize_with(cfg.layers, LayerActs::default);
    let (wte, wpe) = (&params[lay.wte.clone()], &params[lay.wpe.clone()]);
    encoder_forward(zeroed(&mut acts.resid[0], r * c), &acts.tokens, &acts.pos, wte, wpe);
    for l in 0..cfg.layers {
        let (done, rest) = acts.resid.split_at_mut(l + 1);
        let x = &done[l];
        let la = &mut acts.layers[l];
        let w = &lay.layers[l];
        let p = |rg: &std::ops::Range<usize>| &params[rg.clone()];
        layernorm_forward(
            zeroed(&mut la.ln1, r * c),
            zeroed(&mut la.ln1_mean, r),
            zeroed(&mut la.ln1_rstd, r),
            x,
            p(&w.ln1_w),
            p(&w.ln1_b),
        );
        matmul_forward(zeroed(&mut la.qkv, r * 3 * c), &la.ln1, p(&w.qkv_w), p(&w.qkv_b), c, 3 * c);
        attention_forward(
            zeroed(&mut la.atty, r * c),
            zeroed(&mut la.probs, r * cfg.heads * rows.keys()),
            &la.qkv,
            rows,
            hd,
        );
        let tmp = zeroed(&mut acts.scratch[0], r * c);
        matmul_forward(tmp, &la.atty, p(&w.proj_w), p(&w.proj_b), c, c);
        residual_forward(zeroed(&mut la.res2, r * c), x, tmp);
        layernorm_forward(
            zeroed(&mut la.ln2, r * c),
            zeroed(&mut la.ln2_mean, r),
            zeroed(&mut la.ln2_rstd, r),
            &la.res2,
            p(&w.ln2_w),
            p(&w.ln2_b),
        );
        matmul_forward(zeroed(&mut la.fch, r * m), &la.ln2, p(&w.fc_w), p(&w.fc_b), c, m);
        gelu_forward(zeroed(&mut la.fch_gelu, r * m), &la.fch);
        matmul_forward(tmp, &la.fch_gelu, p(&w.fcproj_w), p(&w.fcproj_b), m, c);
        residual_forward(zeroed(&mut rest[0], r * c), &la.res2, tmp);
    }
    let last = &acts.resid[cfg.layers];
    layernorm_forward(
        zeroed(&mut acts.lnf, r * c),
        zeroed(&mut acts.lnf_mean, r),
        zeroed(&mut acts.lnf_rstd, r),
        last,
        &params[lay.lnf_w.clone()],
        &params[lay.lnf_b.clone()],
    );
    acts.sel.clear();
    for n in 0..rows.n() {
        let b = n / rows.g;
        acts.sel.push(b * rows.p + rows.p - 1);
        acts.sel.extend((0..t - 1).map(|s| rows.prefix_rows() + n * rows.s + s));
    }
    let ns = acts.sel.len();
    let lnf_sel = zeroed(&mut acts.lnf_sel, ns * c);
    for (i, &row) in acts.sel.iter().enumerate() {
        lnf_sel[i * c..(i + 1) * c].copy_from_slice(&acts.lnf[row * c..(row + 1) * c]);
    }
    let zero_bias = vec![0.0f32; v];
    matmul_forward(zeroed(&mut acts.logits, ns * v), &acts.lnf_sel, &params[lay.lm_head.clone()], &zero_bias, c, v);
}

/// Accumulates into `grads` the gradient of the last forward given
/// ∂loss/∂logits (N·T, V).
pub fn backward(acts: &mut Acts, cfg: &ModelConfig, lay: &Layout, params: &[f32], grads: &mut [f32], dlogits: &[f32]) {
    let Some(rows) = acts.rows else { return };
    let (c, m, v) = (cfg.channels, cfg.mlp, cfg.vocab);
    let hd = Heads { c, h: cfg.heads };
    let r = rows.total();
    let ns = acts.sel.len();
    let [s0, s1, s2, s3, s4, s5] = &mut acts.scratch;
    let dsel = zeroed(s0, ns * c);
    let mut dbias = vec![0.0f32; v];
    matmul_backward(
        dsel,
        &mut grads[lay.lm_head.clone()],
        &mut dbias,
        dlogits,
        &acts.lnf_sel,
        &params[lay.lm_head.clone()],
        c,
        v,
    );
    let dlnf = zeroed(s1, r * c);
    for (i, &row) in acts.sel.iter().enumerate() {
        axpy(&mut dlnf[row * c..(row + 1) * c], 1.0, &dsel[i * c..(i + 1) * c]);
    }
    let dres = zeroed(s2, r * c);
    {
        let (gw, gb) = pair(grads, &lay.lnf_w, &lay.lnf_b);
        layernorm_backward(
            dres,
            gw,
            gb,
            dlnf,
            &acts.resid[cfg.layers],
            &params[lay.lnf_w.clone()],
            &acts.lnf_mean,
            &acts.lnf_rstd,
        );
    }
    for l in (0..cfg.layers).rev() {
        let la = &acts.layers[l];
        let w: &LayerViews = &lay.layers[l];
        let p = |rg: &std::ops::Range<usize>| &params[rg.clone()];
        let dh = zeroed(s3, r * m);
        {
            let (gw, gb) = pair(grads, &w.fcproj_w, &w.fcproj_b);
            matmul_backward(dh, gw, gb, dres, &la.fch_gelu, p(&w.fcproj_w), m, c);
        }
        let dfch = zeroed(s4, r * m);
        gelu_backward(dfch, &la.fch, dh);
        let dln = zeroed(s1, r * c);
        {
            let (gw, gb) = pair(grads, &w.fc_w, &w.fc_b);
            matmul_backward(dln, gw, gb, dfch, &la.ln2, p(&w.fc_w), c, m);
        }
        {
            let (gw, gb) = pair(grads, &w.ln2_w, &w.ln2_b);
            layernorm_backward(dres, gw, gb, dln, &la.res2, p(&w.ln2_w), &la.ln2_mean, &la.ln2_rstd);
        }
        let datty = zeroed(s3, r * c);
        {
            let (gw, gb) = pair(grads, &w.proj_w, &w.proj_b);
            matmul_backward(datty, gw, gb, dres, &la.atty, p(&w.proj_w), c, c);
        }
        let dqkv = zeroed(s5, r * 3 * c);
        attention_backward(dqkv, datty, &la.probs, &la.qkv, rows, hd);
        let dln = zeroed(s1, r * c);
        {
            let (gw, gb) = pair(grads, &w.qkv_w, &w.qkv_b);
            matmul_backward(dln, gw, gb, dqkv, &la.ln1, p(&w.qkv_w), c, 3 * c);
        }
        {
            let (gw, gb) = pair(grads, &w.ln1_w, &w.ln1_b);
            layernorm_backward(dres, gw, gb, dln, &acts.resid[l], p(&w.ln1_w), &la.ln1_mean, &la.ln1_rstd);
        }
    }
    let (gte, gpe) = pair(grads, &lay.wte, &lay.wpe);
    encoder_backward(gte, gpe, dres, &acts.tokens, &acts.pos);
}

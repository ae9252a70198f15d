//! AdamW with global gradient-norm clipping over the flat parameter block:
//! a deterministic sum of squares (the norm) and the elementwise update.

#[cfg(test)]
mod tests;

use wapo_core::rl::OptimConfig;
use wapo_core::{Error, Result};

use super::rows::{batches, distinct, groups, need};
use super::{View, alloc};
use crate::launch::{Kernel, dispatch, idx32, kernel_params};

const SOURCE: &str = concat!(include_str!("../common.wgsl"), include_str!("adamw.wgsl"));

kernel_params! {
    /// P of adamw.wgsl, shared by its entry points; a shift is the index of
    /// a view's first element in the binding of the same name. The norm's
    /// stages read n, x and out only.
    struct AdamwParams {
        n: u32,
        /// The parameters, in the update.
        out: u32,
        /// The gradients, in the update.
        x: u32,
        m: u32,
        v: u32,
        decay: u32,
        lr: f32,
        beta1: f32,
        beta2: f32,
        eps: f32,
        weight_decay: f32,
        bc1: f32,
        bc2_sqrt: f32,
        /// The clipping factor of the gradients.
        scale: f32,
    }
}

/// Elements per workgroup of the first stage of [`sum_squares`] (CHUNK in
/// the shader). Batches start on chunk boundaries, so the order of the sum
/// does not depend on the adapter's binding limit.
const CHUNK: u64 = 4096;

fn kernel(name: &'static str, entry: &'static str) -> Kernel {
    Kernel { name, source: SOURCE, entry, constants: vec![] }
}

/// out[0] = Σ x² over the view, reduced in a fixed order (two stages:
/// per-workgroup partial sums of 4096 elements to a scratch tensor, then one
/// workgroup sums them in order). Deterministic; f32 pairwise-style
/// accumulation (relative error ~1e-6 against an f64 sum). `out` may not
/// share a tensor with `x`.
pub fn sum_squares(out: View<'_>, x: View<'_>) -> Result<()> {
    need(&out, 1, "out")?;
    distinct(&[(&out, "out")], &[(&x, "x")])?;
    let ctx = x.t.ctx();
    let parts = x.len.div_ceil(CHUNK);
    let scratch = alloc(&x.t.store.dev, parts.max(1) as usize)?;
    let k1 = kernel("gpt_adamw_partial_squares", "partial_squares");
    for (e0, n) in batches(ctx, x.len, 1, CHUNK)? {
        let (wx, sx) = x.sub(e0, n).bind(0, "x")?;
        let (ws, ss) = View::at(&scratch, e0 / CHUNK, n.div_ceil(CHUNK)).bind(7, "scratch")?;
        let p = AdamwParams { n: idx32(n)?, x: sx, out: ss, ..Default::default() };
        dispatch(ctx, &k1, &[wx, ws], &p, n.div_ceil(CHUNK))?;
    }
    let k2 = kernel("gpt_adamw_sum_partials", "sum_partials");
    let (ws, ss) = View::at(&scratch, 0, parts).bind(0, "scratch")?;
    let (wo, so) = out.sub(0, 1).bind(7, "out")?;
    let p = AdamwParams { n: idx32(parts)?, x: ss, out: so, ..Default::default() };
    dispatch(ctx, &k2, &[ws, wo], &p, 1)
}

/// The host-computed constants of one AdamW step (as in optim.rs:
/// bc1 = 1 − β1^t, bc2_sqrt = sqrt(1 − β2^t), scale = the clipping factor).
#[derive(Clone, Copy, Debug)]
pub struct AdamStep {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    pub bc1: f32,
    pub bc2_sqrt: f32,
    pub scale: f32,
}

impl AdamStep {
    /// The constants of step `t` (1 for the first step) given the gradient
    /// norm before clipping, computed exactly as the CPU optimizer does (f64,
    /// then rounded to f32).
    pub fn new(cfg: &OptimConfig, t: u64, norm: f64) -> AdamStep {
        let scale =
            if cfg.grad_clip > 0.0 && norm > cfg.grad_clip { (cfg.grad_clip / (norm + 1e-6)) as f32 } else { 1.0 };
        let t = t.min(i32::MAX as u64) as i32;
        AdamStep {
            lr: cfg.lr as f32,
            beta1: cfg.beta1 as f32,
            beta2: cfg.beta2 as f32,
            eps: cfg.eps as f32,
            weight_decay: cfg.weight_decay as f32,
            bc1: (1.0 - cfg.beta1.powi(t)) as f32,
            bc2_sqrt: (1.0 - cfg.beta2.powi(t)).sqrt() as f32,
            scale,
        }
    }
}

/// In place over the views (same length): g = grads·scale;
/// m = β1 m + (1−β1) g; v = β2 v + (1−β2) g²; params −= lr·wd·params where
/// decay[i] ≠ 0 (u32 mask); params −= lr/bc1 · m / (sqrt(v)/bc2_sqrt + eps).
/// Exactly optim.rs's order of operations. `params`, `m` and `v` may be
/// views of one tensor (disjoint ranges); `grads` and `decay` may not share a
/// tensor with them.
pub fn adamw(params: View<'_>, grads: View<'_>, m: View<'_>, v: View<'_>, decay: View<'_>, s: AdamStep) -> Result<()> {
    let n = params.len;
    for (view, field) in [(&grads, "grads"), (&m, "m"), (&v, "v"), (&decay, "decay")] {
        if view.len != n {
            return Err(Error::Backend(format!("adamw: {field} has {} elements, params {n}", view.len)));
        }
    }
    if n == 0 {
        return Ok(());
    }
    distinct(&[(&params, "params"), (&m, "m"), (&v, "v")], &[(&grads, "grads"), (&decay, "decay")])?;
    let ctx = params.t.ctx();
    let k = kernel("gpt_adamw_update", "adamw");
    for (e0, len) in batches(ctx, n, 1, 1)? {
        let (wg, sg) = grads.sub(e0, len).bind(0, "grads")?;
        let (wd, sd) = decay.sub(e0, len).bind(1, "decay")?;
        let (wm, sm) = m.sub(e0, len).bind(5, "m")?;
        let (wv, sv) = v.sub(e0, len).bind(6, "v")?;
        let (wp, sp) = params.sub(e0, len).bind(7, "params")?;
        let p = AdamwParams {
            n: idx32(len)?,
            out: sp,
            x: sg,
            m: sm,
            v: sv,
            decay: sd,
            lr: s.lr,
            beta1: s.beta1,
            beta2: s.beta2,
            eps: s.eps,
            weight_decay: s.weight_decay,
            bc1: s.bc1,
            bc2_sqrt: s.bc2_sqrt,
            scale: s.scale,
        };
        dispatch(ctx, &k, &[wg, wd, wm, wv, wp], &p, groups(len))?;
    }
    Ok(())
}

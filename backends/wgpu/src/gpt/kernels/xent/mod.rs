//! Softmax cross-entropy of the SFT loss: per-row loss and the logits
//! gradient in one pass.

#[cfg(test)]
mod tests;

use wapo_core::{Error, Result};

use super::View;
use super::rows::{batches, distinct, need};
use crate::launch::{Kernel, dispatch, idx32};

const SOURCE: &str = concat!(include_str!("../../../kernels/common.wgsl"), include_str!("xent.wgsl"));

/// Per row r of logits (rows, v): loss[r] = logsumexp(z_r) − z_r[y_r];
/// dlogits row r = (softmax(z_r) − onehot(y_r))·scale. targets u32 (rows).
/// Stable (max-shifted); −inf logits get probability 0. A target ≥ v gives a
/// NaN loss (and no one-hot term). `dlogits` and `loss` may be views of one
/// tensor, but neither may share a tensor with `logits` or `targets`.
pub fn softmax_xent(
    dlogits: View<'_>,
    loss: View<'_>,
    logits: View<'_>,
    targets: View<'_>,
    rows: usize,
    v: usize,
    scale: f32,
) -> Result<()> {
    let (rows, v) = (rows as u64, v as u64);
    if rows == 0 {
        return Ok(());
    }
    if v == 0 {
        return Err(Error::Backend("softmax_xent: v (vocabulary) is 0".into()));
    }
    need(&dlogits, rows * v, "dlogits")?;
    need(&loss, rows, "loss")?;
    need(&logits, rows * v, "logits")?;
    need(&targets, rows, "targets")?;
    distinct(&[(&dlogits, "dlogits"), (&loss, "loss")], &[(&logits, "logits"), (&targets, "targets")])?;
    let ctx = logits.t.ctx();
    let k = Kernel { name: "gpt_xent_softmax", source: SOURCE, entry: "softmax_xent", constants: vec![] };
    for (r0, n) in batches(ctx, rows, v, 1)? {
        let (wz, sz) = logits.sub(r0 * v, n * v).bind(0, "logits")?;
        let (wy, sy) = targets.sub(r0, n).bind(1, "targets")?;
        let (wl, sl) = loss.sub(r0, n).bind(6, "loss")?;
        let (wd, sd) = dlogits.sub(r0 * v, n * v).bind(7, "dlogits")?;
        let p = [idx32(n)?, idx32(v)?, sd, sl, sz, sy, scale.to_bits()];
        dispatch(ctx, &k, &[wz, wy, wl, wd], &p, n)?;
    }
    Ok(())
}

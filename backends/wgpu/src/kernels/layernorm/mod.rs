//! Layer normalisation of the GPT (ε = 1e-5, biased variance): forward
//! saving the row statistics, and a backward that accumulates the input
//! gradient and sums the weight and bias gradients deterministically.

#[cfg(test)]
mod tests;

use wapo_core::Result;

use super::rows::{batches, distinct, groups, need};
use super::{View, alloc};
use crate::launch::{Kernel, dispatch, idx32, kernel_params};

const SOURCE: &str = concat!(include_str!("../common.wgsl"), include_str!("layernorm.wgsl"));

kernel_params! {
    /// P of layernorm.wgsl, shared by its entry points. The shifts are named
    /// after the bindings, which hold different views per entry point (see
    /// the shader's comments); an entry point leaves the others 0.
    struct LayernormParams {
        rows: u32,
        c: u32,
        /// backward_partials: workgroups per chunk of rows, ⌈c / 256⌉.
        blocks: u32,
        /// backward_partials: the chunk of the batch's first row, so that
        /// each batch writes its own scratch rows.
        first_chunk: u32,
        /// backward_sum: chunks of partial sums to add up.
        chunks: u32,
        inp: u32,
        w: u32,
        src: u32,
        mean_in: u32,
        rstd_in: u32,
        out: u32,
        out_a: u32,
        out_b: u32,
    }
}

/// Rows per partial sum of dw and db (`CHUNK` in layernorm.wgsl).
const LN_CHUNK: u64 = 256;

fn kernel(name: &'static str, entry: &'static str) -> Kernel {
    Kernel { name, source: SOURCE, entry, constants: vec![] }
}

/// out (rows, c) = (inp − mean)·rstd·w + b per row, with w and b (c); writes
/// mean and rstd (rows), rstd = 1/√(var + 1e-5). Outputs may share a tensor
/// with each other, not with an input.
#[allow(clippy::too_many_arguments)]
pub fn layernorm_forward(
    out: View<'_>,
    mean: View<'_>,
    rstd: View<'_>,
    inp: View<'_>,
    w: View<'_>,
    b: View<'_>,
    rows: usize,
    c: usize,
) -> Result<()> {
    let (rows, c) = (rows as u64, c as u64);
    if rows == 0 || c == 0 {
        return Ok(());
    }
    need(&out, rows * c, "out")?;
    need(&mean, rows, "mean")?;
    need(&rstd, rows, "rstd")?;
    need(&inp, rows * c, "inp")?;
    need(&w, c, "w")?;
    need(&b, c, "b")?;
    distinct(&[(&out, "out"), (&mean, "mean"), (&rstd, "rstd")], &[(&inp, "inp"), (&w, "w"), (&b, "b")])?;
    let ctx = out.t.ctx();
    let k = kernel("gpt_layernorm_forward", "forward");
    for (r0, n) in batches(ctx, rows, c, 1)? {
        let (wi, si) = inp.sub(r0 * c, n * c).bind(0, "inp")?;
        let (ww, sw) = w.bind(1, "w")?;
        let (wb, sb) = b.bind(2, "b")?;
        let (wo, so) = out.sub(r0 * c, n * c).bind(5, "out")?;
        let (wm, sm) = mean.sub(r0, n).bind(6, "mean")?;
        let (wr, sr) = rstd.sub(r0, n).bind(7, "rstd")?;
        let p = LayernormParams {
            rows: idx32(n)?,
            c: idx32(c)?,
            inp: si,
            w: sw,
            src: sb,
            out: so,
            out_a: sm,
            out_b: sr,
            ..Default::default()
        };
        dispatch(ctx, &k, &[wi, ww, wb, wo, wm, wr], &p, n)?;
    }
    Ok(())
}

/// dinp (rows, c) += ∂/∂inp (accumulates: dinp is the residual gradient),
/// dw (c) += Σ_rows dout·norm, db (c) += Σ_rows dout, with norm =
/// (inp − mean)·rstd. The row sums are taken over fixed chunks of rows, then
/// over the chunks in order: the result does not depend on the device. dw
/// and db may be two views of one gradient block; no output may share a
/// tensor with an input.
#[allow(clippy::too_many_arguments)]
pub fn layernorm_backward(
    dinp: View<'_>,
    dw: View<'_>,
    db: View<'_>,
    dout: View<'_>,
    inp: View<'_>,
    w: View<'_>,
    mean: View<'_>,
    rstd: View<'_>,
    rows: usize,
    c: usize,
) -> Result<()> {
    let (rows, c) = (rows as u64, c as u64);
    if rows == 0 || c == 0 {
        return Ok(());
    }
    need(&dinp, rows * c, "dinp")?;
    need(&dw, c, "dw")?;
    need(&db, c, "db")?;
    need(&dout, rows * c, "dout")?;
    need(&inp, rows * c, "inp")?;
    need(&w, c, "w")?;
    need(&mean, rows, "mean")?;
    need(&rstd, rows, "rstd")?;
    let reads = [(&dout, "dout"), (&inp, "inp"), (&w, "w"), (&mean, "mean"), (&rstd, "rstd")];
    distinct(&[(&dinp, "dinp"), (&dw, "dw"), (&db, "db")], &reads)?;
    let ctx = dinp.t.ctx();
    let chunks = rows.div_ceil(LN_CHUNK);
    let scratch = alloc(&dinp.t.store.dev, (chunks * 2 * c) as usize)?;
    let scratch = View::all(&scratch);
    let (k_inp, k_part) = (
        kernel("gpt_layernorm_backward_inp", "backward_inp"),
        kernel("gpt_layernorm_backward_partials", "backward_partials"),
    );
    let blocks = c.div_ceil(256);
    for (r0, n) in batches(ctx, rows, c, LN_CHUNK)? {
        let (wi, si) = inp.sub(r0 * c, n * c).bind(0, "inp")?;
        let (ww, sw) = w.bind(1, "w")?;
        let (wd, sd) = dout.sub(r0 * c, n * c).bind(2, "dout")?;
        let (wm, sm) = mean.sub(r0, n).bind(3, "mean")?;
        let (wr, sr) = rstd.sub(r0, n).bind(4, "rstd")?;
        let (wo, so) = dinp.sub(r0 * c, n * c).bind(5, "dinp")?;
        let p = LayernormParams {
            rows: idx32(n)?,
            c: idx32(c)?,
            inp: si,
            w: sw,
            src: sd,
            out: so,
            mean_in: sm,
            rstd_in: sr,
            ..Default::default()
        };
        dispatch(ctx, &k_inp, &[wi, ww, wd, wm, wr, wo], &p, n)?;

        let (wi, si) = inp.sub(r0 * c, n * c).bind(0, "inp")?;
        let (wd, sd) = dout.sub(r0 * c, n * c).bind(2, "dout")?;
        let (wm, sm) = mean.sub(r0, n).bind(3, "mean")?;
        let (wr, sr) = rstd.sub(r0, n).bind(4, "rstd")?;
        let (ws, ss) = scratch.bind(5, "scratch")?;
        let p = LayernormParams {
            rows: idx32(n)?,
            c: idx32(c)?,
            blocks: idx32(blocks)?,
            first_chunk: idx32(r0 / LN_CHUNK)?,
            inp: si,
            src: sd,
            out: ss,
            mean_in: sm,
            rstd_in: sr,
            ..Default::default()
        };
        dispatch(ctx, &k_part, &[wi, wd, wm, wr, ws], &p, n.div_ceil(LN_CHUNK) * blocks)?;
    }
    let k_sum = kernel("gpt_layernorm_backward_sum", "backward_sum");
    let (ws, ss) = scratch.bind(0, "scratch")?;
    let (wa, sa) = dw.bind(6, "dw")?;
    let (wb, sb) = db.bind(7, "db")?;
    let p =
        LayernormParams { c: idx32(c)?, chunks: idx32(chunks)?, inp: ss, out_a: sa, out_b: sb, ..Default::default() };
    dispatch(ctx, &k_sum, &[ws, wa, wb], &p, groups(2 * c))
}

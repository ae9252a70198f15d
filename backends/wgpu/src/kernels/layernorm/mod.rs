//! Layer normalisation of the GPT (ε = 1e-5, biased variance): forward
//! saving the row statistics, and a backward that accumulates the input
//! gradient and sums the weight and bias gradients deterministically.

#[cfg(test)]
mod tests;

use wapo_core::Result;

use super::View;
use super::chunks::{Chunked, Combine};
use super::rows::{batches, distinct, need};
use crate::launch::{Kernel, dispatch, idx32, kernel_params};

const SOURCE: &str =
    concat!(include_str!("../common.wgsl"), include_str!("../chunks/cell.wgsl"), include_str!("layernorm.wgsl"));

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
        /// backward_partials: rows per chunk.
        chunk_rows: u32,
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

/// Rows per partial sum of dw and db.
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
    // Chunk q's partials: Σ dout·norm in columns 0..c, Σ dout in c..2c.
    let sums = Chunked::new(&dinp.t.store.dev, rows, LN_CHUNK, 2 * c)?;
    let scratch = sums.partials();
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
        let (first_chunk, wgs) = sums.grid(r0, n, blocks)?;
        let p = LayernormParams {
            rows: idx32(n)?,
            c: idx32(c)?,
            blocks: idx32(blocks)?,
            first_chunk,
            chunk_rows: idx32(LN_CHUNK)?,
            inp: si,
            src: sd,
            out: ss,
            mean_in: sm,
            rstd_in: sr,
            ..Default::default()
        };
        dispatch(ctx, &k_part, &[wi, wd, wm, wr, ws], &p, wgs)?;
    }
    sums.finish(dw.sub(0, c), 0, Combine::AddEach, None)?;
    sums.finish(db.sub(0, c), c, Combine::AddEach, None)
}

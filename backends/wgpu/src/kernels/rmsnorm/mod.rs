//! RMS normalisation of the llama family: out = x·rstd·w with rstd =
//! 1/√(mean(x²) + ε), forward saving rstd per row, and a backward that
//! accumulates the input gradient and sums the gain gradient
//! deterministically (fixed row chunks, then the chunks in order).

#[cfg(test)]
mod tests;

use wapo_core::Result;

use super::View;
use super::chunks::{Chunked, Combine};
use super::rows::{batches, distinct, need};
use crate::launch::{Kernel, dispatch, idx32, kernel_params};

const SOURCE: &str =
    concat!(include_str!("../common.wgsl"), include_str!("../chunks/cell.wgsl"), include_str!("rmsnorm.wgsl"));

/// Rows per partial sum of dw.
const RMS_CHUNK: u64 = 256;

kernel_params! {
    /// P of rmsnorm.wgsl: the views' shifts and the geometry.
    struct RmsNormParams {
        rows: u32,
        c: u32,
        inp: u32,
        w: u32,
        dout: u32,
        out: u32,
        rstd: u32,
        eps: f32,
        /// backward_partials: column blocks of 256, the batch's first chunk
        /// and the rows per chunk.
        blocks: u32,
        chunk0: u32,
        chunk_rows: u32,
    }
}

fn kernel(name: &'static str, entry: &'static str) -> Kernel {
    Kernel { name, source: SOURCE, entry, constants: vec![] }
}

/// out (rows, c) = inp·rstd·w per row with w (c); writes rstd (rows).
/// Outputs may share a tensor with each other, not with an input.
#[allow(clippy::too_many_arguments)]
pub fn rmsnorm_forward(
    out: View<'_>,
    rstd: View<'_>,
    inp: View<'_>,
    w: View<'_>,
    rows: usize,
    c: usize,
    eps: f32,
) -> Result<()> {
    let (rows, c) = (rows as u64, c as u64);
    if rows == 0 || c == 0 {
        return Ok(());
    }
    need(&out, rows * c, "out")?;
    need(&rstd, rows, "rstd")?;
    need(&inp, rows * c, "inp")?;
    need(&w, c, "w")?;
    distinct(&[(&out, "out"), (&rstd, "rstd")], &[(&inp, "inp"), (&w, "w")])?;
    let ctx = out.t.ctx();
    let k = kernel("llama_rmsnorm_forward", "forward");
    for (r0, n) in batches(ctx, rows, c, 1)? {
        let (wi, si) = inp.sub(r0 * c, n * c).bind(0, "inp")?;
        let (ww, sw) = w.bind(1, "w")?;
        let (wo, so) = out.sub(r0 * c, n * c).bind(5, "out")?;
        let (wr, sr) = rstd.sub(r0, n).bind(6, "rstd")?;
        let p = RmsNormParams {
            rows: idx32(n)?,
            c: idx32(c)?,
            inp: si,
            w: sw,
            out: so,
            rstd: sr,
            eps,
            ..Default::default()
        };
        dispatch(ctx, &k, &[wi, ww, wo, wr], &p, n)?;
    }
    Ok(())
}

/// dinp (rows, c) += ∂/∂inp (accumulates: dinp is the residual gradient),
/// dw (c) += Σ_rows dout·inp·rstd. No output may share a tensor with an input.
#[allow(clippy::too_many_arguments)]
pub fn rmsnorm_backward(
    dinp: View<'_>,
    dw: View<'_>,
    dout: View<'_>,
    inp: View<'_>,
    w: View<'_>,
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
    need(&dout, rows * c, "dout")?;
    need(&inp, rows * c, "inp")?;
    need(&w, c, "w")?;
    need(&rstd, rows, "rstd")?;
    let reads = [(&dout, "dout"), (&inp, "inp"), (&w, "w"), (&rstd, "rstd")];
    distinct(&[(&dinp, "dinp"), (&dw, "dw")], &reads)?;
    let ctx = dinp.t.ctx();
    let sums = Chunked::new(&dinp.t.store.dev, rows, RMS_CHUNK, c)?;
    let scratch = sums.partials();
    let (k_inp, k_part) = (
        kernel("llama_rmsnorm_backward_inp", "backward_inp"),
        kernel("llama_rmsnorm_backward_partials", "backward_partials"),
    );
    let blocks = c.div_ceil(256);
    for (r0, n) in batches(ctx, rows, c, RMS_CHUNK)? {
        let (wi, si) = inp.sub(r0 * c, n * c).bind(0, "inp")?;
        let (ww, sw) = w.bind(1, "w")?;
        let (wd, sd) = dout.sub(r0 * c, n * c).bind(2, "dout")?;
        let (wr, sr) = rstd.sub(r0, n).bind(4, "rstd")?;
        let (wo, so) = dinp.sub(r0 * c, n * c).bind(5, "dinp")?;
        let base =
            RmsNormParams { rows: idx32(n)?, c: idx32(c)?, inp: si, w: sw, dout: sd, rstd: sr, ..Default::default() };
        dispatch(ctx, &k_inp, &[wi, ww, wd, wr, wo], &RmsNormParams { out: so, ..base }, n)?;

        let (wi, _) = inp.sub(r0 * c, n * c).bind(0, "inp")?;
        let (wd, _) = dout.sub(r0 * c, n * c).bind(2, "dout")?;
        let (wr, _) = rstd.sub(r0, n).bind(4, "rstd")?;
        let (ws, ss) = scratch.bind(5, "scratch")?;
        let (chunk0, wgs) = sums.grid(r0, n, blocks)?;
        let p = RmsNormParams { out: ss, blocks: idx32(blocks)?, chunk0, chunk_rows: idx32(RMS_CHUNK)?, ..base };
        dispatch(ctx, &k_part, &[wi, wd, wr, ws], &p, wgs)?;
    }
    sums.finish(dw.sub(0, c), 0, Combine::AddEach, None)
}

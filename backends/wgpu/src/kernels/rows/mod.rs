//! Row and elementwise data movement of the GPT: fills, sums, row gathers,
//! strided row copies (KV-cache writes) and deterministic scatter-adds of
//! rows by CSR lists built on the host.

mod checks;
#[cfg(test)]
mod tests;

pub(crate) use checks::{batches, distinct, groups, need};

use wapo_core::error::Pos;
use wapo_core::{Error, Result};

use super::{View, upload_u32};
use crate::context::WgpuDevice;
use crate::launch::{Kernel, dispatch, idx32, kernel_params};
use crate::tensor::WgpuTensor;

const SOURCE: &str = concat!(include_str!("../common.wgsl"), include_str!("rows.wgsl"));

kernel_params! {
    /// P of rows.wgsl, shared by its entry points: each reads the fields it
    /// needs and leaves the rest 0. A shift is the index of a view's first
    /// element in the binding of the same name.
    struct RowsParams {
        /// Output elements: one thread each.
        n: u32,
        out: u32,
        x: u32,
        y: u32,
        idx: u32,
        offsets: u32,
        /// Row length.
        c: u32,
        /// Rows x holds (gather): an index at or beyond gives a NaN row.
        x_rows: u32,
        /// copy_rows: elements from one row's start to the next's, in out and x.
        dst_stride: u32,
        src_stride: u32,
        /// fill.
        value: f32,
    }
}

fn kernel(name: &'static str, entry: &'static str) -> Kernel {
    Kernel { name, source: SOURCE, entry, constants: vec![] }
}

/// out = value everywhere in the view.
pub fn fill(out: View<'_>, value: f32) -> Result<()> {
    let ctx = out.t.ctx();
    let k = kernel("gpt_rows_fill", "fill");
    for (e0, n) in batches(ctx, out.len, 1, 1)? {
        let (wo, so) = out.sub(e0, n).bind(7, "out")?;
        let p = RowsParams { n: idx32(n)?, out: so, value, ..Default::default() };
        dispatch(ctx, &k, &[wo], &p, groups(n))?;
    }
    Ok(())
}

/// out = a + b (elementwise, same length). `out` may not share a tensor with
/// `a` or `b`.
pub fn add(out: View<'_>, a: View<'_>, b: View<'_>) -> Result<()> {
    if a.len != out.len || b.len != out.len {
        return Err(Error::Backend(format!("add: out, a, b have {}, {}, {} elements", out.len, a.len, b.len)));
    }
    distinct(&[(&out, "out")], &[(&a, "a"), (&b, "b")])?;
    let ctx = out.t.ctx();
    let k = kernel("gpt_rows_add", "add");
    for (e0, n) in batches(ctx, out.len, 1, 1)? {
        let (wo, so) = out.sub(e0, n).bind(7, "out")?;
        let (wa, sa) = a.sub(e0, n).bind(0, "a")?;
        let (wb, sb) = b.sub(e0, n).bind(1, "b")?;
        let p = RowsParams { n: idx32(n)?, out: so, x: sa, y: sb, ..Default::default() };
        dispatch(ctx, &k, &[wa, wb, wo], &p, groups(n))?;
    }
    Ok(())
}

/// out (k, c) row i = x row idx[i]; idx is u32 (k). x holds `x.len / c`
/// rows; an index beyond them gives a NaN row.
pub fn gather_rows(out: View<'_>, x: View<'_>, idx: View<'_>, k: usize, c: usize) -> Result<()> {
    let (k, c) = (k as u64, c as u64);
    if k == 0 || c == 0 {
        return Ok(());
    }
    need(&out, k * c, "out")?;
    need(&idx, k, "idx")?;
    distinct(&[(&out, "out")], &[(&x, "x"), (&idx, "idx")])?;
    let ctx = out.t.ctx();
    let kern = kernel("gpt_rows_gather", "gather_rows");
    let nx = idx32(x.len / c)?;
    for (r0, n) in batches(ctx, k, c, 1)? {
        let (wx, sx) = x.bind(0, "x")?;
        let (wo, so) = out.sub(r0 * c, n * c).bind(7, "out")?;
        let (wi, si) = idx.sub(r0, n).bind(2, "idx")?;
        let p =
            RowsParams { n: idx32(n * c)?, out: so, x: sx, idx: si, c: idx32(c)?, x_rows: nx, ..Default::default() };
        dispatch(ctx, &kern, &[wx, wi, wo], &p, groups(n * c))?;
    }
    Ok(())
}

/// Copies `rows` rows of `c` elements: dst element (i·dst_stride + j) =
/// src element (i·src_stride + j). (KV-cache writes.) `dst` and `src` must
/// be views of different tensors.
pub fn copy_rows(
    dst: View<'_>,
    dst_stride: usize,
    src: View<'_>,
    src_stride: usize,
    rows: usize,
    c: usize,
) -> Result<()> {
    let (rows, c, ds, ss) = (rows as u64, c as u64, dst_stride as u64, src_stride as u64);
    if rows == 0 || c == 0 {
        return Ok(());
    }
    if ds < c || ss < c {
        return Err(Error::Backend(format!("copy_rows: strides {ds} (dst), {ss} (src) below the row length {c}")));
    }
    need(&dst, (rows - 1) * ds + c, "dst")?;
    need(&src, (rows - 1) * ss + c, "src")?;
    distinct(&[(&dst, "dst")], &[(&src, "src")])?;
    let ctx = dst.t.ctx();
    let k = kernel("gpt_rows_copy", "copy_rows");
    for (r0, n) in batches(ctx, rows, ds.max(ss), 1)? {
        let (wd, sd) = dst.sub(r0 * ds, (n - 1) * ds + c).bind(7, "dst")?;
        let (ws, s0) = src.sub(r0 * ss, (n - 1) * ss + c).bind(0, "src")?;
        let p = RowsParams {
            n: idx32(n * c)?,
            out: sd,
            x: s0,
            c: idx32(c)?,
            dst_stride: idx32(ds)?,
            src_stride: idx32(ss)?,
            ..Default::default()
        };
        dispatch(ctx, &k, &[ws, wd], &p, groups(n * c))?;
    }
    Ok(())
}

/// For each destination d, the source rows whose key is d, in row order
/// (CSR), on the device. Built on the host.
pub struct RowLists {
    /// u32 (dests + 1): the list of d is `rows[offsets[d] .. offsets[d + 1]]`.
    pub offsets: WgpuTensor,
    /// u32 (n): source row indices grouped by destination, ascending in each group.
    pub rows: WgpuTensor,
    /// Number of destinations.
    pub dests: usize,
}

impl RowLists {
    /// keys[r] in 0..dests is the destination of source row r; error
    /// (naming `field` and the row) if a key is ≥ dests.
    pub fn build(dev: &WgpuDevice, keys: &[u32], dests: usize, field: &'static str) -> Result<RowLists> {
        let mut offsets = vec![0u32; dests + 1];
        for (r, &k) in keys.iter().enumerate() {
            if k as usize >= dests {
                return Err(Error::Invalid { field, pos: Pos::at1(r), reason: "index out of range" });
            }
            offsets[k as usize + 1] += 1;
        }
        idx32(keys.len() as u64)?;
        for d in 0..dests {
            offsets[d + 1] += offsets[d];
        }
        let mut next = offsets.clone();
        let mut rows = vec![0u32; keys.len()];
        for (r, &k) in keys.iter().enumerate() {
            let slot = &mut next[k as usize];
            rows[*slot as usize] = r as u32;
            *slot += 1;
        }
        Ok(RowLists { offsets: upload_u32(dev, &offsets)?, rows: upload_u32(dev, &rows)?, dests })
    }

    /// Number of source rows.
    pub fn len(&self) -> usize {
        self.rows.numel() as usize
    }

    /// Whether there are no source rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// out (dests, c) row d += Σ over its list of x (n, c) rows, summed onto the
/// row in list order (deterministic, no atomics). `out` and `x` must be views
/// of different tensors.
pub fn scatter_add_rows(out: View<'_>, x: View<'_>, lists: &RowLists, c: usize) -> Result<()> {
    let (dests, n, c) = (lists.dests as u64, lists.len() as u64, c as u64);
    if n == 0 || c == 0 {
        return Ok(());
    }
    need(&out, dests * c, "out")?;
    need(&x, n * c, "x")?;
    let offsets = View::all(&lists.offsets);
    let list = View::all(&lists.rows);
    distinct(&[(&out, "out")], &[(&x, "x"), (&offsets, "lists.offsets"), (&list, "lists.rows")])?;
    let ctx = out.t.ctx();
    let k = kernel("gpt_rows_scatter_add", "scatter_add_rows");
    for (d0, nd) in batches(ctx, dests, c, 1)? {
        let (wx, sx) = x.bind(0, "x")?;
        let (wl, sl) = list.bind(2, "lists.rows")?;
        let (wf, sf) = offsets.sub(d0, nd + 1).bind(3, "lists.offsets")?;
        let (wo, so) = out.sub(d0 * c, nd * c).bind(7, "out")?;
        let p =
            RowsParams { n: idx32(nd * c)?, out: so, x: sx, idx: sl, offsets: sf, c: idx32(c)?, ..Default::default() };
        dispatch(ctx, &k, &[wx, wl, wf, wo], &p, groups(nd * c))?;
    }
    Ok(())
}

//! `gather_last`: one element per row at a per-row index.

use wapo_core::error::Pos;
use wapo_core::{Error, Result};

use super::index::first_bad_index;
use super::segment_row_chunks;
use crate::launch::{Kernel, dispatch, kernel_params};
use crate::tensor::WgpuTensor;

const SOURCE: &str = concat!(include_str!("../common.wgsl"), include_str!("gather.wgsl"));

kernel_params! {
    /// P of gather.wgsl: one chunk of rows.
    struct GatherParams {
        /// Rows in this chunk.
        rows: u32,
        /// Row length C of x.
        c: u32,
        /// Window indices of the chunk's first x element, index and output.
        x: u32,
        idx: u32,
        out: u32,
    }
}

pub(crate) fn gather_last(x: &WgpuTensor, idx: &WgpuTensor) -> Result<WgpuTensor> {
    x.same_device(idx)?;
    let c = x.shape.last() as u64;
    if idx.shape != x.shape.without_last() {
        return Err(Error::Shape { field: "gather index", expected: x.shape.without_last(), got: idx.shape });
    }
    if let Some(r) = first_bad_index(idx, c as usize)? {
        return Err(Error::Invalid {
            field: "gather index",
            pos: Pos::at1(r),
            reason: "index out of range of the last axis",
        });
    }
    let out = WgpuTensor::empty(&x.store.dev, idx.shape)?;
    let kernel = Kernel { name: "gather", source: SOURCE, entry: "main", constants: vec![] };
    let rows = idx.numel();
    for (r0, r1) in segment_row_chunks(x.ctx(), &[(x, c), (idx, 1), (&out, 1)], rows, c, "gather_last")? {
        let (xw, xs) = x.window_at(0, r0 * c, r1 * c)?;
        let (iw, is) = idx.window_at(1, r0, r1)?;
        let (ow, os) = out.window_at(7, r0, r1)?;
        let p = GatherParams { rows: (r1 - r0) as u32, c: c as u32, x: xs as u32, idx: is as u32, out: os as u32 };
        dispatch(x.ctx(), &kernel, &[xw, iw, ow], &p, (r1 - r0).div_ceil(256))?;
    }
    Ok(out)
}

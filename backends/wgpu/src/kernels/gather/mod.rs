//! `gather_last`: one element per row at a per-row index.

use wapo_core::error::Pos;
use wapo_core::{Error, Result};

use super::index::first_bad_index;
use super::row_chunks;
use crate::launch::{Kernel, dispatch, window};
use crate::tensor::WgpuTensor;

const SOURCE: &str = concat!(include_str!("../common.wgsl"), include_str!("gather.wgsl"));

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
    for (r0, r1) in row_chunks(x.ctx(), rows, c)? {
        let xw = window(0, x.buf(), r0 * c, r1 * c);
        let iw = window(1, idx.buf(), r0, r1);
        let ow = window(7, out.buf(), r0, r1);
        let params =
            [(r1 - r0) as u32, c as u32, (r0 * c - xw.base) as u32, (r0 - iw.base) as u32, (r0 - ow.base) as u32];
        dispatch(x.ctx(), &kernel, &[xw, iw, ow], &params, (r1 - r0).div_ceil(256))?;
    }
    Ok(out)
}

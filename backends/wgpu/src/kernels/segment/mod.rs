//! `segment_sum`: per-group sums of a rank-1 tensor.

use wapo_core::error::Pos;
use wapo_core::{Error, Result, Shape};

use super::index::first_bad_index;
use crate::launch::{Kernel, dispatch, kernel_params, whole};
use crate::tensor::WgpuTensor;

const SOURCE: &str =
    concat!(include_str!("../common.wgsl"), include_str!("../lanes.wgsl"), include_str!("segment.wgsl"));

kernel_params! {
    /// P of segment.wgsl.
    struct SegmentParams {
        /// Rows of x (and of the segment ids).
        rows: u32,
        /// Segments: one workgroup each.
        segments: u32,
    }
}

pub(crate) fn segment_sum(x: &WgpuTensor, seg: &WgpuTensor, n: usize) -> Result<WgpuTensor> {
    x.same_device(seg)?;
    if seg.shape != x.shape || x.shape.rank() != 1 {
        return Err(Error::Shape { field: "segment ids", expected: x.shape, got: seg.shape });
    }
    let ctx = x.ctx();
    if x.numel() * 4 > ctx.max_binding {
        return Err(Error::Backend("segment_sum input exceeds one storage binding".into()));
    }
    if first_bad_index(seg, n)?.is_some() {
        return Err(Error::Invalid { field: "segment ids", pos: Pos::NONE, reason: "segment id out of range" });
    }
    let out = WgpuTensor::empty(&x.store.dev, Shape::d1(n))?;
    let kernel = Kernel { name: "segment_sum", source: SOURCE, entry: "main", constants: vec![] };
    let wins = [whole(0, x.buf()), whole(1, seg.buf()), whole(7, out.buf())];
    let p = SegmentParams { rows: x.numel() as u32, segments: n as u32 };
    dispatch(ctx, &kernel, &wins, &p, n as u64)?;
    Ok(out)
}

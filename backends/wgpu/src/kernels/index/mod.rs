//! Validation of index tensors (tokens, group ids) before a gather: the first
//! bad position comes back in a 4-byte status word.

use wapo_core::{Error, Result};
use wgpu::util::DeviceExt;

use crate::launch::{Kernel, Window, dispatch, kernel_params, whole};
use crate::tensor::WgpuTensor;

const SOURCE: &str = concat!(include_str!("../common.wgsl"), include_str!("index.wgsl"));

kernel_params! {
    /// P of index.wgsl.
    struct IndexParams {
        /// Indices to check.
        n: u32,
        /// Valid indices are below it (compared as floats, as they are held).
        bound: f32,
    }
}

/// `Ok(None)` when every element of `idx` is in `0..bound`, else the first
/// bad position. A tensor once found valid is not checked again.
pub(crate) fn first_bad_index(idx: &WgpuTensor, bound: usize) -> Result<Option<usize>> {
    if idx.indices_checked(bound) || idx.numel() == 0 {
        return Ok(None);
    }
    let ctx = idx.ctx();
    if idx.numel() * 4 > ctx.max_binding {
        return Err(Error::Backend("index tensor exceeds one storage binding".into()));
    }
    let status = ctx.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("index status"),
        contents: bytemuck::cast_slice(&[u32::MAX, 0, 0, 0]),
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
    });
    let kernel = Kernel { name: "index_check", source: SOURCE, entry: "main", constants: vec![] };
    let n = idx.numel();
    let wins: [Window<'_>; 2] = [whole(0, idx.buf()), whole(6, &status)];
    let p = IndexParams { n: n as u32, bound: bound as f32 };
    dispatch(ctx, &kernel, &wins, &p, n.div_ceil(256))?;
    let word = crate::transfer::read_f32(ctx, &status, 1)?[0].to_bits();
    if word == u32::MAX {
        idx.mark_indices_checked(bound);
        Ok(None)
    } else {
        Ok(Some(word as usize))
    }
}

//! Binding windows and dispatch: how a kernel reaches tensors larger than one
//! storage binding and grids larger than 65,535 workgroups per dimension.

use std::sync::Arc;

use wapo_core::{Error, Result};

use crate::context::{BIND_ALIGN, PipelineKey, WgpuContext};

/// A compiled-kernel description: WGSL source (prelude included), entry
/// point and override constants.
pub(crate) struct Kernel {
    pub name: &'static str,
    pub source: &'static str,
    pub entry: &'static str,
    pub constants: Vec<(&'static str, u32)>,
}

/// A slice of a buffer bound to one binding slot: `base` is the element index
/// (in the whole buffer) of the first bound element.
pub(crate) struct Window<'a> {
    pub slot: u32,
    pub buf: &'a wgpu::Buffer,
    pub offset: u64,
    pub size: u64,
    pub base: u64,
}

/// Binds elements `first..end` of `buf` (f32 or u32 elements) to `slot`,
/// starting at the aligned offset at or below `first`.
pub(crate) fn window(slot: u32, buf: &wgpu::Buffer, first: u64, end: u64) -> Window<'_> {
    let offset = first * 4 / BIND_ALIGN * BIND_ALIGN;
    let size = (end.max(first + 1) * 4 - offset).min(buf.size() - offset);
    Window { slot, buf, offset, size, base: offset / 4 }
}

/// The whole buffer bound to `slot`.
pub(crate) fn whole(slot: u32, buf: &wgpu::Buffer) -> Window<'_> {
    Window { slot, buf, offset: 0, size: buf.size(), base: 0 }
}

/// Converts an element index to the u32 the kernels index with.
pub(crate) fn idx32(v: u64) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::Backend(format!("index {v} exceeds the 32-bit indexing of the WGSL kernels")))
}

/// Words of the parameter block a kernel may use: the last two hold the
/// bit patterns of −inf and NaN (common.wgsl).
const KERNEL_WORDS: usize = 14;

/// [`dispatch`] with the kernel's parameters as one `#[repr(C)]` struct of
/// 32-bit fields, which the WGSL side declares as the same struct at
/// binding 15 (at most 14 fields).
pub(crate) fn dispatch_with<P: bytemuck::Pod>(
    ctx: &WgpuContext,
    kernel: &Kernel,
    windows: &[Window<'_>],
    params: &P,
    groups: u64,
) -> Result<()> {
    let words: &[u32] = bytemuck::cast_slice(std::slice::from_ref(params));
    if words.len() > KERNEL_WORDS {
        return Err(Error::Backend(format!(
            "{}: {} parameter words, at most {KERNEL_WORDS}",
            kernel.name,
            words.len()
        )));
    }
    dispatch(ctx, kernel, windows, words, groups)
}

/// Records one dispatch of `groups` workgroups, split over x and y when it
/// exceeds the per-dimension limit (kernels use `wg_index`).
pub(crate) fn dispatch(
    ctx: &WgpuContext,
    kernel: &Kernel,
    windows: &[Window<'_>],
    params: &[u32],
    groups: u64,
) -> Result<()> {
    if groups == 0 {
        return Ok(());
    }
    let key = PipelineKey { name: kernel.name, entry: kernel.entry, constants: kernel.constants.clone() };
    let pipeline: Arc<wgpu::ComputePipeline> = ctx.pipeline(&key, kernel.source)?;
    let mut block = [0u32; 16];
    block[..params.len()].copy_from_slice(params);
    block[14] = f32::NEG_INFINITY.to_bits();
    block[15] = f32::NAN.to_bits();
    let max_dim = ctx.device.limits().max_compute_workgroups_per_dimension as u64;
    let x = groups.min(max_dim);
    let y = groups.div_ceil(x);
    if y > max_dim {
        return Err(Error::Backend(format!("{groups} workgroups exceed the adapter's 2D dispatch limit")));
    }
    let layout = pipeline.get_bind_group_layout(0);
    ctx.record_dispatch(&block, |enc, uniform| {
        let mut entries: Vec<wgpu::BindGroupEntry<'_>> = windows
            .iter()
            .map(|w| wgpu::BindGroupEntry {
                binding: w.slot,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: w.buf,
                    offset: w.offset,
                    size: wgpu::BufferSize::new(w.size),
                }),
            })
            .collect();
        entries.push(wgpu::BindGroupEntry { binding: 15, resource: wgpu::BindingResource::Buffer(uniform) });
        let bind = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(kernel.name),
            layout: &layout,
            entries: &entries,
        });
        let mut pass =
            enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some(kernel.name), timestamp_writes: None });
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &bind, &[]);
        pass.dispatch_workgroups(x as u32, y as u32, 1);
    })
}

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

/// Words of the parameter block a kernel's struct may use: the two after it
/// hold the bit patterns of −inf and NaN.
pub(crate) const KERNEL_WORDS: usize = 14;

/// A type a parameter struct may hold: 32-bit scalars, and structs declared
/// by [`wgsl_struct!`], whose WGSL declaration comes with them.
pub(crate) trait Wgsl: bytemuck::Pod {
    /// The WGSL declaration of the type ("" for a scalar).
    const DECL: &'static str;
    /// Its alignment in a WGSL uniform: 4 for a scalar, 16 for a struct.
    const ALIGN: usize;
}

impl Wgsl for u32 {
    const DECL: &'static str = "";
    const ALIGN: usize = 4;
}

impl Wgsl for i32 {
    const DECL: &'static str = "";
    const ALIGN: usize = 4;
}

impl Wgsl for f32 {
    const DECL: &'static str = "";
    const ALIGN: usize = 4;
}

/// A kernel's parameters: one `#[repr(C)]` struct whose WGSL mirror is
/// generated from the same declaration by [`kernel_params!`], so that the
/// two cannot drift apart.
pub(crate) trait Params: bytemuck::Pod {
    /// The WGSL to prepend to the kernel's source: the declarations of the
    /// nested structs, then the struct itself (its fields in order, then
    /// `neg_inf_bits` and `nan_bits`), its binding `P` at slot 15,
    /// `neg_inf()` and `nan()`.
    const WGSL: &'static [&'static str];
}

/// The `#[repr(C)]` struct of a [`wgsl_struct!`] or [`kernel_params!`]
/// declaration, each field at an offset WGSL's uniform layout gives it too,
/// and the WGSL text of its fields.
macro_rules! params_struct {
    ($(#[$m:meta])* $vis:vis struct $name:ident { $($(#[$fm:meta])* $field:ident : $ty:ident),* $(,)? }) => {
        $(#[$m])*
        #[repr(C)]
        #[derive(Clone, Copy, Default, Debug, bytemuck::Pod, bytemuck::Zeroable)]
        $vis struct $name {
            $($(#[$fm])* pub $field: $ty,)*
        }

        const _: () = {
            $(assert!(core::mem::offset_of!($name, $field) % <$ty as $crate::launch::Wgsl>::ALIGN == 0);)*
        };
    };
    (@fields $($field:ident : $ty:ident),*) => {
        concat!($("    ", stringify!($field), ": ", stringify!($ty), ",\n",)*)
    };
}
pub(crate) use params_struct;

/// Declares a `#[repr(C)]` struct for kernel parameters (`u32`, `i32`,
/// `f32` and other such structs as fields) and its WGSL declaration; its
/// size is a multiple of 16 bytes, as a struct member of a WGSL uniform is.
macro_rules! wgsl_struct {
    ($(#[$m:meta])* $vis:vis struct $name:ident { $($(#[$fm:meta])* $field:ident : $ty:ident),* $(,)? }) => {
        $crate::launch::params_struct! { $(#[$m])* $vis struct $name { $($(#[$fm])* $field: $ty),* } }

        impl $crate::launch::Wgsl for $name {
            const DECL: &'static str = concat!(
                "struct ", stringify!($name), " {\n",
                $crate::launch::params_struct!(@fields $($field: $ty),*),
                "}\n",
            );
            const ALIGN: usize = 16;
        }

        const _: () = assert!(core::mem::size_of::<$name>() % 16 == 0, "a nested WGSL struct's size is a multiple of 16 bytes");
    };
}
pub(crate) use wgsl_struct;

/// Declares a kernel's parameter struct (fields as for [`wgsl_struct!`], at
/// most 14 words) and implements [`Params`] with its WGSL mirror.
macro_rules! kernel_params {
    ($(#[$m:meta])* $vis:vis struct $name:ident { $($(#[$fm:meta])* $field:ident : $ty:ident),* $(,)? }) => {
        $crate::launch::params_struct! { $(#[$m])* $vis struct $name { $($(#[$fm])* $field: $ty),* } }

        impl $crate::launch::Params for $name {
            const WGSL: &'static [&'static str] = &[
                $(<$ty as $crate::launch::Wgsl>::DECL,)*
                concat!(
                    "struct ", stringify!($name), " {\n",
                    $crate::launch::params_struct!(@fields $($field: $ty),*),
                    "    neg_inf_bits: u32,\n    nan_bits: u32,\n}\n",
                    "@group(0) @binding(15) var<uniform> P: ", stringify!($name), ";\n",
                    "fn neg_inf() -> f32 {\n    return bitcast<f32>(P.neg_inf_bits);\n}\n",
                    "fn nan() -> f32 {\n    return bitcast<f32>(P.nan_bits);\n}\n",
                ),
            ];
        }

        const _: () = assert!(core::mem::size_of::<$name>() <= 4 * $crate::launch::KERNEL_WORDS, "at most 14 parameter words");
    };
}
pub(crate) use kernel_params;

/// Records one dispatch of `kernel` with its parameters `params`, whose
/// WGSL struct (`P`) is prepended to the kernel's source; −inf and NaN
/// follow the fields, as WGSL constant expressions may not be infinite.
pub(crate) fn dispatch<P: Params>(
    ctx: &WgpuContext,
    kernel: &Kernel,
    windows: &[Window<'_>],
    params: &P,
    groups: u64,
) -> Result<()> {
    // At most KERNEL_WORDS, asserted where `kernel_params!` declares P.
    let words: &[u32] = bytemuck::cast_slice(std::slice::from_ref(params));
    let mut block = [0u32; 16];
    block[..words.len()].copy_from_slice(words);
    block[words.len()] = f32::NEG_INFINITY.to_bits();
    block[words.len() + 1] = f32::NAN.to_bits();
    let source: Vec<&str> = P::WGSL.iter().copied().chain([kernel.source]).collect();
    record(ctx, kernel, &source, windows, &block, groups)
}

/// Records one dispatch of `groups` workgroups, split over x and y when it
/// exceeds the per-dimension limit (kernels use `wg_index`); `source` is
/// the kernel's WGSL in parts, joined when the pipeline is first built.
fn record(
    ctx: &WgpuContext,
    kernel: &Kernel,
    source: &[&str],
    windows: &[Window<'_>],
    block: &[u32; 16],
    groups: u64,
) -> Result<()> {
    if groups == 0 {
        return Ok(());
    }
    let key = PipelineKey { name: kernel.name, entry: kernel.entry, constants: kernel.constants.clone() };
    let pipeline: Arc<wgpu::ComputePipeline> = ctx.pipeline(&key, source)?;
    let max_dim = ctx.device.limits().max_compute_workgroups_per_dimension as u64;
    let x = groups.min(max_dim);
    let y = groups.div_ceil(x);
    if y > max_dim {
        return Err(Error::Backend(format!("{groups} workgroups exceed the adapter's 2D dispatch limit")));
    }
    let layout = pipeline.get_bind_group_layout(0);
    ctx.record_dispatch(block, |enc, uniform| {
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

#[cfg(test)]
mod tests;

//! Views into device tensors and the buffer helpers every layer kernel
//! uses. Kernels take [`View`]s: a contiguous range of a tensor's elements,
//! so that one parameter buffer serves every named weight. Index data
//! (tokens, positions, row lists) are u32 stored in the same f32 buffers
//! ([`upload_u32`]) and declared `array<u32>` in WGSL.

use wapo_core::{Error, Result, Shape};

use crate::context::WgpuDevice;
use crate::launch::{Window, window};
use crate::tensor::WgpuTensor;

/// Elements `off .. off + len` of `t`.
#[derive(Clone, Copy)]
pub struct View<'a> {
    pub t: &'a WgpuTensor,
    pub off: u64,
    pub len: u64,
}

impl<'a> View<'a> {
    /// The whole tensor.
    pub fn all(t: &'a WgpuTensor) -> Self {
        View { t, off: 0, len: t.numel() }
    }

    /// Elements `off .. off + len`.
    pub fn at(t: &'a WgpuTensor, off: u64, len: u64) -> Self {
        View { t, off, len }
    }

    /// Elements `r` of the tensor (a parameter's range in the block).
    pub fn range(t: &'a WgpuTensor, r: &std::ops::Range<usize>) -> Self {
        View { t, off: r.start as u64, len: r.len() as u64 }
    }

    /// Elements `off .. off + len` of this view.
    pub fn sub(&self, off: u64, len: u64) -> Self {
        View { t: self.t, off: self.off + off, len }
    }

    /// Binds the view to `slot`; returns the window and the index of the
    /// view's first element inside the binding (pass it to the kernel).
    pub(crate) fn bind(&self, slot: u32, field: &'static str) -> Result<(Window<'a>, u32)> {
        let ctx = self.t.ctx();
        if self.off + self.len > self.t.numel().max(1) {
            return Err(Error::Backend(format!(
                "{field}: view {}..{} outside a tensor of {} elements",
                self.off,
                self.off + self.len,
                self.t.numel()
            )));
        }
        let w = window(slot, self.t.single(field)?, self.off, self.off + self.len.max(1));
        if w.size > ctx.max_binding {
            return Err(Error::Backend(format!(
                "{field}: {} bytes exceed the adapter's storage binding limit of {} bytes",
                w.size, ctx.max_binding
            )));
        }
        let shift = (self.off - w.base) as u32;
        Ok((w, shift))
    }
}

/// A device tensor holding u32 values (bit patterns in an f32 buffer).
pub fn upload_u32(dev: &WgpuDevice, data: &[u32]) -> Result<WgpuTensor> {
    let t = WgpuTensor::empty(dev, Shape::d1(data.len()))?;
    crate::transfer::write_f32(dev, t.single("upload_u32")?, bytemuck::cast_slice(data))?;
    Ok(t)
}

/// A device tensor of `n` f32, uninitialised (every GPT buffer is written
/// before it is read, or zeroed with [`rows::fill`]).
pub fn alloc(dev: &WgpuDevice, n: usize) -> Result<WgpuTensor> {
    WgpuTensor::empty(dev, Shape::d1(n))
}

/// Reads a device tensor of u32 values.
pub fn download_u32(t: &WgpuTensor, n: usize) -> Result<Vec<u32>> {
    let v = crate::transfer::read_f32(t.ctx(), t.single("download_u32")?, n as u64)?;
    Ok(bytemuck::cast_slice(&v).to_vec())
}

/// Overwrites elements `off ..` of `t` with `data` (host → device).
pub fn write(t: &WgpuTensor, off: u64, data: &[f32]) -> Result<()> {
    if off + data.len() as u64 > t.numel() {
        return Err(Error::Backend(format!("write of {} elements at {off} outside {}", data.len(), t.numel())));
    }
    crate::transfer::write_f32_at(t.ctx(), t.single("write")?, off, data)
}

//! `WgpuTensor`: an f32 tensor in GPU storage buffers, and its `Tensor` impl.
//!
//! A tensor larger than the adapter's `max_buffer_size` is held in several
//! buffers ("segments") of consecutive elements. Segments hold whole rows
//! (of the shape the tensor was created with) and a whole number of the
//! binding chunks of [`crate::kernels::row_chunks`], so that every chunk of a
//! row-wise kernel lies in one segment (rows too long for one binding are
//! cut on 64 elements). Upload, download, the elementwise
//! ops, the row reductions and gathers, the fused objective and the copy
//! kernel work across segments; every other op refuses a multi-segment
//! tensor with an error naming the op ([`WgpuTensor::single`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use wapo_core::{Binary, Error, Reduce, Result, Shape, Tensor, Unary};

use crate::context::{WgpuContext, WgpuDevice};
use crate::kernels;
use crate::launch::{Window, window};

/// An f32 tensor on a wgpu device. Cloning shares the buffers.
#[derive(Clone)]
pub struct WgpuTensor {
    pub(crate) store: Arc<Storage>,
    pub(crate) shape: Shape,
}

/// The buffers of one tensor; returned to the device's pool when dropped.
pub(crate) struct Storage {
    /// The segments: `bufs[k]` holds elements `k·seg .. (k+1)·seg` (one
    /// buffer for every tensor within `max_buffer_size`).
    bufs: Vec<wgpu::Buffer>,
    /// Elements per segment (all but the last are full).
    seg: u64,
    pub(crate) dev: WgpuDevice,
    /// The largest bound `n` for which every element is known to be an index
    /// in `0..n` (0: unchecked). Tensors are immutable, so one check of a
    /// group-id or token tensor serves every later gather with it.
    checked_below: AtomicU64,
}

impl Drop for Storage {
    fn drop(&mut self) {
        for b in self.bufs.drain(..) {
            self.dev.recycle(b);
        }
    }
}

impl WgpuTensor {
    /// A tensor of `shape` with uninitialized contents.
    pub(crate) fn empty(dev: &WgpuDevice, shape: Shape) -> Result<Self> {
        let numel = shape.numel() as u64;
        let seg = segment_elems(dev, numel, shape.last() as u64);
        let mut bufs = Vec::with_capacity(numel.div_ceil(seg).max(1) as usize);
        let mut at = 0;
        loop {
            let n = seg.min(numel - at);
            bufs.push(dev.buffer((n * 4).max(4))?);
            at += n;
            if at >= numel {
                break;
            }
        }
        Ok(WgpuTensor {
            store: Arc::new(Storage { bufs, seg, dev: dev.clone(), checked_below: AtomicU64::new(0) }),
            shape,
        })
    }

    /// The first (for most tensors the only) buffer. Only for tensors known
    /// to be one segment (created here at a size within one binding); a
    /// tensor from the caller goes through [`WgpuTensor::single`].
    pub(crate) fn buf(&self) -> &wgpu::Buffer {
        &self.store.bufs[0]
    }

    /// The one buffer of a single-segment tensor, or an error naming `op`
    /// when the tensor is held in several segments.
    pub(crate) fn single(&self, op: &str) -> Result<&wgpu::Buffer> {
        match self.store.bufs.as_slice() {
            [b] => Ok(b),
            segs => Err(Error::Backend(format!(
                "{op}: a tensor of {} bytes is held in {} buffers (beyond the adapter's max_buffer_size of {} \
                 bytes), which this op does not support",
                self.numel() * 4,
                segs.len(),
                self.ctx().max_buffer
            ))),
        }
    }

    /// Number of buffers holding the tensor.
    pub fn segment_count(&self) -> usize {
        self.store.bufs.len()
    }

    /// The segment holding element `e`: its buffer, and the (tensor) indices
    /// of its first element and one past its last.
    pub(crate) fn segment_of(&self, e: u64) -> (&wgpu::Buffer, u64, u64) {
        let k = (e / self.store.seg).min(self.store.bufs.len() as u64 - 1);
        let s0 = k * self.store.seg;
        (&self.store.bufs[k as usize], s0, (s0 + self.store.seg).min(self.numel()))
    }

    /// The segments as `(buffer, first element, end)`.
    pub(crate) fn segments(&self) -> impl Iterator<Item = (&wgpu::Buffer, u64, u64)> {
        let (seg, n) = (self.store.seg, self.numel());
        self.store.bufs.iter().enumerate().map(move |(k, b)| {
            let s0 = k as u64 * seg;
            (b, s0.min(n), (s0 + seg).min(n))
        })
    }

    /// Binds elements `first..end` (which must lie in one segment) to `slot`;
    /// also returns the index of `first` inside the binding.
    pub(crate) fn window_at(&self, slot: u32, first: u64, end: u64) -> Result<(Window<'_>, u64)> {
        let (buf, s0, s1) = self.segment_of(first);
        if end > s1.max(first + 1) {
            return Err(Error::Backend(format!("elements {first}..{end} cross a buffer boundary of a tensor")));
        }
        let w = window(slot, buf, first - s0, end - s0);
        let shift = first - s0 - w.base;
        Ok((w, shift))
    }

    pub(crate) fn ctx(&self) -> &WgpuContext {
        &self.store.dev
    }

    pub(crate) fn numel(&self) -> u64 {
        self.shape.numel() as u64
    }

    pub(crate) fn same_device(&self, other: &WgpuTensor) -> Result<()> {
        if Arc::ptr_eq(&self.store.dev, &other.store.dev) {
            Ok(())
        } else {
            Err(Error::Device("tensors of one call live on different wgpu devices"))
        }
    }

    /// Whether the elements are known to be integer indices in `0..n`.
    pub(crate) fn indices_checked(&self, n: usize) -> bool {
        let c = self.store.checked_below.load(Ordering::Relaxed);
        c != 0 && c <= n as u64
    }

    pub(crate) fn mark_indices_checked(&self, n: usize) {
        let cur = self.store.checked_below.load(Ordering::Relaxed);
        if cur == 0 || (n as u64) < cur {
            self.store.checked_below.store(n as u64, Ordering::Relaxed);
        }
    }

    /// Reads the contents as f32 (blocks until the GPU is done).
    pub fn to_vec(&self) -> Result<Vec<f32>> {
        if let [b] = self.store.bufs.as_slice() {
            return crate::transfer::read_f32(self.ctx(), b, self.numel());
        }
        // One read-back per segment: a staging buffer is limited like any other.
        let mut out = Vec::with_capacity(self.numel() as usize);
        for (b, s0, s1) in self.segments() {
            out.extend(crate::transfer::read_f32(self.ctx(), b, s1 - s0)?);
        }
        Ok(out)
    }
}

impl Tensor for WgpuTensor {
    type Device = WgpuDevice;

    fn device(&self) -> WgpuDevice {
        self.store.dev.clone()
    }
    fn shape(&self) -> Shape {
        self.shape
    }
    fn upload(dev: &WgpuDevice, data: &[f64], shape: Shape) -> Result<Self> {
        if data.len() != shape.numel() {
            return Err(Error::Shape { field: "data", expected: shape, got: Shape::d1(data.len()) });
        }
        let t = WgpuTensor::empty(dev, shape)?;
        let host: Vec<f32> = data.iter().map(|v| *v as f32).collect();
        for (b, s0, s1) in t.segments() {
            crate::transfer::write_f32(dev, b, &host[s0 as usize..s1 as usize])?;
        }
        Ok(t)
    }
    fn download(&self, out: &mut [f64]) -> Result<()> {
        if out.len() != self.shape.numel() {
            return Err(Error::Shape { field: "download", expected: self.shape, got: Shape::d1(out.len()) });
        }
        let host = self.to_vec()?;
        for (o, v) in out.iter_mut().zip(host) {
            *o = v as f64;
        }
        Ok(())
    }
    fn full(dev: &WgpuDevice, shape: Shape, value: f64) -> Result<Self> {
        kernels::fill::full(dev, shape, value as f32)
    }
    fn iota_last(dev: &WgpuDevice, shape: Shape) -> Result<Self> {
        kernels::fill::iota_last(dev, shape)
    }
    fn reshape(&self, shape: Shape) -> Result<Self> {
        if shape.numel() != self.shape.numel() {
            return Err(Error::Shape { field: "reshape", expected: self.shape, got: shape });
        }
        Ok(WgpuTensor { store: self.store.clone(), shape })
    }
    fn unary(&self, op: Unary) -> Result<Self> {
        kernels::unary::unary(self, op)
    }
    fn binary(&self, rhs: &Self, op: Binary) -> Result<Self> {
        kernels::binary::binary(self, rhs, op)
    }
    fn select(cond: &Self, a: &Self, b: &Self) -> Result<Self> {
        kernels::select::select(cond, a, b)
    }
    fn reduce_last(&self, op: Reduce) -> Result<Self> {
        kernels::reduce::reduce_last(self, op)
    }
    fn gather_last(&self, idx: &Self) -> Result<Self> {
        kernels::gather::gather_last(self, idx)
    }
    fn segment_sum(&self, seg: &Self, n: usize) -> Result<Self> {
        kernels::segment::segment_sum(self, seg, n)
    }
    fn take(&self, idx: &Self) -> Result<Self> {
        kernels::take::take(self, idx)
    }
    // The scalar composites as one dispatch with the constant as a kernel
    // parameter, instead of filling a one-element tensor first.
    fn add_scalar(&self, value: f64) -> Result<Self> {
        kernels::binary::binary_scalar(self, value, Binary::Add)
    }
    fn mul_scalar(&self, value: f64) -> Result<Self> {
        kernels::binary::binary_scalar(self, value, Binary::Mul)
    }
    fn max_scalar(&self, value: f64) -> Result<Self> {
        kernels::binary::binary_scalar(self, value, Binary::Max)
    }
    fn min_scalar(&self, value: f64) -> Result<Self> {
        kernels::binary::binary_scalar(self, value, Binary::Min)
    }
    fn logits_objective(
        cfg: &wapo_core::ObjectiveConfig,
        batch: &wapo_core::logits::LogitsBatch<'_, Self>,
    ) -> Result<wapo_core::objective::Output<Self>> {
        crate::kernels::fused::logits_objective(cfg, batch)
    }
}

/// Elements per segment of a tensor of `numel` elements in rows of `row`:
/// all of them when they fit one buffer, else the most whole binding chunks
/// of whole rows (as `row_chunks` cuts them) that fit one buffer; rows too
/// long for one binding are cut anywhere, on 64 elements.
fn segment_elems(ctx: &WgpuContext, numel: u64, row: u64) -> u64 {
    if numel * 4 <= ctx.max_buffer {
        return numel.max(1);
    }
    // Buffer bytes a multiple of 16, as the pool's sizes are.
    let cap = ctx.max_buffer / 16 * 4;
    let row = row.max(1);
    let chunk_rows = (ctx.max_binding - crate::context::BIND_ALIGN) / (4 * row);
    if chunk_rows == 0 {
        return (cap / 64 * 64).max(64);
    }
    // A chunk fits one binding, hence one buffer: at least one per segment.
    (cap / row / chunk_rows).max(1) * chunk_rows * row
}

#[cfg(test)]
mod tests;

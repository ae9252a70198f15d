//! `WgpuTensor`: an f32 tensor in a GPU storage buffer, and its `Tensor` impl.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use wapo_core::{Binary, Error, Reduce, Result, Shape, Tensor, Unary};

use crate::context::{WgpuContext, WgpuDevice};
use crate::kernels;

/// An f32 tensor on a wgpu device. Cloning shares the buffer.
#[derive(Clone)]
pub struct WgpuTensor {
    pub(crate) store: Arc<Storage>,
    pub(crate) shape: Shape,
}

/// The buffer of one tensor; returned to the device's pool when dropped.
pub(crate) struct Storage {
    buf: Option<wgpu::Buffer>,
    pub(crate) dev: WgpuDevice,
    /// The largest bound `n` for which every element is known to be an index
    /// in `0..n` (0: unchecked). Tensors are immutable, so one check of a
    /// group-id or token tensor serves every later gather with it.
    checked_below: AtomicU64,
}

impl Drop for Storage {
    fn drop(&mut self) {
        if let Some(b) = self.buf.take() {
            self.dev.recycle(b);
        }
    }
}

impl WgpuTensor {
    /// A tensor of `shape` with uninitialized contents.
    pub(crate) fn empty(dev: &WgpuDevice, shape: Shape) -> Result<Self> {
        let bytes = (shape.numel() as u64 * 4).max(4);
        let buf = dev.buffer(bytes)?;
        Ok(WgpuTensor {
            store: Arc::new(Storage { buf: Some(buf), dev: dev.clone(), checked_below: AtomicU64::new(0) }),
            shape,
        })
    }

    pub(crate) fn buf(&self) -> &wgpu::Buffer {
        // The buffer is only taken in `Drop`.
        self.store.buf.as_ref().expect("buffer present until drop")
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
        crate::transfer::read_f32(self.ctx(), self.buf(), self.numel())
    }
}

impl Tensor for WgpuTensor {
    type Device = WgpuDevice;
    type Elem = f32;

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
        crate::transfer::write_f32(dev, t.buf(), &host)?;
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
        crate::fused::logits_objective(cfg, batch)
    }
}

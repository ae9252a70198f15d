//! `HostTensor`: the Vec-backed reference backend, in f64 (the oracle the
//! golden cases are checked with) or f32, and the one host tensor of the
//! project: the wgpu backend's fused objective runs its per-sequence engine
//! on `HostTensor<f64>`, and the CPU backend's `CpuTensor` is a
//! `HostTensor<f32>` with a dfdx device.
//!
//! Every element is computed by the plain expression of its primitive
//! (`a + b`, `x.exp()`, a left-to-right fold per row), so the numbers are
//! those of the simplest loops; only the loops are arranged for speed:
//!
//! * [`elementwise`]: the operation and each operand's broadcast are chosen
//!   once per call, and each chunk is one loop the compiler vectorizes;
//! * [`pool`]: with `std`, dropped buffers of at least [`POOL_MIN`]
//!   elements are reused rather than faulted in afresh;
//! * with the `rayon` feature, large outputs are filled in parallel chunks
//!   (rows never split, so results do not depend on the thread count).

mod elementwise;
mod pool;
mod rows;

use alloc::sync::Arc;
use alloc::vec::Vec;

pub use pool::{POOL_MIN, release_pooled_buffers, take_buffer};

use crate::error::{Error, Result};
use crate::scalar::Scalar;
use crate::shape::Shape;
use crate::tensor::{Binary, Reduce, Tensor, Unary};
use elementwise::{Operand, map, zip};
use pool::Buffer;

/// A tensor in host memory. Cloning shares the buffer.
#[derive(Clone, Debug)]
pub struct HostTensor<E: Scalar = f64> {
    data: Arc<Buffer<E>>,
    shape: Shape,
}

impl<E: Scalar> HostTensor<E> {
    /// Wraps `data` (row-major, `shape.numel()` values) without copying.
    pub fn from_vec(data: Vec<E>, shape: Shape) -> Result<Self> {
        if data.len() != shape.numel() {
            return Err(Error::Shape { field: "data", expected: shape, got: Shape::d1(data.len()) });
        }
        Ok(HostTensor { data: Arc::new(Buffer::new(data)), shape })
    }
    pub fn from_f64(data: &[f64], shape: Shape) -> Result<Self> {
        Self::upload(&(), data, shape)
    }
    /// f32 values (a model's logits, a device read-back), widened or kept.
    pub fn from_f32(data: &[f32], shape: Shape) -> Result<Self> {
        Self::from_vec(elementwise::convert(data, |v| E::of_f64(f64::from(v))), shape)
    }
    /// The values, row-major.
    pub fn data(&self) -> &[E] {
        self.data.as_slice()
    }
    pub fn to_f64(&self) -> Vec<f64> {
        self.data().iter().map(|v| v.as_f64()).collect()
    }
    fn wrap(data: Vec<E>, shape: Shape) -> Result<Self> {
        Self::from_vec(data, shape)
    }
    fn operand(&self, out: Shape, field: &'static str) -> Result<Operand<'_, E>> {
        Operand::new(self.data(), self.shape, out, field)
    }
}

#[inline(always)]
fn flag<E: Scalar>(c: bool) -> E {
    if c { E::one() } else { E::zero() }
}

impl<E: Scalar> Tensor for HostTensor<E> {
    type Device = ();

    fn device(&self) {}
    fn shape(&self) -> Shape {
        self.shape
    }
    fn upload(_dev: &(), data: &[f64], shape: Shape) -> Result<Self> {
        Self::wrap(elementwise::convert(data, E::of_f64), shape)
    }
    fn download(&self, out: &mut [f64]) -> Result<()> {
        if out.len() != self.data().len() {
            return Err(Error::Shape { field: "download", expected: self.shape, got: Shape::d1(out.len()) });
        }
        for (o, v) in out.iter_mut().zip(self.data()) {
            *o = v.as_f64();
        }
        Ok(())
    }
    fn upload_f32(_dev: &(), data: &[f32], shape: Shape) -> Result<Self> {
        Self::from_f32(data, shape)
    }
    fn download_f32(&self, out: &mut [f32]) -> Result<()> {
        if out.len() != self.data().len() {
            return Err(Error::Shape { field: "download", expected: self.shape, got: Shape::d1(out.len()) });
        }
        for (o, v) in out.iter_mut().zip(self.data()) {
            *o = v.as_f64() as f32;
        }
        Ok(())
    }
    fn full(_dev: &(), shape: Shape, value: f64) -> Result<Self> {
        Self::wrap(elementwise::full(shape.numel(), E::of_f64(value)), shape)
    }
    fn iota_last(_dev: &(), shape: Shape) -> Result<Self> {
        Self::wrap(elementwise::iota_last(shape), shape)
    }
    fn reshape(&self, shape: Shape) -> Result<Self> {
        if shape.numel() != self.shape.numel() {
            return Err(Error::Shape { field: "reshape", expected: self.shape, got: shape });
        }
        Ok(HostTensor { data: self.data.clone(), shape })
    }
    fn unary(&self, op: Unary) -> Result<Self> {
        let x = self.data();
        let data = match op {
            Unary::Neg => map(x, |v| -v),
            Unary::Exp => map(x, |v| v.exp()),
            Unary::Log => map(x, |v| v.ln()),
            Unary::Abs => map(x, |v| v.abs()),
            Unary::Sqr => map(x, |v| v * v),
            Unary::Sqrt => map(x, |v| v.sqrt()),
            Unary::Recip => map(x, |v| v.recip()),
            Unary::Positive => map(x, |v| flag(v > E::zero())),
            Unary::IsZero => map(x, |v| flag(v == E::zero())),
            Unary::IsFinite => map(x, |v| flag(v.is_finite())),
            Unary::Floor => map(x, |v| v.floor()),
        };
        Self::wrap(data, self.shape)
    }
    fn binary(&self, rhs: &Self, op: Binary) -> Result<Self> {
        let out = Shape::broadcast(&[self.shape, rhs.shape]);
        let (a, b) = (self.operand(out, "lhs")?, rhs.operand(out, "rhs")?);
        let data = match op {
            Binary::Add => zip(out, a, b, |x, y| x + y),
            Binary::Sub => zip(out, a, b, |x, y| x - y),
            Binary::Mul => zip(out, a, b, |x, y| x * y),
            Binary::Div => zip(out, a, b, |x, y| x / y),
            Binary::Max => zip(out, a, b, |x, y| x.max(y)),
            Binary::Min => zip(out, a, b, |x, y| x.min(y)),
            Binary::Lt => zip(out, a, b, |x, y| flag(x < y)),
            Binary::Le => zip(out, a, b, |x, y| flag(x <= y)),
            Binary::Eq => zip(out, a, b, |x, y| flag(x == y)),
            Binary::MaskMul => zip(out, a, b, |x, y| if y == E::zero() { E::zero() } else { x * y }),
        };
        Self::wrap(data, out)
    }
    fn select(cond: &Self, a: &Self, b: &Self) -> Result<Self> {
        let out = Shape::broadcast(&[cond.shape, a.shape, b.shape]);
        let c = cond.operand(out, "cond")?;
        let (x, y) = (a.operand(out, "a")?, b.operand(out, "b")?);
        Self::wrap(elementwise::select(out, c, x, y), out)
    }
    fn reduce_last(&self, op: Reduce) -> Result<Self> {
        Self::wrap(rows::reduce_last(self.data(), self.shape.last(), op), self.shape.without_last())
    }
    fn gather_last(&self, idx: &Self) -> Result<Self> {
        if idx.shape != self.shape.without_last() {
            return Err(Error::Shape { field: "gather index", expected: self.shape.without_last(), got: idx.shape });
        }
        Self::wrap(rows::gather_last(self.data(), self.shape.last(), idx.data())?, idx.shape)
    }
    fn segment_sum(&self, seg: &Self, n: usize) -> Result<Self> {
        if seg.shape != self.shape || self.shape.rank() != 1 {
            return Err(Error::Shape { field: "segment ids", expected: self.shape, got: seg.shape });
        }
        Self::wrap(rows::segment_sum(self.data(), seg.data(), n)?, Shape::d1(n))
    }
    fn take(&self, idx: &Self) -> Result<Self> {
        Self::wrap(rows::take(self.data(), idx.data())?, idx.shape)
    }
    /// The streaming path ([`crate::logits::streamed`]): one pass per row.
    fn logits_objective(
        cfg: &crate::objective::ObjectiveConfig,
        batch: &crate::logits::LogitsBatch<'_, Self>,
    ) -> Result<crate::objective::Output<Self>> {
        crate::logits::streamed(cfg, batch)
    }
}

#[cfg(test)]
mod tests;

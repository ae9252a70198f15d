//! `CpuTensor`: the [`Tensor`] of the CPU backend, f32 on dfdx's [`Cpu`] device.
//!
//! dfdx 0.13 lends no borrowed view of a tensor's data (`as_vec` and
//! `copy_into` copy), while the fused objective must read the logits in
//! place and write its gradient into a reused buffer. So a `CpuTensor` keeps
//! its values in a host buffer of its own and meets dfdx at the boundary:
//! [`CpuTensor::from_dfdx`] takes logits from a dfdx graph and
//! [`CpuTensor::to_dfdx`] hands a gradient back to it.

mod buffer;
mod elementwise;
mod rows;

use std::sync::Arc;

use dfdx::prelude::{Cpu, HasShape, Tensor as DfdxTensor, TensorFromVec};
use dfdx::shapes::Shape as DfdxShape;
use wapo_core::logits::LogitsBatch;
use wapo_core::objective::{ObjectiveConfig, Output};
use wapo_core::{Binary, Error, Reduce, Result, Shape, Tensor, Unary};

use buffer::Buffer;
pub use buffer::release_pooled_buffers;
pub(crate) use buffer::take as take_buffer;

/// A rank-1..=3 f32 tensor in host memory. Cloning shares the buffer.
#[derive(Clone, Debug)]
pub struct CpuTensor {
    buf: Arc<Buffer>,
    shape: Shape,
    dev: Cpu,
}

impl CpuTensor {
    /// Wraps `data` (row-major, `shape.numel()` values) without copying.
    pub fn from_vec(dev: &Cpu, data: Vec<f32>, shape: Shape) -> Result<Self> {
        if data.len() != shape.numel() {
            return Err(Error::Shape { field: "data", expected: shape, got: Shape::d1(data.len()) });
        }
        Ok(CpuTensor { buf: Arc::new(Buffer::new(data)), shape, dev: dev.clone() })
    }

    /// The values, row-major.
    pub fn data(&self) -> &[f32] {
        self.buf.as_slice()
    }

    /// Copies a dfdx tensor of rank 1..=3 (its logical, row-major order).
    pub fn from_dfdx<S: DfdxShape, T>(t: &DfdxTensor<S, f32, Cpu, T>) -> Result<Self> {
        let dims = t.shape().concrete();
        let dims = dims.as_ref();
        let shape = match *dims {
            [a] => Shape::d1(a),
            [a, b] => Shape::d2(a, b),
            [a, b, c] => Shape::d3(a, b, c),
            _ => {
                return Err(Error::Invalid {
                    field: "dfdx tensor",
                    pos: wapo_core::error::Pos::NONE,
                    reason: "only ranks 1 to 3 convert to a CpuTensor",
                });
            }
        };
        Self::from_vec(t.device(), t.as_vec(), shape)
    }

    /// Copies the values into a dfdx tensor of shape `shape` (same element count).
    pub fn to_dfdx<S: DfdxShape>(&self, shape: S) -> Result<DfdxTensor<S, f32, Cpu>> {
        self.dev
            .try_tensor_from_vec(self.data().to_vec(), shape)
            .map_err(|e| Error::Backend(format!("dfdx tensor of {shape:?} from {}: {e}", self.shape)))
    }

    fn wrap(&self, data: Vec<f32>, shape: Shape) -> Result<Self> {
        Self::from_vec(&self.dev, data, shape)
    }
}

impl Tensor for CpuTensor {
    type Device = Cpu;
    type Elem = f32;

    fn device(&self) -> Cpu {
        self.dev.clone()
    }
    fn shape(&self) -> Shape {
        self.shape
    }
    fn upload(dev: &Cpu, data: &[f64], shape: Shape) -> Result<Self> {
        Self::from_vec(dev, data.iter().map(|v| *v as f32).collect(), shape)
    }
    fn download(&self, out: &mut [f64]) -> Result<()> {
        if out.len() != self.data().len() {
            return Err(Error::Shape { field: "download", expected: self.shape, got: Shape::d1(out.len()) });
        }
        for (o, v) in out.iter_mut().zip(self.data()) {
            *o = *v as f64;
        }
        Ok(())
    }
    fn upload_f32(dev: &Cpu, data: &[f32], shape: Shape) -> Result<Self> {
        Self::from_vec(dev, data.to_vec(), shape)
    }
    fn download_f32(&self, out: &mut [f32]) -> Result<()> {
        if out.len() != self.data().len() {
            return Err(Error::Shape { field: "download", expected: self.shape, got: Shape::d1(out.len()) });
        }
        out.copy_from_slice(self.data());
        Ok(())
    }
    fn full(dev: &Cpu, shape: Shape, value: f64) -> Result<Self> {
        Self::from_vec(dev, elementwise::full(shape.numel(), value as f32), shape)
    }
    fn iota_last(dev: &Cpu, shape: Shape) -> Result<Self> {
        Self::from_vec(dev, elementwise::iota_last(shape), shape)
    }
    fn reshape(&self, shape: Shape) -> Result<Self> {
        if shape.numel() != self.shape.numel() {
            return Err(Error::Shape { field: "reshape", expected: self.shape, got: shape });
        }
        Ok(CpuTensor { buf: self.buf.clone(), shape, dev: self.dev.clone() })
    }
    fn unary(&self, op: Unary) -> Result<Self> {
        self.wrap(elementwise::unary(self.data(), op), self.shape)
    }
    fn binary(&self, rhs: &Self, op: Binary) -> Result<Self> {
        let (data, shape) = elementwise::binary((self.data(), self.shape), (rhs.data(), rhs.shape), op)?;
        self.wrap(data, shape)
    }
    fn select(cond: &Self, a: &Self, b: &Self) -> Result<Self> {
        let (data, shape) = elementwise::select((cond.data(), cond.shape), (a.data(), a.shape), (b.data(), b.shape))?;
        cond.wrap(data, shape)
    }
    fn reduce_last(&self, op: Reduce) -> Result<Self> {
        let data = rows::reduce_last(self.data(), self.shape, op);
        self.wrap(data, self.shape.without_last())
    }
    fn gather_last(&self, idx: &Self) -> Result<Self> {
        if idx.shape != self.shape.without_last() {
            return Err(Error::Shape { field: "gather index", expected: self.shape.without_last(), got: idx.shape });
        }
        let data = rows::gather_last(self.data(), self.shape, idx.data())?;
        self.wrap(data, idx.shape)
    }
    fn segment_sum(&self, seg: &Self, n: usize) -> Result<Self> {
        if seg.shape != self.shape || self.shape.rank() != 1 {
            return Err(Error::Shape { field: "segment ids", expected: self.shape, got: seg.shape });
        }
        let data = rows::segment_sum(self.data(), seg.data(), n)?;
        self.wrap(data, Shape::d1(n))
    }
    fn take(&self, idx: &Self) -> Result<Self> {
        let data = rows::take(self.data(), idx.data())?;
        self.wrap(data, idx.shape)
    }

    /// One streaming pass over each logits row, then one gradient pass
    /// ([`crate::fused`]); pinned to [`wapo_core::logits::composed`] by the
    /// equivalence tests.
    fn logits_objective(cfg: &ObjectiveConfig, batch: &LogitsBatch<'_, Self>) -> Result<Output<Self>> {
        crate::fused::logits_objective(cfg, batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dfdx::prelude::{AsArray, TensorFrom};

    /// dfdx → CpuTensor → dfdx keeps shape and row-major order.
    #[test]
    fn dfdx_round_trip() {
        let dev = Cpu::default();
        let t: DfdxTensor<(usize, usize), f32, Cpu> = dev.tensor((vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], (2, 3)));
        let c = CpuTensor::from_dfdx(&t).unwrap();
        assert_eq!(c.shape(), Shape::d2(2, 3));
        assert_eq!(c.data(), &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let back = c.to_dfdx((3usize, 2usize)).unwrap();
        assert_eq!(back.as_vec(), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let fixed = c.to_dfdx(dfdx::shapes::Rank2::<2, 3>::default()).unwrap();
        assert_eq!(fixed.array(), [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]);
        assert!(matches!(c.to_dfdx((7usize,)), Err(Error::Backend(_))));
    }

    /// A dropped large buffer is handed to the next request of its length.
    #[test]
    fn large_buffers_are_reused() {
        let len = (1 << 20) + 17; // a length no other test uses
        let dev = Cpu::default();
        let a = CpuTensor::from_vec(&dev, buffer::take(len), Shape::d1(len)).unwrap();
        let ptr = a.data().as_ptr();
        drop(a);
        let b = buffer::take(len);
        assert_eq!(b.as_ptr(), ptr);
        assert_eq!(b.len(), len);
    }

    #[test]
    fn shape_errors_name_the_operand() {
        let dev = Cpu::default();
        let a = CpuTensor::full(&dev, Shape::d2(2, 3), 1.0).unwrap();
        let b = CpuTensor::full(&dev, Shape::d1(3), 1.0).unwrap();
        assert_eq!(
            a.binary(&b, Binary::Add).err(),
            Some(Error::Shape { field: "rhs", expected: Shape::d2(2, 3), got: Shape::d1(3) })
        );
        assert!(a.reshape(Shape::d1(5)).is_err());
    }
}

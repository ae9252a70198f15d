//! `CpuTensor`: the [`Tensor`] of the CPU backend, f32 on dfdx's [`Cpu`] device.
//!
//! dfdx 0.13 lends no borrowed view of a tensor's data (`as_vec` and
//! `copy_into` copy), while the fused objective must read the logits in
//! place and write its gradient into a reused buffer. So a `CpuTensor` keeps
//! its values in a host buffer of its own and meets dfdx at the boundary:
//! [`CpuTensor::from_dfdx`] takes logits from a dfdx graph and
//! [`CpuTensor::to_dfdx`] hands a gradient back to it. The values and every
//! primitive are the core's [`HostTensor<f32>`]'s.

use dfdx::prelude::{Cpu, HasShape, Tensor as DfdxTensor, TensorFromVec};
use dfdx::shapes::Shape as DfdxShape;
use wapo_core::host::HostTensor;
use wapo_core::logits::LogitsBatch;
use wapo_core::objective::{ObjectiveConfig, Output};
use wapo_core::{Binary, Error, Reduce, Result, Shape, Tensor, Unary};

pub use wapo_core::host::release_pooled_buffers;

/// A rank-1..=3 f32 tensor in host memory. Cloning shares the buffer.
#[derive(Clone, Debug)]
pub struct CpuTensor {
    host: HostTensor<f32>,
    dev: Cpu,
}

impl CpuTensor {
    /// Wraps `data` (row-major, `shape.numel()` values) without copying.
    pub fn from_vec(dev: &Cpu, data: Vec<f32>, shape: Shape) -> Result<Self> {
        Ok(CpuTensor { host: HostTensor::from_vec(data, shape)?, dev: dev.clone() })
    }

    /// The values, row-major.
    pub fn data(&self) -> &[f32] {
        self.host.data()
    }

    /// The same values as the core's host tensor (shared, not copied).
    pub fn host(&self) -> &HostTensor<f32> {
        &self.host
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
            .map_err(|e| Error::Backend(format!("dfdx tensor of {shape:?} from {}: {e}", self.host.shape())))
    }

    fn wrap(&self, host: Result<HostTensor<f32>>) -> Result<Self> {
        Ok(CpuTensor { host: host?, dev: self.dev.clone() })
    }
}

/// Every primitive is the core's host tensor's, in f32 (with its buffer pool
/// and parallel loops); only the device and the fused objective are this
/// backend's.
impl Tensor for CpuTensor {
    type Device = Cpu;

    fn device(&self) -> Cpu {
        self.dev.clone()
    }
    fn shape(&self) -> Shape {
        self.host.shape()
    }
    fn upload(dev: &Cpu, data: &[f64], shape: Shape) -> Result<Self> {
        Ok(CpuTensor { host: HostTensor::upload(&(), data, shape)?, dev: dev.clone() })
    }
    fn download(&self, out: &mut [f64]) -> Result<()> {
        self.host.download(out)
    }
    fn upload_f32(dev: &Cpu, data: &[f32], shape: Shape) -> Result<Self> {
        Ok(CpuTensor { host: HostTensor::from_f32(data, shape)?, dev: dev.clone() })
    }
    fn download_f32(&self, out: &mut [f32]) -> Result<()> {
        self.host.download_f32(out)
    }
    fn full(dev: &Cpu, shape: Shape, value: f64) -> Result<Self> {
        Ok(CpuTensor { host: HostTensor::full(&(), shape, value)?, dev: dev.clone() })
    }
    fn iota_last(dev: &Cpu, shape: Shape) -> Result<Self> {
        Ok(CpuTensor { host: HostTensor::iota_last(&(), shape)?, dev: dev.clone() })
    }
    fn reshape(&self, shape: Shape) -> Result<Self> {
        self.wrap(self.host.reshape(shape))
    }
    fn unary(&self, op: Unary) -> Result<Self> {
        self.wrap(self.host.unary(op))
    }
    fn binary(&self, rhs: &Self, op: Binary) -> Result<Self> {
        self.wrap(self.host.binary(&rhs.host, op))
    }
    fn select(cond: &Self, a: &Self, b: &Self) -> Result<Self> {
        cond.wrap(HostTensor::select(&cond.host, &a.host, &b.host))
    }
    fn reduce_last(&self, op: Reduce) -> Result<Self> {
        self.wrap(self.host.reduce_last(op))
    }
    fn gather_last(&self, idx: &Self) -> Result<Self> {
        self.wrap(self.host.gather_last(&idx.host))
    }
    fn segment_sum(&self, seg: &Self, n: usize) -> Result<Self> {
        self.wrap(self.host.segment_sum(&seg.host, n))
    }
    fn take(&self, idx: &Self) -> Result<Self> {
        self.wrap(self.host.take(&idx.host))
    }

    /// One streaming pass over each logits row, then one gradient pass
    /// ([`crate::fused`]); pinned to [`wapo_core::logits::composed`] by the
    /// equivalence tests.
    fn logits_objective(cfg: &ObjectiveConfig, batch: &LogitsBatch<'_, Self>) -> Result<Output<Self>> {
        crate::kernels::fused::logits_objective(cfg, batch)
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
        let len = (1 << 20) + 29; // a length no other test uses
        let dev = Cpu::default();
        let a = CpuTensor::from_vec(&dev, wapo_core::host::take_buffer(len), Shape::d1(len)).unwrap();
        let ptr = a.data().as_ptr();
        drop(a);
        let b: Vec<f32> = wapo_core::host::take_buffer(len);
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

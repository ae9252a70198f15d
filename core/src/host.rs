//! `HostTensor`: a Vec-backed reference backend, in f64 (the oracle the
//! golden cases are checked with) or f32. Simple loops, no cleverness: it is
//! what every other backend is compared against.

use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::error::{Error, Result};
use crate::scalar::Scalar;
use crate::shape::{Broadcast, Shape};
use crate::tensor::{Binary, Reduce, Tensor, Unary};

/// A tensor in host memory. Cloning shares the buffer.
#[derive(Clone, Debug)]
pub struct HostTensor<E: Scalar = f64> {
    data: Arc<Vec<E>>,
    shape: Shape,
}

impl<E: Scalar> HostTensor<E> {
    pub fn from_vec(data: Vec<E>, shape: Shape) -> Result<Self> {
        if data.len() != shape.numel() {
            return Err(Error::Shape { field: "data", expected: shape, got: Shape::d1(data.len()) });
        }
        Ok(HostTensor { data: Arc::new(data), shape })
    }
    pub fn from_f64(data: &[f64], shape: Shape) -> Result<Self> {
        Self::upload(&(), data, shape)
    }
    pub fn data(&self) -> &[E] {
        &self.data
    }
    pub fn to_f64(&self) -> Vec<f64> {
        self.data.iter().map(|v| v.as_f64()).collect()
    }
}

/// Index map of one operand of an elementwise op onto the output's shape.
#[derive(Clone, Copy)]
enum Bcast {
    Full,
    Row(usize),
    Scalar,
}

fn bcast(op: Shape, out: Shape, field: &'static str) -> Result<Bcast> {
    Ok(match op.broadcast_to(out, field)? {
        Broadcast::Full => Bcast::Full,
        Broadcast::Row => Bcast::Row(out.last()),
        Broadcast::Scalar => Bcast::Scalar,
    })
}

impl<E: Scalar> HostTensor<E> {
    #[inline]
    fn at(&self, b: Bcast, i: usize) -> E {
        match b {
            Bcast::Full => self.data[i],
            Bcast::Row(c) => self.data[i / c],
            Bcast::Scalar => self.data[0],
        }
    }
}

fn unary_f<E: Scalar>(op: Unary, x: E) -> E {
    let zero = E::zero();
    let one = E::one();
    match op {
        Unary::Neg => -x,
        Unary::Exp => x.exp(),
        Unary::Log => x.ln(),
        Unary::Abs => x.abs(),
        Unary::Sqr => x * x,
        Unary::Sqrt => x.sqrt(),
        Unary::Recip => x.recip(),
        Unary::Positive => {
            if x > zero {
                one
            } else {
                zero
            }
        }
        Unary::IsZero => {
            if x == zero {
                one
            } else {
                zero
            }
        }
        Unary::IsFinite => {
            if x.is_finite() {
                one
            } else {
                zero
            }
        }
        Unary::Floor => x.floor(),
    }
}

fn binary_f<E: Scalar>(op: Binary, a: E, b: E) -> E {
    let flag = |c: bool| if c { E::one() } else { E::zero() };
    match op {
        Binary::Add => a + b,
        Binary::Sub => a - b,
        Binary::Mul => a * b,
        Binary::Div => a / b,
        Binary::Max => a.max(b),
        Binary::Min => a.min(b),
        Binary::Lt => flag(a < b),
        Binary::Le => flag(a <= b),
        Binary::Eq => flag(a == b),
        Binary::MaskMul => {
            if b == E::zero() {
                E::zero()
            } else {
                a * b
            }
        }
    }
}

impl<E: Scalar> Tensor for HostTensor<E> {
    type Device = ();
    type Elem = E;

    fn device(&self) {}
    fn shape(&self) -> Shape {
        self.shape
    }
    fn upload(_dev: &(), data: &[f64], shape: Shape) -> Result<Self> {
        Self::from_vec(data.iter().map(|v| E::of_f64(*v)).collect(), shape)
    }
    fn download(&self, out: &mut [f64]) -> Result<()> {
        if out.len() != self.data.len() {
            return Err(Error::Shape { field: "download", expected: self.shape, got: Shape::d1(out.len()) });
        }
        for (o, v) in out.iter_mut().zip(self.data.iter()) {
            *o = v.as_f64();
        }
        Ok(())
    }
    fn full(_dev: &(), shape: Shape, value: f64) -> Result<Self> {
        Self::from_vec(alloc::vec![E::of_f64(value); shape.numel()], shape)
    }
    fn iota_last(_dev: &(), shape: Shape) -> Result<Self> {
        let c = shape.last();
        Self::from_vec((0..shape.numel()).map(|i| E::of_f64((i % c) as f64)).collect(), shape)
    }
    fn reshape(&self, shape: Shape) -> Result<Self> {
        if shape.numel() != self.shape.numel() {
            return Err(Error::Shape { field: "reshape", expected: self.shape, got: shape });
        }
        Ok(HostTensor { data: self.data.clone(), shape })
    }
    fn unary(&self, op: Unary) -> Result<Self> {
        Self::from_vec(self.data.iter().map(|x| unary_f(op, *x)).collect(), self.shape)
    }
    fn binary(&self, rhs: &Self, op: Binary) -> Result<Self> {
        let out = Shape::broadcast(&[self.shape, rhs.shape]);
        let (ba, bb) = (bcast(self.shape, out, "lhs")?, bcast(rhs.shape, out, "rhs")?);
        let data = (0..out.numel()).map(|i| binary_f(op, self.at(ba, i), rhs.at(bb, i))).collect();
        Self::from_vec(data, out)
    }
    fn select(cond: &Self, a: &Self, b: &Self) -> Result<Self> {
        let out = Shape::broadcast(&[cond.shape, a.shape, b.shape]);
        let bc = bcast(cond.shape, out, "cond")?;
        let (ba, bb) = (bcast(a.shape, out, "a")?, bcast(b.shape, out, "b")?);
        let data =
            (0..out.numel()).map(|i| if cond.at(bc, i) != E::zero() { a.at(ba, i) } else { b.at(bb, i) }).collect();
        Self::from_vec(data, out)
    }
    fn reduce_last(&self, op: Reduce) -> Result<Self> {
        let c = self.shape.last();
        let data = self
            .data
            .chunks(c.max(1))
            .map(|row| match op {
                Reduce::Sum => row.iter().fold(E::zero(), |s, x| s + *x),
                Reduce::Max => row.iter().fold(E::neg_infinity(), |m, x| m.max(*x)),
                Reduce::LogSumExp => {
                    let m = row.iter().fold(E::neg_infinity(), |m, x| m.max(*x));
                    if m == E::neg_infinity() || !m.is_finite() {
                        return m;
                    }
                    m + row.iter().fold(E::zero(), |s, x| s + (*x - m).exp()).ln()
                }
            })
            .collect();
        Self::from_vec(data, self.shape.without_last())
    }
    fn gather_last(&self, idx: &Self) -> Result<Self> {
        let c = self.shape.last();
        if idx.shape != self.shape.without_last() {
            return Err(Error::Shape { field: "gather index", expected: self.shape.without_last(), got: idx.shape });
        }
        let mut out = Vec::with_capacity(idx.data.len());
        for (r, j) in idx.data.iter().enumerate() {
            let j = j.as_f64();
            if !(j >= 0.0 && (j as usize) < c) {
                return Err(Error::Invalid {
                    field: "gather index",
                    pos: crate::error::Pos::at1(r),
                    reason: "index out of range of the last axis",
                });
            }
            out.push(self.data[r * c + j as usize]);
        }
        Self::from_vec(out, idx.shape)
    }
    fn segment_sum(&self, seg: &Self, n: usize) -> Result<Self> {
        if seg.shape != self.shape || self.shape.rank() != 1 {
            return Err(Error::Shape { field: "segment ids", expected: self.shape, got: seg.shape });
        }
        let mut out = alloc::vec![E::zero(); n];
        for (x, s) in self.data.iter().zip(seg.data.iter()) {
            let s = s.as_f64();
            if !(s >= 0.0 && (s as usize) < n) {
                return Err(Error::Invalid {
                    field: "segment ids",
                    pos: crate::error::Pos::NONE,
                    reason: "segment id out of range",
                });
            }
            out[s as usize] = out[s as usize] + *x;
        }
        Self::from_vec(out, Shape::d1(n))
    }
    /// The streaming path ([`crate::logits::streamed`]): one pass per row.
    fn logits_objective(
        cfg: &crate::objective::ObjectiveConfig,
        batch: &crate::logits::LogitsBatch<'_, Self>,
    ) -> Result<crate::objective::Output<Self>> {
        crate::logits::streamed(cfg, batch)
    }
    fn take(&self, idx: &Self) -> Result<Self> {
        let n = self.data.len();
        let mut out = Vec::with_capacity(idx.data.len());
        for i in idx.data.iter() {
            let i = i.as_f64();
            if !(i >= 0.0 && (i as usize) < n) {
                return Err(Error::Invalid {
                    field: "take index",
                    pos: crate::error::Pos::NONE,
                    reason: "index out of range",
                });
            }
            out.push(self.data[i as usize]);
        }
        Self::from_vec(out, idx.shape)
    }
}

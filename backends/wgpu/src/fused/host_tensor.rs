//! `F64Tensor`: the tensor the per-sequence engine of a fused evaluation runs
//! on, in host memory and f64. Its numbers are those of
//! `wapo_core::host::HostTensor<f64>` (the same operations in the same
//! order); only the loops differ: the operation and the broadcast are chosen
//! once per call instead of once per element, so that each primitive is one
//! tight pass the compiler vectorizes. The engine runs some 140 primitives
//! per call, most over all N·T positions, which makes this the difference
//! between tens of µs and several ms at N·T = 65,536. Buffers come back to
//! a per-thread pool when dropped: fresh allocations of that size are pages
//! the OS must fault in and zero, which cost more than the arithmetic.

use std::cell::RefCell;
use std::sync::Arc;

use wapo_core::shape::Broadcast;
use wapo_core::{Binary, Error, Reduce, Result, Shape, Tensor, Unary};

/// An f64 tensor in host memory. Cloning shares the buffer.
#[derive(Clone, Debug)]
pub(crate) struct F64Tensor {
    data: Arc<Pooled>,
    shape: Shape,
}

/// A buffer that goes back to the thread's pool when dropped.
#[derive(Debug)]
struct Pooled(Vec<f64>);

impl std::ops::Deref for Pooled {
    type Target = Vec<f64>;
    fn deref(&self) -> &Vec<f64> {
        &self.0
    }
}

/// Idle buffers a thread keeps: about the live (N, T) temporaries of one
/// evaluation. Only buffers of at least [`POOL_MIN`] elements are kept; the
/// allocator serves smaller ones from its free lists without faulting pages.
const POOL_LEN: usize = 64;
const POOL_MIN: usize = 4096;
/// Bytes of idle buffers a thread keeps at most.
const POOL_BYTES: usize = 256 << 20;

thread_local! {
    static POOL: RefCell<Vec<Vec<f64>>> = const { RefCell::new(Vec::new()) };
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let v = std::mem::take(&mut self.0);
        if v.capacity() < POOL_MIN {
            return;
        }
        let _ = POOL.try_with(|p| {
            let mut p = p.borrow_mut();
            let held: usize = p.iter().map(|b| b.capacity() * 8).sum();
            if p.len() < POOL_LEN && held + v.capacity() * 8 <= POOL_BYTES {
                p.push(v);
            }
        });
    }
}

/// `items` (exactly `n` of them) in a buffer from the pool when one fits.
fn collect(n: usize, items: impl Iterator<Item = f64>) -> Vec<f64> {
    let reused = if n < POOL_MIN {
        None
    } else {
        POOL.try_with(|p| {
            let mut p = p.borrow_mut();
            // The smallest idle buffer that fits, so large ones stay for large tensors.
            let best = p.iter().enumerate().filter(|(_, b)| b.capacity() >= n).min_by_key(|(_, b)| b.capacity());
            best.map(|(k, _)| k).map(|k| p.swap_remove(k))
        })
        .ok()
        .flatten()
    };
    let mut v = reused.unwrap_or_else(|| Vec::with_capacity(n));
    v.clear();
    v.extend(items);
    v
}

impl F64Tensor {
    /// `data` in row-major order, `data.len()` = `shape.numel()`.
    pub(crate) fn from_vec(data: Vec<f64>, shape: Shape) -> Result<Self> {
        if data.len() != shape.numel() {
            return Err(Error::Shape { field: "data", expected: shape, got: Shape::d1(data.len()) });
        }
        Ok(F64Tensor { data: Arc::new(Pooled(data)), shape })
    }

    /// Widens downloaded f32 values, in a buffer from the pool.
    pub(crate) fn from_f32(data: &[f32], shape: Shape) -> Result<Self> {
        Self::from_vec(collect(data.len(), data.iter().map(|v| f64::from(*v))), shape)
    }

    pub(crate) fn data(&self) -> &[f64] {
        &self.data
    }
}

/// Where element `i` of the result reads an operand.
#[derive(Clone, Copy)]
enum Mode {
    Full,
    /// One value per row of `c` results.
    Row(usize),
    Scalar,
}

fn mode(op: Shape, out: Shape, field: &'static str) -> Result<Mode> {
    Ok(match op.broadcast_to(out, field)? {
        Broadcast::Full => Mode::Full,
        Broadcast::Row => Mode::Row(out.last()),
        Broadcast::Scalar => Mode::Scalar,
    })
}

#[inline]
fn at(x: &[f64], m: Mode, i: usize) -> f64 {
    match m {
        Mode::Full => x[i],
        Mode::Row(c) => x[i / c],
        Mode::Scalar => x[0],
    }
}

fn flag(c: bool) -> f64 {
    if c { 1.0 } else { 0.0 }
}

/// `f` over two operands with broadcasting, one specialised loop per mode pair.
#[inline]
fn zip(a: &F64Tensor, b: &F64Tensor, f: impl Fn(f64, f64) -> f64) -> Result<F64Tensor> {
    let out = Shape::broadcast(&[a.shape, b.shape]);
    let (ma, mb) = (mode(a.shape, out, "lhs")?, mode(b.shape, out, "rhs")?);
    let (x, y) = (&a.data[..], &b.data[..]);
    let n = out.numel();
    let data: Vec<f64> = match (ma, mb) {
        (Mode::Full, Mode::Full) => collect(n, x.iter().zip(y).map(|(p, q)| f(*p, *q))),
        (Mode::Full, Mode::Scalar) => collect(n, x.iter().map(|p| f(*p, y[0]))),
        (Mode::Scalar, Mode::Full) => collect(n, y.iter().map(|q| f(x[0], *q))),
        (Mode::Full, Mode::Row(c)) if c > 0 => rows(n, c, x, y, &f),
        (Mode::Row(c), Mode::Full) if c > 0 => rows(n, c, y, x, |q, p| f(p, q)),
        _ => collect(n, (0..n).map(|i| f(at(x, ma, i), at(y, mb, i)))),
    };
    F64Tensor::from_vec(data, out)
}

/// `f(full[i], row[i / c])` into a buffer of `n`, row by row (no division
/// and no capacity check per element).
#[inline]
fn rows(n: usize, c: usize, full: &[f64], row: &[f64], f: impl Fn(f64, f64) -> f64) -> Vec<f64> {
    let mut v = collect(n, std::iter::repeat_n(0.0, n));
    for ((o, x), q) in v.chunks_exact_mut(c).zip(full.chunks_exact(c)).zip(row) {
        for (o, p) in o.iter_mut().zip(x) {
            *o = f(*p, *q);
        }
    }
    v
}

fn map(a: &F64Tensor, f: impl Fn(f64) -> f64) -> Result<F64Tensor> {
    F64Tensor::from_vec(collect(a.data.len(), a.data.iter().map(|x| f(*x))), a.shape)
}

/// A binary op against a constant, as `binary` with a (1) operand.
fn with_scalar(a: &F64Tensor, value: f64, op: Binary) -> Result<F64Tensor> {
    let v = F64Tensor::from_vec(vec![value], Shape::d1(1))?;
    a.binary(&v, op)
}

impl Tensor for F64Tensor {
    type Device = ();
    type Elem = f64;

    fn device(&self) {}
    fn shape(&self) -> Shape {
        self.shape
    }
    fn upload(_dev: &(), data: &[f64], shape: Shape) -> Result<Self> {
        Self::from_vec(collect(data.len(), data.iter().copied()), shape)
    }
    fn download(&self, out: &mut [f64]) -> Result<()> {
        if out.len() != self.data.len() {
            return Err(Error::Shape { field: "download", expected: self.shape, got: Shape::d1(out.len()) });
        }
        out.copy_from_slice(&self.data);
        Ok(())
    }
    fn full(_dev: &(), shape: Shape, value: f64) -> Result<Self> {
        Self::from_vec(collect(shape.numel(), std::iter::repeat_n(value, shape.numel())), shape)
    }
    fn iota_last(_dev: &(), shape: Shape) -> Result<Self> {
        let c = shape.last();
        Self::from_vec((0..shape.numel()).map(|i| (i % c) as f64).collect(), shape)
    }
    fn reshape(&self, shape: Shape) -> Result<Self> {
        if shape.numel() != self.shape.numel() {
            return Err(Error::Shape { field: "reshape", expected: self.shape, got: shape });
        }
        Ok(F64Tensor { data: self.data.clone(), shape })
    }
    fn unary(&self, op: Unary) -> Result<Self> {
        match op {
            Unary::Neg => map(self, |x| -x),
            Unary::Exp => map(self, f64::exp),
            Unary::Log => map(self, f64::ln),
            Unary::Abs => map(self, f64::abs),
            Unary::Sqr => map(self, |x| x * x),
            Unary::Sqrt => map(self, f64::sqrt),
            Unary::Recip => map(self, f64::recip),
            Unary::Positive => map(self, |x| flag(x > 0.0)),
            Unary::IsZero => map(self, |x| flag(x == 0.0)),
            Unary::IsFinite => map(self, |x| flag(x.is_finite())),
            Unary::Floor => map(self, f64::floor),
        }
    }
    fn binary(&self, rhs: &Self, op: Binary) -> Result<Self> {
        match op {
            Binary::Add => zip(self, rhs, |a, b| a + b),
            Binary::Sub => zip(self, rhs, |a, b| a - b),
            Binary::Mul => zip(self, rhs, |a, b| a * b),
            Binary::Div => zip(self, rhs, |a, b| a / b),
            Binary::Max => zip(self, rhs, f64::max),
            Binary::Min => zip(self, rhs, f64::min),
            Binary::Lt => zip(self, rhs, |a, b| flag(a < b)),
            Binary::Le => zip(self, rhs, |a, b| flag(a <= b)),
            Binary::Eq => zip(self, rhs, |a, b| flag(a == b)),
            Binary::MaskMul => zip(self, rhs, |a, b| if b == 0.0 { 0.0 } else { a * b }),
        }
    }
    fn select(cond: &Self, a: &Self, b: &Self) -> Result<Self> {
        let out = Shape::broadcast(&[cond.shape, a.shape, b.shape]);
        let mc = mode(cond.shape, out, "cond")?;
        let (ma, mb) = (mode(a.shape, out, "a")?, mode(b.shape, out, "b")?);
        let pick = |i| if at(&cond.data, mc, i) != 0.0 { at(&a.data, ma, i) } else { at(&b.data, mb, i) };
        let data = collect(out.numel(), (0..out.numel()).map(pick));
        Self::from_vec(data, out)
    }
    fn reduce_last(&self, op: Reduce) -> Result<Self> {
        let c = self.shape.last();
        let rows = self.data.chunks(c.max(1));
        let data = match op {
            Reduce::Sum => rows.map(|row| row.iter().fold(0.0, |s, x| s + *x)).collect(),
            Reduce::Max => rows.map(|row| row.iter().fold(f64::NEG_INFINITY, |m, x| m.max(*x))).collect(),
            Reduce::LogSumExp => rows
                .map(|row| {
                    let m = row.iter().fold(f64::NEG_INFINITY, |m, x| m.max(*x));
                    if !m.is_finite() {
                        return m;
                    }
                    m + row.iter().fold(0.0, |s, x| s + (*x - m).exp()).ln()
                })
                .collect(),
        };
        Self::from_vec(data, self.shape.without_last())
    }
    fn gather_last(&self, idx: &Self) -> Result<Self> {
        let c = self.shape.last();
        if idx.shape != self.shape.without_last() {
            return Err(Error::Shape { field: "gather index", expected: self.shape.without_last(), got: idx.shape });
        }
        let mut out = Vec::with_capacity(idx.data.len());
        for (r, j) in idx.data.iter().enumerate() {
            if !(*j >= 0.0 && (*j as usize) < c) {
                return Err(Error::Invalid {
                    field: "gather index",
                    pos: wapo_core::error::Pos::at1(r),
                    reason: "index out of range of the last axis",
                });
            }
            out.push(self.data[r * c + *j as usize]);
        }
        Self::from_vec(out, idx.shape)
    }
    fn segment_sum(&self, seg: &Self, n: usize) -> Result<Self> {
        if seg.shape != self.shape || self.shape.rank() != 1 {
            return Err(Error::Shape { field: "segment ids", expected: self.shape, got: seg.shape });
        }
        let mut out = vec![0.0; n];
        for (x, s) in self.data.iter().zip(seg.data.iter()) {
            if !(*s >= 0.0 && (*s as usize) < n) {
                return Err(Error::Invalid {
                    field: "segment ids",
                    pos: wapo_core::error::Pos::NONE,
                    reason: "segment id out of range",
                });
            }
            out[*s as usize] += *x;
        }
        Self::from_vec(out, Shape::d1(n))
    }
    fn take(&self, idx: &Self) -> Result<Self> {
        let n = self.data.len();
        let mut out = Vec::with_capacity(idx.data.len());
        for i in idx.data.iter() {
            if !(*i >= 0.0 && (*i as usize) < n) {
                return Err(Error::Invalid {
                    field: "take index",
                    pos: wapo_core::error::Pos::NONE,
                    reason: "index out of range",
                });
            }
            out.push(self.data[*i as usize]);
        }
        Self::from_vec(out, idx.shape)
    }
    fn add_scalar(&self, value: f64) -> Result<Self> {
        with_scalar(self, value, Binary::Add)
    }
    fn mul_scalar(&self, value: f64) -> Result<Self> {
        with_scalar(self, value, Binary::Mul)
    }
}

#[cfg(test)]
mod tests {
    use wapo_core::host::HostTensor;

    use super::*;

    /// Every primitive, on special values and every broadcast mode, gives
    /// `HostTensor<f64>`'s numbers bit for bit.
    #[test]
    fn same_numbers_as_host_tensor() {
        let vals = [0.0, -0.0, 1.0, -1.5, 2.25, 1e300, -1e-300, f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 3.0, 0.5];
        let full: Vec<f64> = (0..24).map(|i| vals[i % vals.len()] * (1.0 + i as f64 / 7.0)).collect();
        let rows: Vec<f64> = (0..4).map(|i| vals[(i * 5) % vals.len()]).collect();
        let both = |d: &[f64], s: Shape| {
            (F64Tensor::from_vec(d.to_vec(), s).unwrap(), HostTensor::<f64>::from_f64(d, s).unwrap())
        };
        let same = |what: String, a: &F64Tensor, b: &HostTensor<f64>| {
            assert_eq!(a.shape(), b.shape(), "{what}: shape");
            for (k, (x, y)) in a.data().iter().zip(b.data()).enumerate() {
                assert!(x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()), "{what}[{k}]: {x} vs {y}");
            }
        };
        let (fa, ha) = both(&full, Shape::d2(4, 6));
        let (fb, hb) = both(&full.iter().rev().copied().collect::<Vec<_>>(), Shape::d2(4, 6));
        let (fr, hr) = both(&rows, Shape::d1(4));
        let (fs, hs) = both(&[0.75], Shape::d1(1));
        let ops = [
            Binary::Add,
            Binary::Sub,
            Binary::Mul,
            Binary::Div,
            Binary::Max,
            Binary::Min,
            Binary::Lt,
            Binary::Le,
            Binary::Eq,
            Binary::MaskMul,
        ];
        let pairs = [
            (&fa, &ha, &fb, &hb),
            (&fa, &ha, &fr, &hr),
            (&fr, &hr, &fa, &ha),
            (&fa, &ha, &fs, &hs),
            (&fs, &hs, &fb, &hb),
        ];
        for op in ops {
            for (k, (f1, h1, f2, h2)) in pairs.iter().enumerate() {
                same(format!("{op:?} pair {k}"), &f1.binary(f2, op).unwrap(), &h1.binary(h2, op).unwrap());
            }
        }
        let unaries = [
            Unary::Neg,
            Unary::Exp,
            Unary::Log,
            Unary::Abs,
            Unary::Sqr,
            Unary::Sqrt,
            Unary::Recip,
            Unary::Positive,
            Unary::IsZero,
            Unary::IsFinite,
            Unary::Floor,
        ];
        for op in unaries {
            same(format!("{op:?}"), &fa.unary(op).unwrap(), &ha.unary(op).unwrap());
        }
        for op in [Reduce::Sum, Reduce::Max, Reduce::LogSumExp] {
            same(format!("{op:?}"), &fa.reduce_last(op).unwrap(), &ha.reduce_last(op).unwrap());
        }
        let cond = full.iter().map(|x| f64::from(*x > 0.5)).collect::<Vec<_>>();
        let (fc, hc) = both(&cond, Shape::d2(4, 6));
        same("select".into(), &F64Tensor::select(&fc, &fa, &fr).unwrap(), &HostTensor::select(&hc, &ha, &hr).unwrap());
        same("add_scalar".into(), &fa.add_scalar(-2.5).unwrap(), &ha.add_scalar(-2.5).unwrap());
        same("mul_scalar".into(), &fa.mul_scalar(-2.5).unwrap(), &ha.mul_scalar(-2.5).unwrap());
        let (fi, hi) = both(&[5.0, 0.0, 3.0, 1.0], Shape::d1(4));
        same("gather_last".into(), &fa.gather_last(&fi).unwrap(), &ha.gather_last(&hi).unwrap());
        let (fseg, hseg) = both(&[1.0, 0.0, 1.0, 2.0], Shape::d1(4));
        let (fx, hx) = both(&[0.5, 1.25, -3.0, 8.0], Shape::d1(4));
        same("segment_sum".into(), &fx.segment_sum(&fseg, 3).unwrap(), &hx.segment_sum(&hseg, 3).unwrap());
        same("take".into(), &fx.take(&fseg).unwrap(), &hx.take(&hseg).unwrap());
        let (fbad, hbad) = both(&[4.0], Shape::d1(1));
        assert_eq!(fx.take(&fbad).unwrap_err(), hx.take(&hbad).unwrap_err(), "take out of range");
        assert_eq!(fx.segment_sum(&fseg, 2).unwrap_err(), hx.segment_sum(&hseg, 2).unwrap_err(), "segment id ≥ n");
        let (fwide, hwide) = both(&full, Shape::d1(24));
        assert_eq!(fa.binary(&fwide, Binary::Add).unwrap_err(), ha.binary(&hwide, Binary::Add).unwrap_err(), "shapes");
    }
}

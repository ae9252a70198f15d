//! The `Tensor` trait: a few primitives a backend must provide. Every
//! composite of the objective (ratio, clip, keep mask, weights, loss,
//! gradient, entropy, Σp², bins) is built from them in generic code, so an
//! engine that implements this trait gets the whole objective; a backend
//! overrides a composite (see [`Tensor::logits_objective`]) only to go faster.
//!
//! Conventions: a tensor is rank 1..=3, row-major; "rows" are everything but
//! the last axis. Index tensors (tokens, group ids) are ordinary float tensors
//! holding small non-negative integers (exact in f32 below 2^24).

use crate::error::{Error, Result};
use crate::shape::Shape;

/// Elementwise unary operations.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Unary {
    Neg,
    Exp,
    /// Natural log; `log(0) = -inf`.
    Log,
    Abs,
    Sqr,
    Sqrt,
    Recip,
    /// 1 where the value is > 0, else 0.
    Positive,
    /// 1 where the value is 0, else 0 (logical not of a 0/1 mask).
    IsZero,
    /// 1 where the value is finite (not NaN, not ±inf), else 0. Backends
    /// should test the exponent bits so that fast-math cannot fold it away.
    IsFinite,
    Floor,
}

/// Elementwise binary operations. Comparisons give 1 or 0.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Binary {
    Add,
    Sub,
    Mul,
    Div,
    Max,
    Min,
    Lt,
    Le,
    Eq,
    /// `a · b` where `b ≠ 0`, else 0 — a product that treats `0 · ±inf` as 0,
    /// so masked −inf entries never turn into NaN.
    MaskMul,
}

impl Unary {
    /// Every unary op, for tests and dispatch tables.
    pub const ALL: [Unary; 11] = [
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
}

impl Binary {
    /// Every binary op, for tests and dispatch tables.
    pub const ALL: [Binary; 10] = [
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
}

// A new variant fails to compile here until it is added to `ALL` above.
const _: () = {
    const fn listed_unary(op: Unary) {
        match op {
            Unary::Neg
            | Unary::Exp
            | Unary::Log
            | Unary::Abs
            | Unary::Sqr
            | Unary::Sqrt
            | Unary::Recip
            | Unary::Positive
            | Unary::IsZero
            | Unary::IsFinite
            | Unary::Floor => {}
        }
    }
    const fn listed_binary(op: Binary) {
        match op {
            Binary::Add
            | Binary::Sub
            | Binary::Mul
            | Binary::Div
            | Binary::Max
            | Binary::Min
            | Binary::Lt
            | Binary::Le
            | Binary::Eq
            | Binary::MaskMul => {}
        }
    }
    listed_unary(Unary::Neg);
    listed_binary(Binary::Add);
};

/// Reductions over the last axis.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Reduce {
    Sum,
    Max,
    /// Stable log-sum-exp: `m + log Σ exp(x − m)`; a row of all −inf gives −inf.
    LogSumExp,
}

/// A tensor of a backend. `Clone` should be cheap (a shared handle).
///
/// Broadcasting in [`Tensor::binary`] and [`Tensor::select`]: the result has
/// the shape of the largest operand; any operand may instead have that shape
/// without its last axis (one value per row, repeated along the last axis) or
/// hold a single element.
pub trait Tensor: Sized + Clone {
    /// Where tensors live (a device handle; `()` for the host).
    type Device: Clone;

    fn device(&self) -> Self::Device;
    fn shape(&self) -> Shape;

    /// Uploads `data` (row-major, `shape.numel()` values) converted to the
    /// backend's element type.
    fn upload(dev: &Self::Device, data: &[f64], shape: Shape) -> Result<Self>;
    /// Downloads into `out` (`shape().numel()` values) as f64.
    fn download(&self, out: &mut [f64]) -> Result<()>;
    /// [`Tensor::upload`] from f32 data (a model's logits): a backend in f32
    /// overrides it to skip the f64 copy, which for an LM head's (N, T, V)
    /// logits is the largest buffer of a step.
    #[cfg(feature = "alloc")]
    fn upload_f32(dev: &Self::Device, data: &[f32], shape: Shape) -> Result<Self> {
        let wide: alloc::vec::Vec<f64> = data.iter().map(|&x| x as f64).collect();
        Self::upload(dev, &wide, shape)
    }
    /// [`Tensor::download`] into f32 (values rounded to f32).
    #[cfg(feature = "alloc")]
    fn download_f32(&self, out: &mut [f32]) -> Result<()> {
        let mut wide = alloc::vec![0.0f64; out.len()];
        self.download(&mut wide)?;
        for (o, w) in out.iter_mut().zip(&wide) {
            *o = *w as f32;
        }
        Ok(())
    }
    /// A tensor filled with `value`.
    fn full(dev: &Self::Device, shape: Shape, value: f64) -> Result<Self>;
    /// A tensor whose value is the index along the last axis.
    fn iota_last(dev: &Self::Device, shape: Shape) -> Result<Self>;
    /// The same data viewed with another shape of equal element count.
    fn reshape(&self, shape: Shape) -> Result<Self>;

    fn unary(&self, op: Unary) -> Result<Self>;
    fn binary(&self, rhs: &Self, op: Binary) -> Result<Self>;
    /// `cond ≠ 0 ? a : b`, with the broadcasting of [`Tensor::binary`] for `a` and `b`.
    fn select(cond: &Self, a: &Self, b: &Self) -> Result<Self>;
    /// Reduces the last axis: (.., C) → (..); a rank-1 (C) tensor gives (1).
    fn reduce_last(&self, op: Reduce) -> Result<Self>;
    /// `out[r] = self[r, idx[r]]` for a (.., C) tensor and an index tensor of
    /// the row shape.
    fn gather_last(&self, idx: &Self) -> Result<Self>;
    /// `out[s] = Σ_{r: seg[r] = s} self[r]` for rank-1 `self` and `seg` of equal
    /// length, `s < n`.
    fn segment_sum(&self, seg: &Self, n: usize) -> Result<Self>;
    /// `out[r] = self[idx[r]]` for rank-1 `self`: gathers per-segment values
    /// back to the members.
    fn take(&self, idx: &Self) -> Result<Self>;

    // ---- composites: default methods over the primitives ----

    fn add(&self, rhs: &Self) -> Result<Self> {
        self.binary(rhs, Binary::Add)
    }
    fn sub(&self, rhs: &Self) -> Result<Self> {
        self.binary(rhs, Binary::Sub)
    }
    fn mul(&self, rhs: &Self) -> Result<Self> {
        self.binary(rhs, Binary::Mul)
    }
    fn div(&self, rhs: &Self) -> Result<Self> {
        self.binary(rhs, Binary::Div)
    }
    fn scalar(&self, value: f64) -> Result<Self> {
        Self::full(&self.device(), Shape::d1(1), value)
    }
    fn add_scalar(&self, value: f64) -> Result<Self> {
        self.add(&self.scalar(value)?)
    }
    fn mul_scalar(&self, value: f64) -> Result<Self> {
        self.mul(&self.scalar(value)?)
    }
    fn max_scalar(&self, value: f64) -> Result<Self> {
        self.binary(&self.scalar(value)?, Binary::Max)
    }
    fn min_scalar(&self, value: f64) -> Result<Self> {
        self.binary(&self.scalar(value)?, Binary::Min)
    }
    fn exp(&self) -> Result<Self> {
        self.unary(Unary::Exp)
    }
    fn sum_last(&self) -> Result<Self> {
        self.reduce_last(Reduce::Sum)
    }
    /// The sum of every element, as a (1) tensor.
    fn sum_all(&self) -> Result<Self> {
        self.reshape(Shape::d1(self.shape().numel()))?.reduce_last(Reduce::Sum)
    }
    /// The max of every element, as a (1) tensor.
    fn max_all(&self) -> Result<Self> {
        self.reshape(Shape::d1(self.shape().numel()))?.reduce_last(Reduce::Max)
    }
    /// A rank-1 (or any) tensor broadcast along a new last axis of length `c`.
    fn broadcast_last(&self, c: usize) -> Result<Self> {
        let shape = self.shape().with_last(c).ok_or(Error::Shape {
            field: "broadcast_last",
            expected: Shape::d2(self.shape().numel(), c),
            got: self.shape(),
        })?;
        Self::full(&self.device(), shape, 0.0)?.add(self)
    }
    /// Downloads a tensor that holds one value.
    fn item(&self) -> Result<f64> {
        let mut v = [0.0];
        if self.shape().numel() != 1 {
            return Err(Error::Shape { field: "item", expected: Shape::d1(1), got: self.shape() });
        }
        self.download(&mut v)?;
        Ok(v[0])
    }

    /// The whole logits-level objective: log-probs, entropy, Σp², loss and
    /// ∂loss/∂logits in one call. The default composes the primitives
    /// ([`crate::logits::composed`]); a backend may fuse it, and an
    /// equivalence test pins the override to this default.
    fn logits_objective(
        cfg: &crate::objective::ObjectiveConfig,
        batch: &crate::logits::LogitsBatch<'_, Self>,
    ) -> Result<crate::objective::Output<Self>> {
        crate::logits::composed(cfg, batch)
    }
}

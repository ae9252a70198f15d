//! The clipped surrogate of `OBJECTIVE.md` §4 and its derivative, with
//! autograd's tie rule, so gradients match the authors' PyTorch trainer.

use crate::error::Result;
use crate::tensor::{Binary, Tensor};

/// L and ∂L/∂x for L = −min(x·A, clamp(x, lo, hi)·A).
pub struct Surrogate<T> {
    /// (N, T) per-token loss.
    pub loss: T,
    /// (N, T) ∂L/∂x.
    pub dloss_dx: T,
    /// (N, T) 1 where clamp(x) ≠ x.
    pub clipped: T,
}

/// `x` (N, T) ratio, `adv` (N) advantage per sequence; `lo` may be −∞.
///
/// autograd's rules: `min(a, b)` sends the gradient to the smaller branch and
/// splits it evenly on a tie; `clamp` passes it strictly inside (lo, hi) here,
/// so a ratio exactly on the active bound gets half of −A (see the spec).
pub fn clipped_surrogate<T: Tensor>(x: &T, adv: &T, lo: f64, hi: f64) -> Result<Surrogate<T>> {
    let clamped = x.max_scalar(lo)?.min_scalar(hi)?;
    let a = x.mul(adv)?;
    let b = clamped.mul(adv)?;
    let inside = x.scalar(lo)?.binary(x, Binary::Lt)?.mul(&x.binary(&x.scalar(hi)?, Binary::Lt)?)?;
    let a_lt_b = a.binary(&b, Binary::Lt)?;
    let b_lt_a = b.binary(&a, Binary::Lt)?;
    let tie = a.binary(&b, Binary::Eq)?;
    // gate = 1[a<b] + 1[a>b]·inside + 1[a=b]·(1 + inside)/2
    let gate = a_lt_b.add(&b_lt_a.mul(&inside)?)?.add(&tie.mul(&inside.add_scalar(1.0)?)?.mul_scalar(0.5)?)?;
    let dloss_dx = gate.mul(adv)?.mul_scalar(-1.0)?;
    let loss = a.binary(&b, Binary::Min)?.mul_scalar(-1.0)?;
    let clipped = clamped.binary(x, Binary::Eq)?.unary(crate::tensor::Unary::IsZero)?;
    Ok(Surrogate { loss, dloss_dx, clipped })
}

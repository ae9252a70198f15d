//! Reductions over the last axis and the index primitives of
//! [`super::HostTensor`]. Each row is reduced sequentially, left to right
//! (rows in parallel with `rayon`), and segment sums add in row order, so the
//! numbers are those of the plain loops whatever the thread count.

use alloc::vec::Vec;

use super::pool::take_buffer;
use crate::error::{Error, Pos, Result};
use crate::scalar::Scalar;
use crate::tensor::Reduce;

fn reduce_row<E: Scalar>(row: &[E], op: Reduce) -> E {
    match op {
        Reduce::Sum => row.iter().fold(E::zero(), |s, x| s + *x),
        Reduce::Max => row.iter().fold(E::neg_infinity(), |m, x| m.max(*x)),
        Reduce::LogSumExp => {
            let m = row.iter().fold(E::neg_infinity(), |m, x| m.max(*x));
            if !m.is_finite() {
                return m;
            }
            m + row.iter().fold(E::zero(), |s, x| s + (*x - m).exp()).ln()
        }
    }
}

/// One value per row of `c` (a last axis of 0 gives no rows).
pub(super) fn reduce_last<E: Scalar>(x: &[E], c: usize, op: Reduce) -> Vec<E> {
    let c = c.max(1);
    let mut out = take_buffer::<E>(x.len().div_ceil(c));
    #[cfg(feature = "rayon")]
    if x.len() >= super::elementwise::PAR_GRAIN {
        use rayon::prelude::*;
        let min = super::elementwise::PAR_GRAIN.div_ceil(c);
        out.par_iter_mut().zip(x.par_chunks(c)).with_min_len(min).for_each(|(o, row)| *o = reduce_row(row, op));
        return out;
    }
    for (o, row) in out.iter_mut().zip(x.chunks(c)) {
        *o = reduce_row(row, op);
    }
    out
}

/// An index held in a float tensor, when it is in `0..n`.
#[inline]
fn index<E: Scalar>(j: E, n: usize) -> Option<usize> {
    let j = j.as_f64();
    (j >= 0.0 && (j as usize) < n).then_some(j as usize)
}

/// `out[r] = x[r, idx[r]]` over rows of `c`.
pub(super) fn gather_last<E: Scalar>(x: &[E], c: usize, idx: &[E]) -> Result<Vec<E>> {
    let mut out = take_buffer::<E>(idx.len());
    for (r, (o, j)) in out.iter_mut().zip(idx).enumerate() {
        let Some(j) = index(*j, c) else {
            return Err(Error::Invalid {
                field: "gather index",
                pos: Pos::at1(r),
                reason: "index out of range of the last axis",
            });
        };
        *o = x[r * c + j];
    }
    Ok(out)
}

/// `out[s] = Σ_{r: seg[r] = s} x[r]`, added in row order.
pub(super) fn segment_sum<E: Scalar>(x: &[E], seg: &[E], n: usize) -> Result<Vec<E>> {
    let mut out = alloc::vec![E::zero(); n];
    for (v, s) in x.iter().zip(seg) {
        let Some(s) = index(*s, n) else {
            return Err(Error::Invalid { field: "segment ids", pos: Pos::NONE, reason: "segment id out of range" });
        };
        out[s] = out[s] + *v;
    }
    Ok(out)
}

/// `out[r] = x[idx[r]]`.
pub(super) fn take<E: Scalar>(x: &[E], idx: &[E]) -> Result<Vec<E>> {
    let mut out = take_buffer::<E>(idx.len());
    for (o, i) in out.iter_mut().zip(idx) {
        let Some(i) = index(*i, x.len()) else {
            return Err(Error::Invalid { field: "take index", pos: Pos::NONE, reason: "index out of range" });
        };
        *o = x[i];
    }
    Ok(out)
}

//! The elementwise primitives of [`super::HostTensor`]: the operation and
//! each operand's broadcast are chosen once per call, not once per element,
//! so each primitive is one tight loop per chunk that the compiler
//! vectorizes. With the `rayon` feature, outputs of [`PAR_GRAIN`] elements or
//! more are filled in parallel chunks; every element is computed by the same
//! expression either way, so the numbers do not depend on the thread count.

use alloc::vec::Vec;

use super::pool::take_buffer;
use crate::error::Result;
use crate::scalar::Scalar;
use crate::shape::{Broadcast, Shape};

/// Elements per parallel task; smaller outputs run on the calling thread.
#[cfg(feature = "rayon")]
pub(super) const PAR_GRAIN: usize = 1 << 15;

/// An operand bound to its data and its broadcast onto the output.
#[derive(Clone, Copy)]
pub(super) struct Operand<'a, E> {
    data: &'a [E],
    mode: Broadcast,
}

/// What one chunk of the output reads of an operand.
#[derive(Clone, Copy)]
enum Lane<'a, E> {
    Slice(&'a [E]),
    Value(E),
}

impl<E: Copy> Lane<'_, E> {
    #[inline(always)]
    fn get(&self, j: usize) -> E {
        match *self {
            Lane::Slice(s) => s[j],
            Lane::Value(v) => v,
        }
    }
}

impl<'a, E: Scalar> Operand<'a, E> {
    pub(super) fn new(data: &'a [E], shape: Shape, out: Shape, field: &'static str) -> Result<Self> {
        Ok(Operand { data, mode: shape.broadcast_to(out, field)? })
    }
    fn per_row(&self) -> bool {
        self.mode == Broadcast::Row
    }
    /// The operand over output elements `start..start + len`, which lie in
    /// one row of `c` when any operand broadcasts per row.
    #[inline(always)]
    fn lane(&self, start: usize, len: usize, c: usize) -> Lane<'a, E> {
        match self.mode {
            Broadcast::Full => Lane::Slice(&self.data[start..start + len]),
            Broadcast::Row => Lane::Value(self.data[start / c]),
            Broadcast::Scalar => Lane::Value(self.data[0]),
        }
    }
}

/// `n` outputs filled chunk by chunk by `f(first index, chunk)`: rows of `c`
/// when `rows` is set, else chunks of any length.
fn fill<E: Scalar>(n: usize, c: usize, rows: bool, f: impl Fn(usize, &mut [E]) + Sync) -> Vec<E> {
    let mut out = take_buffer::<E>(n);
    if n == 0 {
        return out;
    }
    #[cfg(feature = "rayon")]
    if n >= PAR_GRAIN {
        use rayon::prelude::*;
        let (width, min) = if rows { (c.max(1), PAR_GRAIN.div_ceil(c.max(1))) } else { (PAR_GRAIN, 1) };
        out.par_chunks_mut(width).enumerate().with_min_len(min).for_each(|(k, o)| f(k * width, o));
        return out;
    }
    let width = if rows { c.max(1) } else { n };
    for (k, o) in out.chunks_mut(width).enumerate() {
        f(k * width, o);
    }
    out
}

pub(super) fn map<E: Scalar>(x: &[E], f: impl Fn(E) -> E + Sync) -> Vec<E> {
    fill(x.len(), 0, false, |s, o| {
        for (o, v) in o.iter_mut().zip(&x[s..]) {
            *o = f(*v);
        }
    })
}

/// `f(a, b)` over the broadcast shape `out`, one specialised loop per pair of lanes.
pub(super) fn zip<E: Scalar>(out: Shape, a: Operand<'_, E>, b: Operand<'_, E>, f: impl Fn(E, E) -> E + Sync) -> Vec<E> {
    let c = out.last();
    fill(out.numel(), c, a.per_row() || b.per_row(), |s, o| match (a.lane(s, o.len(), c), b.lane(s, o.len(), c)) {
        (Lane::Slice(x), Lane::Slice(y)) => o.iter_mut().zip(x.iter().zip(y)).for_each(|(o, (x, y))| *o = f(*x, *y)),
        (Lane::Slice(x), Lane::Value(y)) => o.iter_mut().zip(x).for_each(|(o, x)| *o = f(*x, y)),
        (Lane::Value(x), Lane::Slice(y)) => o.iter_mut().zip(y).for_each(|(o, y)| *o = f(x, *y)),
        (Lane::Value(x), Lane::Value(y)) => o.fill(f(x, y)),
    })
}

/// `cond ≠ 0 ? a : b` over the broadcast shape `out`.
pub(super) fn select<E: Scalar>(out: Shape, cond: Operand<'_, E>, a: Operand<'_, E>, b: Operand<'_, E>) -> Vec<E> {
    let c = out.last();
    let rows = cond.per_row() || a.per_row() || b.per_row();
    fill(out.numel(), c, rows, |s, o| {
        let n = o.len();
        let (k, x, y) = (cond.lane(s, n, c), a.lane(s, n, c), b.lane(s, n, c));
        for (j, o) in o.iter_mut().enumerate() {
            *o = if k.get(j) != E::zero() { x.get(j) } else { y.get(j) };
        }
    })
}

pub(super) fn full<E: Scalar>(n: usize, value: E) -> Vec<E> {
    let mut out = take_buffer::<E>(n);
    out.fill(value);
    out
}

pub(super) fn iota_last<E: Scalar>(shape: Shape) -> Vec<E> {
    fill(shape.numel(), shape.last(), true, |_, o| {
        for (j, o) in o.iter_mut().enumerate() {
            *o = E::of_f64(j as f64);
        }
    })
}

/// `data` converted element by element into a buffer of the pool.
pub(super) fn convert<A: Copy + Sync, E: Scalar>(data: &[A], f: impl Fn(A) -> E + Sync) -> Vec<E> {
    let mut out = take_buffer::<E>(data.len());
    for (o, v) in out.iter_mut().zip(data) {
        *o = f(*v);
    }
    out
}

//! Elementwise kernels with the broadcasting of `HostTensor`: an operand is
//! the full output shape, one value per row (the output's shape without its
//! last axis), or a single value.

use rayon::prelude::*;
use wapo_core::shape::Broadcast;
use wapo_core::{Binary, Result, Shape, Unary};

use super::buffer;

/// Elements per rayon task; smaller outputs run on the calling thread.
const PAR_GRAIN: usize = 1 << 15;

/// One operand as seen by one output row.
#[derive(Clone, Copy)]
enum Lane<'a> {
    Slice(&'a [f32]),
    Value(f32),
}

impl Lane<'_> {
    #[inline(always)]
    fn get(&self, j: usize) -> f32 {
        match *self {
            Lane::Slice(s) => s[j],
            Lane::Value(v) => v,
        }
    }
}

/// An operand bound to its data and broadcast mode.
#[derive(Clone, Copy)]
struct Operand<'a> {
    data: &'a [f32],
    mode: Broadcast,
}

impl<'a> Operand<'a> {
    fn new(data: &'a [f32], shape: Shape, out: Shape, field: &'static str) -> Result<Self> {
        Ok(Operand { data, mode: shape.broadcast_to(out, field)? })
    }
    #[inline(always)]
    fn row(&self, r: usize, c: usize) -> Lane<'a> {
        match self.mode {
            Broadcast::Full => Lane::Slice(&self.data[r * c..(r + 1) * c]),
            Broadcast::Row => Lane::Value(self.data[r]),
            Broadcast::Scalar => Lane::Value(self.data[0]),
        }
    }
}

/// Fills an output of `shape` row by row (rows over the last axis), in
/// parallel for large outputs.
fn fill_rows(shape: Shape, row: impl Fn(usize, &mut [f32]) + Sync) -> Vec<f32> {
    let n = shape.numel();
    let mut out = buffer::take(n);
    if n == 0 {
        return out;
    }
    let c = shape.last();
    if n < PAR_GRAIN {
        for (r, o) in out.chunks_mut(c).enumerate() {
            row(r, o);
        }
    } else {
        out.par_chunks_mut(c).enumerate().with_min_len(PAR_GRAIN.div_ceil(c)).for_each(|(r, o)| row(r, o));
    }
    out
}

pub(crate) fn unary(x: &[f32], op: Unary) -> Vec<f32> {
    fn map(x: &[f32], f: impl Fn(f32) -> f32 + Sync) -> Vec<f32> {
        let mut out = buffer::take(x.len());
        if x.len() < PAR_GRAIN {
            out.iter_mut().zip(x).for_each(|(o, v)| *o = f(*v));
        } else {
            out.par_chunks_mut(PAR_GRAIN)
                .zip(x.par_chunks(PAR_GRAIN))
                .for_each(|(o, x)| o.iter_mut().zip(x).for_each(|(o, v)| *o = f(*v)));
        }
        out
    }
    let flag = |c: bool| if c { 1.0 } else { 0.0 };
    match op {
        Unary::Neg => map(x, |v| -v),
        Unary::Exp => map(x, f32::exp),
        Unary::Log => map(x, f32::ln),
        Unary::Abs => map(x, f32::abs),
        Unary::Sqr => map(x, |v| v * v),
        Unary::Sqrt => map(x, f32::sqrt),
        Unary::Recip => map(x, f32::recip),
        Unary::Positive => map(x, |v| flag(v > 0.0)),
        Unary::IsZero => map(x, |v| flag(v == 0.0)),
        // The exponent bits, not `is_finite`, so no float mode can fold it.
        Unary::IsFinite => map(x, |v| flag(v.to_bits() & 0x7f80_0000 != 0x7f80_0000)),
        Unary::Floor => map(x, f32::floor),
    }
}

pub(crate) fn binary((a, sa): (&[f32], Shape), (b, sb): (&[f32], Shape), op: Binary) -> Result<(Vec<f32>, Shape)> {
    let out = Shape::broadcast(&[sa, sb]);
    let a = Operand::new(a, sa, out, "lhs")?;
    let b = Operand::new(b, sb, out, "rhs")?;
    let flag = |c: bool| if c { 1.0 } else { 0.0 };
    let data = match op {
        Binary::Add => zip2(out, a, b, |x, y| x + y),
        Binary::Sub => zip2(out, a, b, |x, y| x - y),
        Binary::Mul => zip2(out, a, b, |x, y| x * y),
        Binary::Div => zip2(out, a, b, |x, y| x / y),
        Binary::Max => zip2(out, a, b, f32::max),
        Binary::Min => zip2(out, a, b, f32::min),
        Binary::Lt => zip2(out, a, b, |x, y| flag(x < y)),
        Binary::Le => zip2(out, a, b, |x, y| flag(x <= y)),
        Binary::Eq => zip2(out, a, b, |x, y| flag(x == y)),
        Binary::MaskMul => zip2(out, a, b, |x, y| if y == 0.0 { 0.0 } else { x * y }),
    };
    Ok((data, out))
}

fn zip2(out: Shape, a: Operand<'_>, b: Operand<'_>, f: impl Fn(f32, f32) -> f32 + Sync) -> Vec<f32> {
    let c = out.last();
    fill_rows(out, |r, o| match (a.row(r, c), b.row(r, c)) {
        // Separate loops per case so that each one vectorizes.
        (Lane::Slice(x), Lane::Slice(y)) => o.iter_mut().zip(x.iter().zip(y)).for_each(|(o, (x, y))| *o = f(*x, *y)),
        (Lane::Slice(x), Lane::Value(y)) => o.iter_mut().zip(x).for_each(|(o, x)| *o = f(*x, y)),
        (Lane::Value(x), Lane::Slice(y)) => o.iter_mut().zip(y).for_each(|(o, y)| *o = f(x, *y)),
        (Lane::Value(x), Lane::Value(y)) => o.fill(f(x, y)),
    })
}

pub(crate) fn select(
    (c, sc): (&[f32], Shape),
    (a, sa): (&[f32], Shape),
    (b, sb): (&[f32], Shape),
) -> Result<(Vec<f32>, Shape)> {
    let out = Shape::broadcast(&[sc, sa, sb]);
    let cond = Operand::new(c, sc, out, "cond")?;
    let a = Operand::new(a, sa, out, "a")?;
    let b = Operand::new(b, sb, out, "b")?;
    let w = out.last();
    let data = fill_rows(out, |r, o| {
        let (cr, ar, br) = (cond.row(r, w), a.row(r, w), b.row(r, w));
        for (j, o) in o.iter_mut().enumerate() {
            *o = if cr.get(j) != 0.0 { ar.get(j) } else { br.get(j) };
        }
    });
    Ok((data, out))
}

pub(crate) fn full(n: usize, value: f32) -> Vec<f32> {
    let mut out = buffer::take(n);
    out.fill(value);
    out
}

pub(crate) fn iota_last(shape: Shape) -> Vec<f32> {
    fill_rows(shape, |_, o| o.iter_mut().enumerate().for_each(|(j, o)| *o = j as f32))
}

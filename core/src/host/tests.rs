//! The fast loops against the plain per-element loops they replace (the
//! oracle's definition: one `match` per element, broadcast resolved per
//! element): bit for bit, for f64 and f32, on special values, every broadcast
//! mode, sizes below and above the parallel grain, and reused pool buffers.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use super::*;
use crate::shape::Broadcast;

/// The per-element definitions of the primitives.
mod plain {
    use super::*;

    pub fn unary<E: Scalar>(op: Unary, x: E) -> E {
        let (zero, one) = (E::zero(), E::one());
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

    pub fn binary<E: Scalar>(op: Binary, a: E, b: E) -> E {
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

    fn at<E: Scalar>(x: &HostTensor<E>, out: Shape, i: usize) -> E {
        match x.shape.broadcast_to(out, "x").unwrap() {
            Broadcast::Full => x.data()[i],
            Broadcast::Row => x.data()[i / out.last()],
            Broadcast::Scalar => x.data()[0],
        }
    }

    pub fn zip<E: Scalar>(a: &HostTensor<E>, b: &HostTensor<E>, op: Binary) -> Vec<E> {
        let out = Shape::broadcast(&[a.shape, b.shape]);
        (0..out.numel()).map(|i| binary(op, at(a, out, i), at(b, out, i))).collect()
    }

    pub fn select<E: Scalar>(c: &HostTensor<E>, a: &HostTensor<E>, b: &HostTensor<E>) -> Vec<E> {
        let out = Shape::broadcast(&[c.shape, a.shape, b.shape]);
        (0..out.numel()).map(|i| if at(c, out, i) != E::zero() { at(a, out, i) } else { at(b, out, i) }).collect()
    }

    pub fn reduce<E: Scalar>(x: &HostTensor<E>, op: Reduce) -> Vec<E> {
        x.data()
            .chunks(x.shape.last().max(1))
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
            .collect()
    }
}

const UNARY: [Unary; 11] = [
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
const BINARY: [Binary; 10] = [
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

fn same<E: Scalar>(what: &str, got: &[E], want: &[E]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (k, (x, y)) in got.iter().zip(want).enumerate() {
        let (x, y) = (x.as_f64(), y.as_f64());
        assert!(x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()), "{what}[{k}]: {x:e} vs {y:e}");
    }
}

/// Values with every special case, scaled so that rows differ.
fn values(n: usize, salt: usize) -> Vec<f64> {
    let special = [0.0, -0.0, 1.0, -1.5, 2.25, 1e300, -1e-300, f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 3.0, 0.5];
    (0..n).map(|i| special[(i * 7 + salt) % special.len()] * (1.0 + ((i * 31 + salt) % 97) as f64 / 7.0)).collect()
}

fn every_primitive<E: Scalar>(rows: usize, c: usize) {
    let up = |d: &[f64], s: Shape| HostTensor::<E>::from_f64(d, s).unwrap();
    let full = Shape::d2(rows, c);
    let a = up(&values(rows * c, 0), full);
    let b = up(&values(rows * c, 5), full);
    let r = up(&values(rows, 3), Shape::d1(rows));
    let s = up(&[0.75], Shape::d1(1));
    let at = |what: &str| format!("{}×{c} {} {what}", rows, E::NAME);
    for op in BINARY {
        for (k, (x, y)) in [(&a, &b), (&a, &r), (&r, &a), (&a, &s), (&s, &b), (&s, &s)].into_iter().enumerate() {
            same(&at(&format!("{op:?} pair {k}")), x.binary(y, op).unwrap().data(), &plain::zip(x, y, op));
        }
    }
    for op in UNARY {
        let want: Vec<E> = a.data().iter().map(|x| plain::unary(op, *x)).collect();
        same(&at(&format!("{op:?}")), a.unary(op).unwrap().data(), &want);
    }
    for op in [Reduce::Sum, Reduce::Max, Reduce::LogSumExp] {
        same(&at(&format!("{op:?}")), a.reduce_last(op).unwrap().data(), &plain::reduce(&a, op));
    }
    let cond = up(&a.to_f64().iter().map(|x| f64::from(*x > 0.5)).collect::<Vec<_>>(), full);
    let cr = up(&r.to_f64().iter().map(|x| f64::from(*x > 0.5)).collect::<Vec<_>>(), Shape::d1(rows));
    for (k, (c, x, y)) in [(&cond, &a, &r), (&cr, &b, &a), (&cond, &s, &b), (&s, &a, &b)].into_iter().enumerate() {
        same(&at(&format!("select {k}")), HostTensor::select(c, x, y).unwrap().data(), &plain::select(c, x, y));
    }
    let iota: Vec<E> = (0..rows * c).map(|i| E::of_f64((i % c) as f64)).collect();
    same(&at("iota_last"), HostTensor::<E>::iota_last(&(), full).unwrap().data(), &iota);
    same(&at("full"), HostTensor::<E>::full(&(), full, -2.5).unwrap().data(), &vec![E::of_f64(-2.5); rows * c]);
    let idx: Vec<f64> = (0..rows).map(|i| ((i * 13) % c) as f64).collect();
    let want: Vec<E> = idx.iter().enumerate().map(|(i, j)| a.data()[i * c + *j as usize]).collect();
    same(&at("gather_last"), a.gather_last(&up(&idx, Shape::d1(rows))).unwrap().data(), &want);
    let flat = a.reshape(Shape::d1(rows * c)).unwrap();
    let seg: Vec<f64> = (0..rows * c).map(|i| ((i * 5) % 7) as f64).collect();
    let mut sums = vec![E::zero(); 7];
    for (x, g) in flat.data().iter().zip(&seg) {
        sums[*g as usize] = sums[*g as usize] + *x;
    }
    let seg = up(&seg, Shape::d1(rows * c));
    same(&at("segment_sum"), flat.segment_sum(&seg, 7).unwrap().data(), &sums);
    let idx: Vec<f64> = (0..rows * c).map(|i| ((i * 5) % (rows * c)) as f64).collect();
    let picked: Vec<E> = idx.iter().map(|i| flat.data()[*i as usize]).collect();
    same(&at("take"), flat.take(&up(&idx, Shape::d1(rows * c))).unwrap().data(), &picked);
    let mut back = vec![0.0f32; rows * c];
    a.download_f32(&mut back).unwrap();
    let want: Vec<f32> = a.data().iter().map(|x| x.as_f64() as f32).collect();
    same(&at("download_f32"), &back, &want);
}

#[test]
fn fast_loops_give_the_plain_loops_numbers() {
    // Small, odd widths, and sizes above the parallel grain; each size twice,
    // the second time on buffers the first one gave back to the pool.
    for (rows, c) in [(4, 6), (3, 1), (1, 37), (64, 64), (8, 4096), (300, 129), (70_000, 1)] {
        for _ in 0..2 {
            every_primitive::<f64>(rows, c);
            every_primitive::<f32>(rows, c);
        }
    }
}

#[test]
fn errors_are_those_of_the_plain_loops() {
    let up = |d: &[f64], s: Shape| HostTensor::<f64>::from_f64(d, s).unwrap();
    let x = up(&[0.5, 1.25, -3.0, 8.0], Shape::d1(4));
    let bad = up(&[4.0], Shape::d1(1));
    let take = x.take(&bad).unwrap_err();
    assert_eq!(
        take,
        Error::Invalid { field: "take index", pos: crate::error::Pos::NONE, reason: "index out of range" }
    );
    let seg = up(&[1.0, 0.0, 1.0, 2.0], Shape::d1(4));
    let e = x.segment_sum(&seg, 2).unwrap_err();
    let reason = "segment id out of range";
    assert_eq!(e, Error::Invalid { field: "segment ids", pos: crate::error::Pos::NONE, reason });
    let m = up(&[1.0; 6], Shape::d2(2, 3));
    let e = m.gather_last(&up(&[0.0, 3.0], Shape::d1(2))).unwrap_err();
    let reason = "index out of range of the last axis";
    assert_eq!(e, Error::Invalid { field: "gather index", pos: crate::error::Pos::at1(1), reason });
    let e = m.binary(&up(&[1.0; 3], Shape::d1(3)), Binary::Add).unwrap_err();
    assert_eq!(e, Error::Shape { field: "rhs", expected: Shape::d2(2, 3), got: Shape::d1(3) });
    let e = HostTensor::<f64>::select(&up(&[1.0; 4], Shape::d1(4)), &m, &m).unwrap_err();
    assert_eq!(e, Error::Shape { field: "cond", expected: Shape::d2(2, 3), got: Shape::d1(4) });
    assert!(HostTensor::<f64>::from_vec(vec![0.0; 5], Shape::d2(2, 3)).is_err());
    let what: String = format!("{:?}", m.reshape(Shape::d1(5)).unwrap_err());
    assert!(what.contains("reshape"), "{what}");
}

#[cfg(feature = "std")]
#[test]
fn a_dropped_buffer_serves_the_next_request_it_fits() {
    let len = (1 << 20) + 17; // a length no other test uses
    let a = HostTensor::<f32>::from_vec(take_buffer(len), Shape::d1(len)).unwrap();
    let ptr = a.data().as_ptr();
    drop(a);
    let b: Vec<f32> = take_buffer(len);
    assert_eq!((b.as_ptr(), b.len()), (ptr, len));
    let small: Vec<f32> = take_buffer(POOL_MIN - 1);
    assert_ne!(small.as_ptr(), ptr);
}

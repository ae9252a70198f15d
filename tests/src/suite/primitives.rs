//! Every primitive of the `Tensor` trait against `HostTensor<f32>`: every
//! unary and binary op ([`Unary::ALL`], [`Binary::ALL`]) in every broadcast
//! form, select, the scalar forms, reductions, gather, segments and take,
//! on special values and at sizes that split into many binding windows;
//! shape and index errors equal the host's.

use wapo_core::host::HostTensor;
use wapo_core::{Binary, Error, Reduce, Shape, Tensor, Unary};

use super::Profile;
use super::cases::special_values;
use super::eval::download;
use crate::random::Rng;

fn assert_same(p: Profile, what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (k, (a, b)) in got.iter().zip(want).enumerate() {
        let ok = (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= p.rel * b.abs() + p.abs;
        assert!(ok, "{what}[{k}]: backend {a} vs host {b}");
    }
}

pub fn primitives_body<T: Tensor>(dev: &T::Device, p: Profile) {
    broadcast_forms::<T>(dev, p);
    for full in [Shape::d3(3, 5, 7), Shape::d3(2, 9, 4099), Shape::d2(41, 1)] {
        windows::<T>(dev, p, full);
    }
    segments::<T>(dev, p);
}

fn up<T: Tensor>(dev: &T::Device, d: &[f64], s: Shape) -> (T, HostTensor<f32>) {
    (T::upload(dev, d, s).expect("upload"), HostTensor::<f32>::from_f64(d, s).expect("host"))
}

/// Full (N, T, V), row (N, T) and scalar operands in every pairing, select
/// with every operand form, a row operand of the wrong shape, reductions
/// over rows of −inf, +inf, NaN and 1e4.
fn broadcast_forms<T: Tensor>(dev: &T::Device, p: Profile) {
    let mut rng = Rng::new(11);
    let full = Shape::d3(3, 4, 5);
    let forms = [full, Shape::d2(3, 4), Shape::d1(1)];
    let data: Vec<Vec<f64>> = forms.iter().map(|s| special_values(&mut rng, s.numel())).collect();
    let (x, hx) = up::<T>(dev, &data[0], full);
    for op in Unary::ALL {
        let got = x.unary(op).expect("unary");
        assert_eq!(got.shape(), full);
        assert_same(p, &format!("{op:?}"), &download(&got), &download(&hx.unary(op).unwrap()));
    }
    for (i, sa) in forms.iter().enumerate() {
        for sb in &forms {
            let (a, ha) = up::<T>(dev, &data[i], *sa);
            let (b, hb) = up::<T>(dev, &special_values(&mut rng, sb.numel()), *sb);
            for op in Binary::ALL {
                let got = a.binary(&b, op).expect("binary");
                let want = ha.binary(&hb, op).unwrap();
                assert_eq!(got.shape(), want.shape(), "{op:?} {sa} {sb}");
                assert_same(p, &format!("{op:?} {sa} {sb}"), &download(&got), &download(&want));
            }
            for sc in &forms {
                let (c, hc) = up::<T>(dev, &special_values(&mut rng, sc.numel()), *sc);
                let got = T::select(&c, &a, &b).expect("select");
                let want = HostTensor::select(&hc, &ha, &hb).unwrap();
                assert_eq!(got.shape(), want.shape(), "select {sc} {sa} {sb}");
                assert_same(p, &format!("select {sc} {sa} {sb}"), &download(&got), &download(&want));
            }
        }
    }
    let (r, hr) = up::<T>(dev, &data[1], Shape::d2(3, 4));
    assert_eq!(
        x.binary(&r.reshape(Shape::d2(4, 3)).unwrap(), Binary::Add).err(),
        hx.binary(&hr.reshape(Shape::d2(4, 3)).unwrap(), Binary::Add).err(),
        "a row operand of the wrong shape"
    );
    for op in [Reduce::Sum, Reduce::Max, Reduce::LogSumExp] {
        let rows: Vec<f64> = (0..60)
            .map(|k| match k / 5 {
                0 => f64::NEG_INFINITY,
                1 if k % 5 == 2 => f64::INFINITY,
                2 if k % 5 == 1 => f64::NAN,
                3 => 1e4 + (k % 5) as f64,
                _ => rng.range(-3.0, 3.0),
            })
            .collect();
        let (a, ha) = up::<T>(dev, &rows, full);
        let got = a.reduce_last(op).expect("reduce");
        assert_eq!(got.shape(), Shape::d2(3, 4));
        assert_same(p, &format!("{op:?}"), &download(&got), &download(&ha.reduce_last(op).unwrap()));
    }
    let idx: Vec<f64> = (0..12).map(|k| (k * 7 % 5) as f64).collect();
    let (i, hi) = up::<T>(dev, &idx, Shape::d2(3, 4));
    assert_same(p, "gather_last", &download(&x.gather_last(&i).unwrap()), &download(&hx.gather_last(&hi).unwrap()));
    let (bad, hbad) = up::<T>(dev, &[5.0; 12], Shape::d2(3, 4));
    assert_eq!(x.gather_last(&bad).err(), hx.gather_last(&hbad).err());
    let seg = [2.0, 0.0, 2.0, 1.0, 0.0, 2.0];
    let vals = [1.5, -2.0, 0.25, 4.0, 8.0, -1.0];
    let (s, hs) = up::<T>(dev, &seg, Shape::d1(6));
    let (v, hv) = up::<T>(dev, &vals, Shape::d1(6));
    let sums = v.segment_sum(&s, 3).unwrap();
    assert_same(p, "segment_sum", &download(&sums), &download(&hv.segment_sum(&hs, 3).unwrap()));
    assert_same(p, "take", &download(&sums.take(&s).unwrap()), &[0.75, 6.0, 0.75, 4.0, 6.0, 0.75]);
    assert_eq!(v.segment_sum(&s, 2).err(), hv.segment_sum(&hs, 2).err());
    let iota = download(&T::iota_last(dev, Shape::d2(2, 3)).unwrap());
    assert_same(p, "iota_last", &iota, &[0.0, 1.0, 2.0, 0.0, 1.0, 2.0]);
    assert_eq!(
        T::upload(dev, &[1.0; 5], Shape::d2(2, 3)).err(),
        HostTensor::<f32>::upload(&(), &[1.0; 5], Shape::d2(2, 3)).err()
    );
}

/// One shape `full`: every op with full, row and scalar operands, the scalar
/// forms, select on conditions with NaN and −0, reductions with −inf rows,
/// gather, iota, full and sum_all.
fn windows<T: Tensor>(dev: &T::Device, p: Profile, full: Shape) {
    let mut rng = Rng::new(7 + full.numel() as u64);
    let row = full.without_last();
    let n = full.numel();
    let (a, ah) = up::<T>(dev, &special_values(&mut rng, n), full);
    for op in Unary::ALL {
        assert_same(p, &format!("{op:?} {full}"), &download(&a.unary(op).unwrap()), &download(&ah.unary(op).unwrap()));
    }
    for v in [0.0, -2.5, 1e30, f64::NEG_INFINITY] {
        let what = format!("scalar ops with {v} {full}");
        assert_same(p, &what, &download(&a.add_scalar(v).unwrap()), &download(&ah.add_scalar(v).unwrap()));
        assert_same(p, &what, &download(&a.mul_scalar(v).unwrap()), &download(&ah.mul_scalar(v).unwrap()));
        assert_same(p, &what, &download(&a.max_scalar(v).unwrap()), &download(&ah.max_scalar(v).unwrap()));
        assert_same(p, &what, &download(&a.min_scalar(v).unwrap()), &download(&ah.min_scalar(v).unwrap()));
    }
    let (r, rh) = up::<T>(dev, &special_values(&mut rng, row.numel()), row);
    let (s, sh) = up::<T>(dev, &[1.5], Shape::d1(1));
    let (b, bh) = up::<T>(dev, &special_values(&mut rng, n), full);
    let operands = [(&a, &ah, "full"), (&b, &bh, "full"), (&r, &rh, "row"), (&s, &sh, "scalar")];
    for op in Binary::ALL {
        for (x, xh, xn) in operands {
            for (y, yh, yn) in operands {
                let got = download(&x.binary(y, op).unwrap());
                assert_same(p, &format!("{op:?} {xn}∘{yn} {full}"), &got, &download(&xh.binary(yh, op).unwrap()));
            }
        }
    }
    let cond: Vec<f64> = (0..n).map(|k| [0.0, 1.0, f64::NAN, -0.0, 2.0][k % 5]).collect();
    let (c, ch) = up::<T>(dev, &cond, full);
    for (x, xh, xn) in operands {
        for (y, yh, yn) in operands {
            let got = download(&T::select(&c, x, y).unwrap());
            let want = download(&HostTensor::select(&ch, xh, yh).unwrap());
            assert_same(p, &format!("select {xn}/{yn} {full}"), &got, &want);
        }
    }
    // Reductions on finite data and on rows with −inf; their order of
    // summation is the backend's, hence √len in the tolerance.
    let finite: Vec<f64> = (0..n).map(|_| 4.0 * rng.normal()).collect();
    let mut neg_rows = finite.clone();
    for (k, x) in neg_rows.iter_mut().enumerate() {
        if (k / full.last()).is_multiple_of(3) || k.is_multiple_of(5) {
            *x = f64::NEG_INFINITY;
        }
    }
    for data in [&finite, &neg_rows] {
        let (x, xh) = up::<T>(dev, data, full);
        for op in [Reduce::Sum, Reduce::Max, Reduce::LogSumExp] {
            let got = download(&x.reduce_last(op).unwrap());
            let want = download(&xh.reduce_last(op).unwrap());
            for (k, (g, w)) in got.iter().zip(&want).enumerate() {
                let ok = (g == w) || (g - w).abs() <= 1e-4 * (1.0 + w.abs()) * (full.last() as f64).sqrt();
                assert!(ok, "{op:?} {full} row {k}: backend {g} vs host {w}");
            }
        }
    }
    let idx: Vec<f64> = (0..row.numel()).map(|_| rng.below(full.last()) as f64).collect();
    let (i, ih) = up::<T>(dev, &idx, row);
    assert_same(p, "gather_last", &download(&b.gather_last(&i).unwrap()), &download(&bh.gather_last(&ih).unwrap()));
    let (bad, _) = up::<T>(dev, &[0.0, full.last() as f64], Shape::d1(2));
    let (bz, _) = up::<T>(dev, &vec![0.0; 2 * full.last()], Shape::d2(2, full.last()));
    assert!(matches!(bz.gather_last(&bad), Err(Error::Invalid { .. })), "out-of-range gather must fail");
    let iota = download(&T::iota_last(dev, full).unwrap());
    assert_same(p, "iota_last", &iota, &download(&HostTensor::<f32>::iota_last(&(), full).unwrap()));
    assert_same(p, "full", &download(&T::full(dev, full, -0.25).unwrap()), &vec![-0.25; n]);
    assert_same(
        p,
        "sum_all",
        &download(&a.unary(Unary::IsFinite).unwrap().sum_all().unwrap()),
        &download(&ah.unary(Unary::IsFinite).unwrap().sum_all().unwrap()),
    );
}

/// segment_sum and take over 300 elements in 13 segments, and their errors.
fn segments<T: Tensor>(dev: &T::Device, p: Profile) {
    let mut rng = Rng::new(13);
    let len = 300;
    let xs: Vec<f64> = (0..len).map(|_| rng.normal()).collect();
    let seg: Vec<f64> = (0..len).map(|_| rng.below(13) as f64).collect();
    let (x, xh) = up::<T>(dev, &xs, Shape::d1(len));
    let (sg, sgh) = up::<T>(dev, &seg, Shape::d1(len));
    let sums = x.segment_sum(&sg, 13).unwrap();
    let host_sums = xh.segment_sum(&sgh, 13).unwrap();
    assert_same(p, "segment_sum", &download(&sums), &download(&host_sums));
    assert_same(p, "take", &download(&sums.take(&sg).unwrap()), &download(&host_sums.take(&sgh).unwrap()));
    assert!(matches!(x.segment_sum(&sg, 12), Err(Error::Invalid { .. })), "segment id ≥ n must fail");
    assert!(matches!(sums.take(&x), Err(Error::Invalid { .. })), "negative take index must fail");
}

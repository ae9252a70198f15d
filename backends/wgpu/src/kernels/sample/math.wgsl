// The float helpers of both sampling kernels (the includer defines
// `is_nan`): an accurate exp of d ≤ 0, the f64 reference's "has mass", an
// accurate log(1 + x) and Neumaier sums.

// exp(d) for d ≤ 0 with d = k·ln2 + r, |r| ≤ ln2/2 (ln2 split so that k·LN2_HI
// is exact): the error does not grow with |d| as exp(d) = exp2(d·log2 e) does.
fn exp_acc(d: f32) -> f32 {
    if is_nan(d) {
        return d;
    }
    if d < -104.0 {
        return 0.0;
    }
    let k = round(d * 1.4426950408889634);
    let r = (d - k * 0.693145751953125) - k * 1.428606765330187e-6;
    return ldexp(exp(r), i32(k));
}

// Whether exp(d) is positive in f64 (the reference's e > 0).
fn has_mass(d: f32) -> bool {
    return d > -745.1332;
}

// log(1 + x) for x ≥ 0, accurate near 0 where log(1 + x) is not (the
// rounding of 1 + x, and WGSL only bounds log's absolute error near 1):
// 2·atanh(t), t = x/(2 + x) ≤ 1/3, by its series up to t^19.
fn log1p_acc(x: f32) -> f32 {
    if !(x <= 1.0) {
        return log(1.0 + x);
    }
    let t = x / (2.0 + x);
    let t2 = t * t;
    var s = 1.0 / 19.0;
    for (var k = 17.0; k > 0.0; k -= 2.0) {
        s = 1.0 / k + t2 * s;
    }
    return 2.0 * t * s;
}

// A Neumaier running sum: (s, c) with the value s + c.
fn neumaier(acc: vec2<f32>, x: f32) -> vec2<f32> {
    let t = acc.x + x;
    var c = acc.y;
    if abs(acc.x) >= abs(x) {
        c += (acc.x - t) + x;
    } else {
        c += (x - t) + acc.x;
    }
    return vec2<f32>(t, c);
}


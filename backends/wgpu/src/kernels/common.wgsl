// Shared by every kernel: the float classifiers and the workgroup index.
// A kernel's parameters are its own struct `P` at binding 15, generated
// from the Rust declaration (`kernel_params!` in launch.rs), which also
// defines `neg_inf()` and `nan()`.

// Classifiers on the bits, so that a compiler assuming finite math cannot
// fold them away.
fn is_nan(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}

fn is_finite(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
}

fn is_neg_inf(x: f32) -> bool {
    return bitcast<u32>(x) == 0xff800000u;
}

// max/min that ignore a NaN operand, as Rust's f32::max/min do.
fn max_nan(a: f32, b: f32) -> f32 {
    if is_nan(a) {
        return b;
    }
    if is_nan(b) {
        return a;
    }
    return max(a, b);
}

fn min_nan(a: f32, b: f32) -> f32 {
    if is_nan(a) {
        return b;
    }
    if is_nan(b) {
        return a;
    }
    return min(a, b);
}

// exp with exp(−inf) = 0 guaranteed.
fn exp_safe(x: f32) -> f32 {
    if is_neg_inf(x) {
        return 0.0;
    }
    return exp(x);
}

// The linear index of a workgroup of a 2D dispatch (rows beyond 65,535
// workgroups spill into y).
fn wg_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.y * nwg.x + wid.x;
}

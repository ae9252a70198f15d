// out = f(a) for one `Unary` op, chosen by the override OP (the order of
// `wapo_core::Unary`).

// Parameters: P (`ElementwiseParams` of kernels/mod.rs).

override OP: u32;

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(7) var<storage, read_write> out: array<f32>;

fn apply(x: f32) -> f32 {
    switch OP {
        case 0u: { return -x; }
        case 1u: { return exp_safe(x); }
        case 2u: {
            if x == 0.0 { return neg_inf(); }
            if x < 0.0 || is_nan(x) { return nan(); }
            return log(x);
        }
        case 3u: { return abs(x); }
        case 4u: { return x * x; }
        case 5u: {
            if x < 0.0 || is_nan(x) { return nan(); }
            return sqrt(x);
        }
        case 6u: { return 1.0 / x; }
        case 7u: { return select(0.0, 1.0, x > 0.0 && !is_nan(x)); }
        case 8u: { return select(0.0, 1.0, x == 0.0 && !is_nan(x)); }
        case 9u: { return select(0.0, 1.0, is_finite(x)); }
        default: { return floor(x); }
    }
}

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = elem_index(wid, nwg, lid);
    if i >= P.n {
        return;
    }
    out[out_at(i)] = apply(a[operand_at(P.mode0, P.base0, i)]);
}

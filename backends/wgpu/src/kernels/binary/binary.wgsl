// out = a ∘ b for one `Binary` op, chosen by the override OP (the order of
// `wapo_core::Binary`); comparisons give 1 or 0 and are false on NaN.
// Operand mode 3 is the constant `P.value` (x ∘ 0.5 without a one-element
// tensor and the dispatch that fills it).

// Parameters: P (`ElementwiseParams` of kernels/mod.rs).

override OP: u32;

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(7) var<storage, read_write> out: array<f32>;

fn apply(x: f32, y: f32) -> f32 {
    let ordered = !is_nan(x) && !is_nan(y);
    switch OP {
        case 0u: { return x + y; }
        case 1u: { return x - y; }
        case 2u: { return x * y; }
        case 3u: { return x / y; }
        case 4u: { return max_nan(x, y); }
        case 5u: { return min_nan(x, y); }
        case 6u: { return select(0.0, 1.0, ordered && x < y); }
        case 7u: { return select(0.0, 1.0, ordered && x <= y); }
        case 8u: { return select(0.0, 1.0, ordered && x == y); }
        default: {
            if y == 0.0 && !is_nan(y) { return 0.0; }
            return x * y;
        }
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
    out[out_at(i)] = apply(lhs(i), rhs(i));
}

// The operands of output element i (mode 3: the constant).
fn lhs(i: u32) -> f32 {
    if P.mode0 == 3u {
        return P.value;
    }
    return a[operand_at(P.mode0, P.base0, i)];
}

fn rhs(i: u32) -> f32 {
    if P.mode1 == 3u {
        return P.value;
    }
    return b[operand_at(P.mode1, P.base1, i)];
}

// GELU, tanh approximation (GPT-2): ½x(1 + tanh(√(2/π)(x + 0.044715x³))),
// and its derivative. One thread per element.

// Parameters: P (`GeluParams` of mod.rs, where the struct is declared).

@group(0) @binding(0) var<storage, read> inp: array<f32>;
@group(0) @binding(1) var<storage, read> dout: array<f32>;
@group(0) @binding(7) var<storage, read_write> out: array<f32>;

const SCALE: f32 = 0.7978846; // √(2/π)
const CUBIC: f32 = 0.044715;

// 1 + tanh u and the derivative's ½x·sech²u·du/dx, for u = √(2/π)(x +
// 0.044715x³), from e = exp(−2|u|) ≤ 1: no overflow, and no cancellation
// in 1 − tanh or 1 − tanh² (the built-in tanh is inaccurate or NaN for
// large |u| on some drivers). |u| is capped at 64, where e is 0 in f32; the
// sech² term is dropped beyond |u| = 20, where it is below 1e-15 of the
// result and where x·du/dx may overflow.
struct Parts {
    one_plus_t: f32,
    sech2_term: f32,
}

fn parts(x: f32) -> Parts {
    let u = SCALE * (x + CUBIC * x * x * x);
    let a = min(abs(u), 64.0);
    let e = exp(-2.0 * a);
    let r = 1.0 / (1.0 + e);
    let one_plus_t = select(2.0 * e * r, 2.0 * r, u >= 0.0);
    let du = SCALE * (1.0 + 3.0 * CUBIC * x * x);
    let term = select(0.5 * x * (4.0 * e * r * r) * du, 0.0, a >= 20.0);
    return Parts(one_plus_t, term);
}

@compute @workgroup_size(256)
fn forward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = wg_index(wid, nwg) * 256u + lid;
    if i >= P.n {
        return;
    }
    let x = inp[P.inp + i];
    out[P.out + i] = 0.5 * x * parts(x).one_plus_t;
}

@compute @workgroup_size(256)
fn backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = wg_index(wid, nwg) * 256u + lid;
    if i >= P.n {
        return;
    }
    let p = parts(inp[P.inp + i]);
    out[P.out + i] = (0.5 * p.one_plus_t + p.sech2_term) * dout[P.dout + i];
}

// SwiGLU of the llama MLP over fch rows of 2M = gate | up (one matmul):
// out = silu(gate)·up (rows, M); the backward overwrites dfch (rows, 2M)
// with ∂/∂gate = dout·up·σ(g)·(1 + g·(1 − σ(g))) and ∂/∂up = dout·silu(g).
// One thread per element of a row's M.

// Parameters: P (`SwigluParams` of mod.rs, where the struct is declared).

@group(0) @binding(0) var<storage, read> fch: array<f32>;
@group(0) @binding(1) var<storage, read> dout: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

fn sigmoid(x: f32) -> f32 {
    return 1.0 / (1.0 + exp(-x));
}

@compute @workgroup_size(256)
fn forward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let k = wg_index(wid, nwg) * 256u + lid;
    if k >= P.n {
        return;
    }
    let r = k / P.m;
    let i = k - r * P.m;
    let g = fch[P.fch + r * 2u * P.m + i];
    let u = fch[P.fch + r * 2u * P.m + P.m + i];
    out[P.out + k] = g * sigmoid(g) * u;
}

@compute @workgroup_size(256)
fn backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let k = wg_index(wid, nwg) * 256u + lid;
    if k >= P.n {
        return;
    }
    let r = k / P.m;
    let i = k - r * P.m;
    let at = r * 2u * P.m + i;
    let g = fch[P.fch + at];
    let u = fch[P.fch + at + P.m];
    let d = dout[P.dout + k];
    let sg = sigmoid(g);
    out[P.out + at] = d * u * sg * (1.0 + g * (1.0 - sg));
    out[P.out + at + P.m] = d * g * sg;
}

// The squared norm of the gradients (two deterministic stages) and the
// elementwise AdamW update.

// Parameters: P (`AdamwParams` of mod.rs, where the struct is declared).

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> decay: array<u32>;
@group(0) @binding(5) var<storage, read_write> m: array<f32>;
@group(0) @binding(6) var<storage, read_write> v: array<f32>;
@group(0) @binding(7) var<storage, read_write> out: array<f32>;

const WG: u32 = 256u;
// Elements per workgroup of the first stage (must match CHUNK in mod.rs).
const CHUNK: u32 = 4096u;

var<workgroup> red: array<f32, 256>;

fn reduce_sum(lid: u32) -> f32 {
    for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
        if lid < stride {
            red[lid] = red[lid] + red[lid + stride];
        }
        workgroupBarrier();
    }
    return red[0];
}

// Stage 1: out[g] = Σ x² over chunk g.
@compute @workgroup_size(256)
fn partial_squares(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let g = wg_index(wid, nwg);
    let n = P.n;
    if g * CHUNK >= n {
        return;
    }
    var s = 0.0;
    for (var j = 0u; j < CHUNK; j += WG) {
        let i = g * CHUNK + j + lid;
        if i < n {
            let a = x[P.x + i];
            s += a * a;
        }
    }
    red[lid] = s;
    workgroupBarrier();
    let total = reduce_sum(lid);
    if lid == 0u {
        out[P.out + g] = total;
    }
}

// Stage 2 (one workgroup): out[0] = Σ x.
@compute @workgroup_size(256)
fn sum_partials(@builtin(local_invocation_index) lid: u32) {
    var s = 0.0;
    for (var i = lid; i < P.n; i += WG) {
        s += x[P.x + i];
    }
    red[lid] = s;
    workgroupBarrier();
    let total = reduce_sum(lid);
    if lid == 0u {
        out[P.out] = total;
    }
}

// The operations are those of the CPU optimizer, in its order.
@compute @workgroup_size(256)
fn adamw(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = wg_index(wid, nwg) * WG + lid;
    if i >= P.n {
        return;
    }
    let lr = P.lr;
    let b1 = P.beta1;
    let b2 = P.beta2;
    let g = x[P.x + i] * P.scale;
    let mi = b1 * m[P.m + i] + (1.0 - b1) * g;
    let vi = b2 * v[P.v + i] + (1.0 - b2) * g * g;
    m[P.m + i] = mi;
    v[P.v + i] = vi;
    var p = out[P.out + i];
    if decay[P.decay + i] != 0u {
        p -= lr * P.weight_decay * p;
    }
    let denom = sqrt(vi) / P.bc2_sqrt + P.eps;
    out[P.out + i] = p - lr / P.bc1 * mi / denom;
}

// The squared norm of the gradients (two deterministic stages) and the
// elementwise AdamW update.

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

// Stage 1: out[g] = Σ x² over chunk g. params: 0 n, 1 shift of x, 2 shift of out.
@compute @workgroup_size(256)
fn partial_squares(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let g = wg_index(wid, nwg);
    let n = prm(0u);
    if g * CHUNK >= n {
        return;
    }
    var s = 0.0;
    for (var j = 0u; j < CHUNK; j += WG) {
        let i = g * CHUNK + j + lid;
        if i < n {
            let a = x[prm(1u) + i];
            s += a * a;
        }
    }
    red[lid] = s;
    workgroupBarrier();
    let total = reduce_sum(lid);
    if lid == 0u {
        out[prm(2u) + g] = total;
    }
}

// Stage 2 (one workgroup): out[0] = Σ x. params: 0 n, 1 shift of x, 2 shift of out.
@compute @workgroup_size(256)
fn sum_partials(@builtin(local_invocation_index) lid: u32) {
    var s = 0.0;
    for (var i = lid; i < prm(0u); i += WG) {
        s += x[prm(1u) + i];
    }
    red[lid] = s;
    workgroupBarrier();
    let total = reduce_sum(lid);
    if lid == 0u {
        out[prm(2u)] = total;
    }
}

// params: 0 n, 1..5 shifts of params (out), grads (x), m, v, decay,
// 6 lr, 7 β1, 8 β2, 9 eps, 10 weight decay, 11 bc1, 12 sqrt(bc2), 13 scale.
// The operations are those of the CPU optimizer, in its order.
@compute @workgroup_size(256)
fn adamw(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = wg_index(wid, nwg) * WG + lid;
    if i >= prm(0u) {
        return;
    }
    let lr = prmf(6u);
    let b1 = prmf(7u);
    let b2 = prmf(8u);
    let g = x[prm(2u) + i] * prmf(13u);
    let mi = b1 * m[prm(3u) + i] + (1.0 - b1) * g;
    let vi = b2 * v[prm(4u) + i] + (1.0 - b2) * g * g;
    m[prm(3u) + i] = mi;
    v[prm(4u) + i] = vi;
    var p = out[prm(1u) + i];
    if decay[prm(5u) + i] != 0u {
        p -= lr * prmf(10u) * p;
    }
    let denom = sqrt(vi) / prmf(12u) + prmf(9u);
    out[prm(1u) + i] = p - lr / prmf(11u) * mi / denom;
}

// Layer normalisation over rows of c: one workgroup of 256 threads per row
// with tree reductions for the row statistics; the weight and bias
// gradients are summed over fixed chunks of rows into a scratch buffer, then
// over the chunks in order (deterministic, no atomics).

@group(0) @binding(0) var<storage, read> inp: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read> src: array<f32>;
@group(0) @binding(3) var<storage, read> mean_in: array<f32>;
@group(0) @binding(4) var<storage, read> rstd_in: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
@group(0) @binding(6) var<storage, read_write> out_a: array<f32>;
@group(0) @binding(7) var<storage, read_write> out_b: array<f32>;

const EPS: f32 = 1e-5;
// Rows per partial sum of the weight gradients (LN_CHUNK in mod.rs).
const CHUNK: u32 = 256u;

var<workgroup> red: array<vec2<f32>, 256>;

// The sum over the workgroup of each thread's v (every thread gets it).
fn reduce2(v: vec2<f32>, lid: u32) -> vec2<f32> {
    red[lid] = v;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
        if lid < s {
            red[lid] += red[lid + s];
        }
        workgroupBarrier();
    }
    let r = red[0];
    workgroupBarrier();
    return r;
}

// params: 0 rows, 1 c, 2 inp shift, 3 w shift, 4 b shift, 5 out shift,
// 6 mean shift, 7 rstd shift. src is b, out_a mean, out_b rstd.
@compute @workgroup_size(256)
fn forward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row = wg_index(wid, nwg);
    if row >= prm(0u) {
        return;
    }
    let c = prm(1u);
    let xs = prm(2u) + row * c;
    var s = 0.0;
    for (var j = lid; j < c; j += 256u) {
        s += inp[xs + j];
    }
    let mu = reduce2(vec2(s, 0.0), lid).x / f32(c);
    var q = 0.0;
    for (var j = lid; j < c; j += 256u) {
        let d = inp[xs + j] - mu;
        q += d * d;
    }
    let var_ = reduce2(vec2(q, 0.0), lid).x / f32(c);
    let rs = 1.0 / sqrt(var_ + EPS);
    let os = prm(5u) + row * c;
    for (var j = lid; j < c; j += 256u) {
        out[os + j] = (inp[xs + j] - mu) * rs * w[prm(3u) + j] + src[prm(4u) + j];
    }
    if lid == 0u {
        out_a[prm(6u) + row] = mu;
        out_b[prm(7u) + row] = rs;
    }
}

// params: 0 rows, 1 c, 2 inp shift, 3 w shift, 4 dout shift, 5 dinp shift,
// 6 mean shift, 7 rstd shift. src is dout, out dinp (accumulated).
@compute @workgroup_size(256)
fn backward_inp(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row = wg_index(wid, nwg);
    if row >= prm(0u) {
        return;
    }
    let c = prm(1u);
    let xs = prm(2u) + row * c;
    let ds = prm(4u) + row * c;
    let mu = mean_in[prm(6u) + row];
    let rs = rstd_in[prm(7u) + row];
    var acc = vec2(0.0, 0.0);
    for (var j = lid; j < c; j += 256u) {
        let norm = (inp[xs + j] - mu) * rs;
        let dn = src[ds + j] * w[prm(3u) + j];
        acc += vec2(dn, dn * norm);
    }
    let m = reduce2(acc, lid) / f32(c);
    let os = prm(5u) + row * c;
    for (var j = lid; j < c; j += 256u) {
        let norm = (inp[xs + j] - mu) * rs;
        let dn = src[ds + j] * w[prm(3u) + j];
        out[os + j] += (dn - m.x - norm * m.y) * rs;
    }
}

// params: 0 rows, 1 c, 2 inp shift, 3 column blocks, 4 dout shift,
// 5 scratch shift, 6 mean shift, 7 rstd shift, 8 first chunk.
// Workgroup (chunk, column block): scratch rows 2q and 2q + 1 get
// Σ dout·norm and Σ dout over the chunk's rows for the block's columns.
@compute @workgroup_size(256)
fn backward_partials(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let g = wg_index(wid, nwg);
    let nb = prm(3u);
    let q = g / nb;
    let c = prm(1u);
    let j = (g - q * nb) * 256u + lid;
    let r0 = q * CHUNK;
    if j >= c || r0 >= prm(0u) {
        return;
    }
    let r1 = min(r0 + CHUNK, prm(0u));
    var pw = 0.0;
    var pb = 0.0;
    for (var r = r0; r < r1; r++) {
        let d = src[prm(4u) + r * c + j];
        let norm = (inp[prm(2u) + r * c + j] - mean_in[prm(6u) + r]) * rstd_in[prm(7u) + r];
        pw += d * norm;
        pb += d;
    }
    let o = prm(5u) + (prm(8u) + q) * 2u * c + j;
    out[o] = pw;
    out[o + c] = pb;
}

// params: 0 c, 1 chunks, 2 scratch shift, 3 dw shift, 4 db shift.
// Thread j < c sums column j of the weight partials onto dw, thread c + j
// that of the bias partials onto db, chunk by chunk in order. inp is the
// scratch, out_a dw, out_b db.
@compute @workgroup_size(256)
fn backward_sum(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = wg_index(wid, nwg) * 256u + lid;
    let c = prm(0u);
    if i >= 2u * c {
        return;
    }
    let part = i / c;
    let j = i - part * c;
    var idx = prm(2u) + part * c + j;
    if part == 0u {
        var acc = out_a[prm(3u) + j];
        for (var q = 0u; q < prm(1u); q++) {
            acc += inp[idx];
            idx += 2u * c;
        }
        out_a[prm(3u) + j] = acc;
    } else {
        var acc = out_b[prm(4u) + j];
        for (var q = 0u; q < prm(1u); q++) {
            acc += inp[idx];
            idx += 2u * c;
        }
        out_b[prm(4u) + j] = acc;
    }
}

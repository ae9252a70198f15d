// Layer normalisation over rows of c: one workgroup of 256 threads per row
// with tree reductions for the row statistics; the weight and bias
// gradients are summed over fixed chunks of rows into a scratch buffer,
// which the shared finish (chunks/) adds up in chunk order (deterministic,
// no atomics).

// Parameters: P (`LayernormParams` of mod.rs, where the struct is declared);
// a shift `P.x` is that of the view bound to `x`.

@group(0) @binding(0) var<storage, read> inp: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read> src: array<f32>;
@group(0) @binding(3) var<storage, read> mean_in: array<f32>;
@group(0) @binding(4) var<storage, read> rstd_in: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
@group(0) @binding(6) var<storage, read_write> out_a: array<f32>;
@group(0) @binding(7) var<storage, read_write> out_b: array<f32>;

const EPS: f32 = 1e-5;

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

// src is b, out_a mean, out_b rstd.
@compute @workgroup_size(256)
fn forward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row = wg_index(wid, nwg);
    if row >= P.rows {
        return;
    }
    let c = P.c;
    let xs = P.inp + row * c;
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
    let os = P.out + row * c;
    for (var j = lid; j < c; j += 256u) {
        out[os + j] = (inp[xs + j] - mu) * rs * w[P.w + j] + src[P.src + j];
    }
    if lid == 0u {
        out_a[P.out_a + row] = mu;
        out_b[P.out_b + row] = rs;
    }
}

// src is dout, out dinp (accumulated).
@compute @workgroup_size(256)
fn backward_inp(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row = wg_index(wid, nwg);
    if row >= P.rows {
        return;
    }
    let c = P.c;
    let xs = P.inp + row * c;
    let ds = P.src + row * c;
    let mu = mean_in[P.mean_in + row];
    let rs = rstd_in[P.rstd_in + row];
    var acc = vec2(0.0, 0.0);
    for (var j = lid; j < c; j += 256u) {
        let norm = (inp[xs + j] - mu) * rs;
        let dn = src[ds + j] * w[P.w + j];
        acc += vec2(dn, dn * norm);
    }
    let m = reduce2(acc, lid) / f32(c);
    let os = P.out + row * c;
    for (var j = lid; j < c; j += 256u) {
        let norm = (inp[xs + j] - mu) * rs;
        let dn = src[ds + j] * w[P.w + j];
        out[os + j] += (dn - m.x - norm * m.y) * rs;
    }
}

// src is dout, out the scratch. Workgroup (chunk, column block): scratch
// row first_chunk + chunk gets Σ dout·norm in column j and Σ dout in column
// c + j over the chunk's rows, for the block's columns j.
@compute @workgroup_size(256)
fn backward_partials(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let c = P.c;
    let cell = chunk_cell(wg_index(wid, nwg), P.blocks, 256u, P.chunk_rows, P.rows);
    let j = cell.col0 + lid;
    if j >= c || cell.r0 >= P.rows {
        return;
    }
    var pw = 0.0;
    var pb = 0.0;
    for (var r = cell.r0; r < cell.r1; r++) {
        let d = src[P.src + r * c + j];
        let norm = (inp[P.inp + r * c + j] - mean_in[P.mean_in + r]) * rstd_in[P.rstd_in + r];
        pw += d * norm;
        pb += d;
    }
    let o = P.out + (P.first_chunk + cell.chunk) * 2u * c + j;
    out[o] = pw;
    out[o + c] = pb;
}

// RMS normalisation over rows of c (the llama family): one workgroup of 256
// threads per row with a tree reduction for Σx²; the gain gradient is summed
// over fixed chunks of rows into a scratch buffer, which the shared finish
// (chunks/) adds up in chunk order (deterministic, no atomics). Field names
// are the views' shifts.

// Parameters: P (`RmsNormParams` of mod.rs, where the struct is declared).

@group(0) @binding(0) var<storage, read> inp: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read> dout: array<f32>;
@group(0) @binding(4) var<storage, read> rstd_in: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
@group(0) @binding(6) var<storage, read_write> rstd_out: array<f32>;

var<workgroup> red: array<f32, 256>;

fn reduce(v: f32, lid: u32) -> f32 {
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

// out = inp·rstd·w, rstd = 1/√(mean(inp²) + ε), saved per row.
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
    var q = 0.0;
    for (var j = lid; j < c; j += 256u) {
        let x = inp[xs + j];
        q += x * x;
    }
    let rs = 1.0 / sqrt(reduce(q, lid) / f32(c) + P.eps);
    let os = P.out + row * c;
    for (var j = lid; j < c; j += 256u) {
        out[os + j] = inp[xs + j] * rs * w[P.w + j];
    }
    if lid == 0u {
        rstd_out[P.rstd + row] = rs;
    }
}

// dinp (out) += (dout·w − x·rstd·m)·rstd with m = mean(dout·w·x·rstd).
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
    let ds = P.dout + row * c;
    let rs = rstd_in[P.rstd + row];
    var acc = 0.0;
    for (var j = lid; j < c; j += 256u) {
        acc += dout[ds + j] * w[P.w + j] * inp[xs + j] * rs;
    }
    let m = reduce(acc, lid) / f32(c);
    let os = P.out + row * c;
    for (var j = lid; j < c; j += 256u) {
        out[os + j] += (dout[ds + j] * w[P.w + j] - inp[xs + j] * rs * m) * rs;
    }
}

// Workgroup (chunk, column block): scratch (out) row chunk0 + chunk gets
// Σ dout·x·rstd over the chunk's rows for the block's columns.
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
    for (var r = cell.r0; r < cell.r1; r++) {
        pw += dout[P.dout + r * c + j] * inp[P.inp + r * c + j] * rstd_in[P.rstd + r];
    }
    out[P.out + (P.chunk0 + cell.chunk) * c + j] = pw;
}

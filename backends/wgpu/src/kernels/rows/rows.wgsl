// Elementwise fills and sums, row gathers, strided row copies and
// scatter-adds of rows by CSR lists. One thread per output element.

// Parameters: P (`RowsParams` of mod.rs, where the struct is declared).

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> idx: array<u32>;
@group(0) @binding(3) var<storage, read> offsets: array<u32>;
@group(0) @binding(7) var<storage, read_write> out: array<f32>;

fn thread_index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return wg_index(wid, nwg) * 256u + lid;
}

@compute @workgroup_size(256)
fn fill(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = thread_index(wid, nwg, lid);
    if i >= P.n {
        return;
    }
    out[P.out + i] = P.value;
}

@compute @workgroup_size(256)
fn add(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = thread_index(wid, nwg, lid);
    if i >= P.n {
        return;
    }
    out[P.out + i] = x[P.x + i] + y[P.y + i];
}

// An index outside x gives a NaN row, so that the error shows downstream.
@compute @workgroup_size(256)
fn gather_rows(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = thread_index(wid, nwg, lid);
    if i >= P.n {
        return;
    }
    let c = P.c;
    let r = i / c;
    let j = i - r * c;
    let s = idx[P.idx + r];
    var v = nan();
    if s < P.x_rows {
        v = x[P.x + s * c + j];
    }
    out[P.out + i] = v;
}

@compute @workgroup_size(256)
fn copy_rows(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = thread_index(wid, nwg, lid);
    if i >= P.n {
        return;
    }
    let c = P.c;
    let r = i / c;
    let j = i - r * c;
    out[P.out + r * P.dst_stride + j] = x[P.x + r * P.src_stride + j];
}

// Sums onto the destination in list order, as a sequential loop would.
@compute @workgroup_size(256)
fn scatter_add_rows(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = thread_index(wid, nwg, lid);
    if i >= P.n {
        return;
    }
    let c = P.c;
    let d = i / c;
    let j = i - d * c;
    let a = offsets[P.offsets + d];
    let b = offsets[P.offsets + d + 1u];
    if a >= b {
        return;
    }
    let o = P.out + i;
    var acc = out[o];
    for (var k = a; k < b; k++) {
        acc += x[P.x + idx[P.idx + k] * c + j];
    }
    out[o] = acc;
}

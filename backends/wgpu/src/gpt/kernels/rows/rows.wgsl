// Elementwise fills and sums, row gathers, strided row copies and
// scatter-adds of rows by CSR lists. One thread per output element; every
// `*_shift` parameter is the index of a view's first element in its binding.

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> idx: array<u32>;
@group(0) @binding(3) var<storage, read> offsets: array<u32>;
@group(0) @binding(7) var<storage, read_write> out: array<f32>;

fn thread_index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return wg_index(wid, nwg) * 256u + lid;
}

// params: 0 n, 1 out shift, 2 value (f32 bits).
@compute @workgroup_size(256)
fn fill(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = thread_index(wid, nwg, lid);
    if i >= prm(0u) {
        return;
    }
    out[prm(1u) + i] = prmf(2u);
}

// params: 0 n, 1 out shift, 2 x shift, 3 y shift.
@compute @workgroup_size(256)
fn add(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = thread_index(wid, nwg, lid);
    if i >= prm(0u) {
        return;
    }
    out[prm(1u) + i] = x[prm(2u) + i] + y[prm(3u) + i];
}

// params: 0 k·c, 1 out shift, 2 x shift, 3 idx shift, 4 c, 5 rows of x.
// An index outside x gives a NaN row, so that the error shows downstream.
@compute @workgroup_size(256)
fn gather_rows(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = thread_index(wid, nwg, lid);
    if i >= prm(0u) {
        return;
    }
    let c = prm(4u);
    let r = i / c;
    let j = i - r * c;
    let s = idx[prm(3u) + r];
    var v = nan();
    if s < prm(5u) {
        v = x[prm(2u) + s * c + j];
    }
    out[prm(1u) + i] = v;
}

// params: 0 rows·c, 1 out shift, 2 x shift, 3 c, 4 dst stride, 5 src stride.
@compute @workgroup_size(256)
fn copy_rows(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = thread_index(wid, nwg, lid);
    if i >= prm(0u) {
        return;
    }
    let c = prm(3u);
    let r = i / c;
    let j = i - r * c;
    out[prm(1u) + r * prm(4u) + j] = x[prm(2u) + r * prm(5u) + j];
}

// params: 0 dests·c, 1 out shift, 2 x shift, 3 offsets shift, 4 list shift, 5 c.
// Sums onto the destination in list order, as a sequential loop would.
@compute @workgroup_size(256)
fn scatter_add_rows(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = thread_index(wid, nwg, lid);
    if i >= prm(0u) {
        return;
    }
    let c = prm(5u);
    let d = i / c;
    let j = i - d * c;
    let a = offsets[prm(3u) + d];
    let b = offsets[prm(3u) + d + 1u];
    if a >= b {
        return;
    }
    let o = prm(1u) + i;
    var acc = out[o];
    for (var k = a; k < b; k++) {
        acc += x[prm(2u) + idx[prm(4u) + k] * c + j];
    }
    out[o] = acc;
}

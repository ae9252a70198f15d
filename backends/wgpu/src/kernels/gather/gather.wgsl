// out[r] = x[r, idx[r]], one thread per row (indices validated beforehand).
// params: 0 rows in this chunk, 1 row length C, 2 window index of the
// chunk's first x element, 3 of its first index, 4 of its first output.

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> idx: array<f32>;
@group(0) @binding(7) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let r = wg_index(wid, nwg) * 256u + lid;
    if r >= prm(0u) {
        return;
    }
    let j = u32(idx[prm(3u) + r]);
    out[prm(4u) + r] = x[prm(2u) + r * prm(1u) + j];
}

// out[s] = Σ_{r: seg[r] = s} x[r]: one workgroup per segment, its threads
// striding over all rows (segments are few and short: groups of a batch).
// params: 0 number of rows, 1 number of segments.

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> seg: array<f32>;
@group(0) @binding(7) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let s = wg_index(wid, nwg);
    let n = prm(0u);
    var acc = 0.0;
    if s < prm(1u) {
        for (var r = lid; r < n; r = r + 256u) {
            if u32(seg[r]) == s {
                acc = acc + x[r];
            }
        }
    }
    let total = reduce_lanes(acc, lid, false);
    if s < prm(1u) && lid == 0u {
        out[s] = total;
    }
}

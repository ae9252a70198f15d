// out[s] = Σ_{r: seg[r] = s} x[r]: one workgroup per segment, its threads
// striding over all rows (segments are few and short: groups of a batch).

// Parameters: P (`SegmentParams` of mod.rs, where the struct is declared).

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
    var acc = 0.0;
    if s < P.segments {
        for (var r = lid; r < P.rows; r = r + 256u) {
            if u32(seg[r]) == s {
                acc = acc + x[r];
            }
        }
    }
    let total = reduce_lanes(acc, lid, false);
    if s < P.segments && lid == 0u {
        out[s] = total;
    }
}

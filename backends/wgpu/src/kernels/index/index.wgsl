// Records in status[0] the first position whose value is not an index in
// 0..bound (NaN included).

// Parameters: P (`IndexParams` of mod.rs, where the struct is declared).

@group(0) @binding(0) var<storage, read> idx: array<f32>;
@group(0) @binding(6) var<storage, read_write> status: array<atomic<u32>>;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = wg_index(wid, nwg) * 256u + lid;
    if i >= P.n {
        return;
    }
    let v = idx[i];
    let ok = !is_nan(v) && v >= 0.0 && v < P.bound;
    if !ok {
        atomicMin(&status[0], i);
    }
}

// out[r] = x[idx[r]] (indices validated beforehand).

// Parameters: P (`TakeParams` of mod.rs, where the struct is declared).

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
    if r >= P.n {
        return;
    }
    out[r] = x[u32(idx[r])];
}

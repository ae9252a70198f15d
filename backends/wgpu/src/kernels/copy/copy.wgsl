// A plain copy: the bandwidth yardstick of the benchmark. vec4 loads and
// stores where both windows allow (main), else one f32 per thread
// (main_scalar, at buffer boundaries that are not on 4 elements).

// Parameters: P (`CopyParams` of mod.rs, where the struct is declared).

@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> x1: array<f32>;
@group(0) @binding(6) var<storage, read_write> out1: array<f32>;

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
    out[P.out / 4u + i] = x[P.x / 4u + i];
}

@compute @workgroup_size(256)
fn main_scalar(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = wg_index(wid, nwg) * 256u + lid;
    if i >= P.n {
        return;
    }
    out1[P.out + i] = x1[P.x + i];
}

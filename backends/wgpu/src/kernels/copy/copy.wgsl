// A plain copy: the bandwidth yardstick of the benchmark. vec4 loads and
// stores where both windows allow (main), else one f32 per thread
// (main_scalar, at buffer boundaries that are not on 4 elements).
// params: 0 number of vec4s (main) or f32s (main_scalar), 1 index of the
// first element in x's binding, 2 in out's binding (multiples of 4 for main).

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
    if i >= prm(0u) {
        return;
    }
    out[prm(2u) / 4u + i] = x[prm(1u) / 4u + i];
}

@compute @workgroup_size(256)
fn main_scalar(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = wg_index(wid, nwg) * 256u + lid;
    if i >= prm(0u) {
        return;
    }
    out1[prm(2u) + i] = x1[prm(1u) + i];
}

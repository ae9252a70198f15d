// A plain vec4 copy: the bandwidth yardstick of the benchmark.
// params: 0 number of vec4s.

@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> out: array<vec4<f32>>;

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
    out[i] = x[i];
}

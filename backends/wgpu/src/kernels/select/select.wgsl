// out = cond ≠ 0 ? a : b (a NaN condition counts as ≠ 0, as on the host).

// Parameters: P (`ElementwiseParams` of kernels/mod.rs).

@group(0) @binding(0) var<storage, read> cond: array<f32>;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(7) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = elem_index(wid, nwg, lid);
    if i >= P.n {
        return;
    }
    let c = cond[operand_at(P.mode0, P.base0, i)];
    let take_a = is_nan(c) || c != 0.0;
    out[out_at(i)] = select(b[operand_at(P.mode2, P.base2, i)], a[operand_at(P.mode1, P.base1, i)], take_a);
}

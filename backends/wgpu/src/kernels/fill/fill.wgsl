// out = a constant (OP 0, `P.value`) or the index along the last axis
// (OP 1).

// Parameters: P (`ElementwiseParams` of kernels/mod.rs).

override OP: u32;

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
    var v = P.value;
    if OP == 1u {
        v = f32((P.first + i) % P.row);
    }
    out[out_at(i)] = v;
}

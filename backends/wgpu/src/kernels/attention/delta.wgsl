// D = Σ_d dout·out per (row, head) of the attention output (R, C): the
// rowsum the FlashAttention backward subtracts from dout·v. One thread per
// (row, head); C = H·hs, so item e's dims are e·hs .. e·hs + hs.

// Parameters: P (`DeltaParams` of mod.rs, where the struct is declared).

@group(0) @binding(0) var<storage, read> out: array<f32>;
@group(0) @binding(1) var<storage, read> dout: array<f32>;
@group(0) @binding(6) var<storage, read_write> dsum: array<f32>;

@compute @workgroup_size(64)
fn delta(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let e = wg_index(wid, nwg) * 64u + t;
    if e >= P.n {
        return;
    }
    var s = 0.0;
    for (var d = 0u; d < P.hs; d++) {
        s += dout[P.dout + e * P.hs + d] * out[P.out + e * P.hs + d];
    }
    dsum[P.dsum + e] = s;
}

// The epilogue of a GEMM split over k: out = Σ_splits part [+ out] [+ bias],
// summing the splits in order so that the result is deterministic.

// Parameters: P (`SplitSumParams` of mod.rs, where the struct is declared).

@group(0) @binding(0) var<storage, read> part: array<f32>;
@group(0) @binding(2) var<storage, read> bias_buf: array<f32>;
@group(0) @binding(7) var<storage, read_write> out_buf: array<f32>;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let mn = P.mn;
    let i = wg_index(wid, nwg) * 256u + lid;
    if i >= mn {
        return;
    }
    var x = 0.0;
    for (var s = 0u; s < P.splits; s++) {
        x += part[s * mn + i];
    }
    let flags = P.flags;
    if (flags & 1u) != 0u {
        x = out_buf[P.out + i] + x;
    }
    if (flags & 2u) != 0u {
        x = x + bias_buf[P.bias + i % P.n];
    }
    out_buf[P.out + i] = x;
}
